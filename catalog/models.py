"""The product catalogue: categories, products, variants (size and stock), images and looks.

Invariants live in the database as constraints, so no code path (admin, API, shell, raw SQL through
the ORM) can store a negative stock, a second product with the same SKU or a barcode used twice.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords


class CategoryKind(models.TextChoices):
    TOPWEAR = "topwear", "Topwear"
    BOTTOMWEAR = "bottomwear", "Bottomwear"
    FULL_BODY = "full-body", "Full body"
    FOOTWEAR = "footwear", "Footwear"
    OUTERWEAR = "outerwear", "Outerwear"
    ACCESSORY = "accessory", "Accessory"


class Gender(models.TextChoices):
    MEN = "men", "Men"
    WOMEN = "women", "Women"
    UNISEX = "unisex", "Unisex"
    BOYS = "boys", "Boys"
    GIRLS = "girls", "Girls"


class Category(models.Model):
    """A node in a small category tree (Topwear > T-Shirt). ``kind`` drives complete-the-look."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=120, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    kind = models.CharField(max_length=20, choices=CategoryKind.choices)

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["slug"]
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="category_unique_name_per_parent"),
            models.UniqueConstraint(
                fields=["name"], condition=Q(parent__isnull=True), name="category_unique_root_name"
            ),
            models.CheckConstraint(condition=Q(kind__in=CategoryKind.values), name="category_kind_valid"),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="category_not_own_parent"),
        ]

    def __str__(self) -> str:
        return f"{self.parent.name} > {self.name}" if self.parent_id else self.name


class ProductStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    DRAFT = "draft", "Draft"
    MERGED = "merged", "Merged"
    RETIRED = "retired", "Retired"


class Product(models.Model):
    sku = models.CharField("SKU", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    brand = models.CharField(max_length=100, blank=True)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    gender = models.CharField(max_length=10, choices=Gender.choices, default=Gender.UNISEX)
    colour = models.CharField(max_length=50, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    status = models.CharField(max_length=10, choices=ProductStatus.choices, default=ProductStatus.ACTIVE)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from"
    )
    is_synthetic = models.BooleanField(default=False, help_text="Generated demo data, not a real product.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(history_change_reason_field=models.TextField(null=True))

    class Meta:
        ordering = ["sku"]
        indexes = [models.Index(fields=["status", "gender"]), models.Index(fields=["category", "status"])]
        constraints = [
            models.CheckConstraint(condition=Q(gender__in=Gender.values), name="product_gender_valid"),
            models.CheckConstraint(condition=Q(status__in=ProductStatus.values), name="product_status_valid"),
            models.CheckConstraint(condition=Q(price__isnull=True) | Q(price__gte=0), name="product_price_not_negative"),  # noqa: E501
            models.CheckConstraint(condition=~Q(sku=""), name="product_sku_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} · {self.name}"

    @property
    def primary_image(self) -> ProductImage | None:
        images = list(self.images.all())
        for image in images:
            if image.role == ImageRole.PRIMARY:
                return image
        return images[0] if images else None


class Variant(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    size = models.CharField(max_length=20)
    barcode = models.CharField(max_length=64, null=True, blank=True)
    stock_quantity = models.IntegerField(default=0)
    history = HistoricalRecords(history_change_reason_field=models.TextField(null=True))

    class Meta:
        ordering = ["product", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "size"], name="variant_unique_size_per_product"),
            models.UniqueConstraint(
                fields=["barcode"], condition=Q(barcode__isnull=False) & ~Q(barcode=""), name="variant_unique_barcode"
            ),
            models.CheckConstraint(condition=Q(stock_quantity__gte=0), name="variant_stock_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} / {self.size}"


class ImageRole(models.TextChoices):
    PRIMARY = "primary", "Primary"
    ALTERNATE = "alternate", "Alternate"
    SNAPSHOT = "snapshot", "Snapshot-derived"


def product_image_path(instance: ProductImage, filename: str) -> str:
    return f"catalog/{instance.sha256[:2]}/{instance.sha256}{_suffix(filename)}"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot != -1 else ".jpg"


class ProductImage(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=product_image_path, max_length=255)
    role = models.CharField(max_length=10, choices=ImageRole.choices, default=ImageRole.ALTERNATE)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField("SHA-256", max_length=64)
    quality_flags = models.JSONField(default=list, blank=True, help_text="e.g. blurry, small, dark, cluttered")
    is_synthetic = models.BooleanField(default=False)
    # The garment's colour histogram (matching.colour), written when the photo is embedded; re-ranks matches.
    colour = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    history = HistoricalRecords(history_change_reason_field=models.TextField(null=True),
                                excluded_fields=["colour"])

    class Meta:
        ordering = ["product", "role", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "sha256"], name="productimage_unique_file_per_product"),
            models.CheckConstraint(condition=Q(role__in=ImageRole.values), name="productimage_role_valid"),
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="productimage_size_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} {self.role} {self.width}x{self.height}"


class Look(models.Model):
    """A curated set of products worn together, used by complete-the-look."""

    name = models.CharField(max_length=200)
    products = models.ManyToManyField(Product, related_name="looks")
    is_active = models.BooleanField(default=True)
    is_synthetic = models.BooleanField(default=False, help_text="Generated demo data, not a real look.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


# Catalogue cleanup rows live in their own module but belong to this app.
from .cleanup.models import Finding, ImageSignature, MergeRecord, RelabelRecord, ScanChunk, ScanRun  # noqa: E402, F401


class Deal(models.Model):
    """A price reduction on one product for a time window: a fixed deal price or a percentage off.

    Shown to shoppers (the mirror); when several deals are live at once the lowest resulting price wins.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="deals")
    label = models.CharField(max_length=80, help_text='Shown to shoppers, e.g. "Winter sale".')
    percent_off = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True,
        help_text="e.g. 25 for 25 % off. Leave empty for a deal price.",
    )
    deal_price = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True,
        help_text="The price during the deal (instead of % off).",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "id"]
        indexes = [models.Index(fields=["product", "ends_at"])]
        constraints = [
            models.CheckConstraint(
                condition=(Q(percent_off__isnull=False) & Q(deal_price__isnull=True))
                | (Q(percent_off__isnull=True) & Q(deal_price__isnull=False)),
                name="deal_percent_or_price",
            ),
            models.CheckConstraint(
                condition=Q(percent_off__isnull=True) | (Q(percent_off__gt=0) & Q(percent_off__lt=100)),
                name="deal_percent_between_0_and_100",
            ),
            models.CheckConstraint(
                condition=Q(deal_price__isnull=True) | Q(deal_price__gte=0), name="deal_price_not_negative"
            ),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="deal_ends_after_start"),
        ]

    def __str__(self) -> str:
        amount = f"{self.percent_off:g} % off" if self.percent_off is not None else f"{self.deal_price}"
        return f"{self.label}: {self.product.sku} {amount}"

    def price_for(self, base: Decimal | None) -> Decimal | None:
        """The price during this deal, from the product's regular price (None when unknown)."""
        if self.deal_price is not None:
            return self.deal_price
        if base is None or self.percent_off is None:
            return None
        return (base * (Decimal(100) - self.percent_off) / Decimal(100)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
