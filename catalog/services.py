"""Writes to the catalogue. Views, admin actions, commands and tasks call these; they own transactions."""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.text import slugify

from .history import history_record_create
from .imaging import ImageRejected, load_image
from .models import Category, CategoryKind, Gender, ImageRole, Product, ProductImage, ProductStatus, Variant

if TYPE_CHECKING:
    from PIL import Image

# Free-text category words (catalogue CSVs, article types, phone-photo labels) → (parent, child, kind).
CATEGORY_ALIASES: dict[str, tuple[str, str, str]] = {}
_CATEGORY_WORDS = {
    ("Topwear", "T-Shirt", CategoryKind.TOPWEAR): ["t-shirt", "tshirt", "tshirts", "tee", "top", "tops", "polo", "longsleeve"],  # noqa: E501
    ("Topwear", "Shirt", CategoryKind.TOPWEAR): ["shirt", "shirts", "blouse", "blouses"],
    ("Topwear", "Sweater", CategoryKind.TOPWEAR): ["sweater", "sweaters", "sweatshirt", "sweatshirts", "hoodie", "jumper", "cardigan", "kurtas", "kurta", "tunics"],  # noqa: E501
    ("Topwear", "Top", CategoryKind.TOPWEAR): ["topwear", "vest", "tank", "camisole"],
    ("Bottomwear", "Trousers", CategoryKind.BOTTOMWEAR): ["trousers", "pants", "pant", "track pants", "chinos", "leggings", "bottomwear", "capris"],  # noqa: E501
    ("Bottomwear", "Jeans", CategoryKind.BOTTOMWEAR): ["jeans", "denim"],
    ("Bottomwear", "Shorts", CategoryKind.BOTTOMWEAR): ["shorts"],
    ("Bottomwear", "Skirt", CategoryKind.BOTTOMWEAR): ["skirt", "skirts"],
    ("Full body", "Dress", CategoryKind.FULL_BODY): ["dress", "dresses", "jumpsuit", "full-body", "full body"],
    ("Outerwear", "Jacket", CategoryKind.OUTERWEAR): ["jacket", "jackets", "outwear", "outerwear", "coat", "coats", "blazer", "blazers"],  # noqa: E501
    ("Footwear", "Shoes", CategoryKind.FOOTWEAR): ["shoes", "shoe", "footwear", "casual shoes", "sports shoes", "formal shoes", "sneakers", "heels", "flats", "boots"],  # noqa: E501
    ("Footwear", "Sandals", CategoryKind.FOOTWEAR): ["sandals", "sandal", "flip flops", "slippers"],
    ("Accessories", "Accessory", CategoryKind.ACCESSORY): ["accessory", "accessories", "hat", "cap", "bag", "bags", "handbags", "belt", "belts", "watch", "watches", "scarf", "socks", "skip"],  # noqa: E501
}
for _key, _words in _CATEGORY_WORDS.items():
    for _word in _words:
        CATEGORY_ALIASES[_word] = (_key[0], _key[1], str(_key[2]))

GENDER_ALIASES = {
    "men": Gender.MEN, "man": Gender.MEN, "male": Gender.MEN, "m": Gender.MEN,
    "women": Gender.WOMEN, "woman": Gender.WOMEN, "female": Gender.WOMEN, "f": Gender.WOMEN, "w": Gender.WOMEN,
    "unisex": Gender.UNISEX, "u": Gender.UNISEX, "": Gender.UNISEX,
    "boys": Gender.BOYS, "boy": Gender.BOYS, "girls": Gender.GIRLS, "girl": Gender.GIRLS,
}


def kind_for_text(text: str) -> str | None:
    """Map free-text category ("Tshirts", "top", "Jeans") to a category kind, or None when unknown."""
    entry = CATEGORY_ALIASES.get((text or "").strip().lower())
    return entry[2] if entry else None


def gender_for_text(text: str) -> str | None:
    return GENDER_ALIASES.get((text or "").strip().lower())


def category_get_or_create(*, name: str, kind: str, parent_name: str | None = None) -> Category:
    """Get or create ``parent_name > name``; the parent shares the child's kind."""
    parent = None
    if parent_name:
        parent = _category_node(name=parent_name, kind=kind, parent=None)
    return _category_node(name=name, kind=kind, parent=parent)


def _category_node(*, name: str, kind: str, parent: Category | None) -> Category:
    existing = Category.objects.filter(name=name, parent=parent).first()
    if existing:
        return existing
    base_slug = slugify(f"{parent.name}-{name}" if parent else name) or "category"
    slug, n = base_slug, 1
    while Category.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base_slug}-{n}"
    try:
        with transaction.atomic():
            return Category.objects.create(name=name, slug=slug, kind=kind, parent=parent)
    except IntegrityError:
        return Category.objects.get(name=name, parent=parent)


def category_for_text(text: str) -> Category | None:
    """The catalogue category for free text: a known alias, or an existing category of that name."""
    cleaned = (text or "").strip()
    if not cleaned:
        return None
    alias = CATEGORY_ALIASES.get(cleaned.lower())
    if alias:
        return category_get_or_create(parent_name=alias[0], name=alias[1], kind=alias[2])
    return Category.objects.filter(name__iexact=cleaned).first()


def product_image_add(
    *, product: Product, data: bytes, filename: str = "image.jpg", role: str = ImageRole.ALTERNATE,
    is_synthetic: bool = False,
) -> tuple[ProductImage, bool]:
    """Validate and store a photo for ``product``. The same file is never stored twice for a product.

    Returns ``(image, created)``. Raises ``ImageRejected`` with the reason when the file is unusable.
    """
    loaded = load_image(data)
    existing = ProductImage.objects.filter(product=product, sha256=loaded.sha256).first()
    if existing:
        return existing, False
    if role == ImageRole.PRIMARY and product.images.filter(role=ImageRole.PRIMARY).exists():
        role = ImageRole.ALTERNATE
    width, height = loaded.image.size
    image = ProductImage(
        product=product, role=role, width=width, height=height, sha256=loaded.sha256,
        quality_flags=quality_flags_for(loaded.image), is_synthetic=is_synthetic,
    )
    image.file.save(filename, ContentFile(data), save=False)
    try:
        with transaction.atomic():
            image.save()
    except IntegrityError:
        image.file.delete(save=False)
        return ProductImage.objects.get(product=product, sha256=loaded.sha256), False
    return image, True


def quality_flags_for(image: Image.Image) -> list[str]:
    """Photo flags shown to the catalogue team at once (``cleanup.photos.PHOTO_FLAGS``); the cleanup scan
    recomputes them, with the segmentation network for photos that are not on a studio background."""
    from .cleanup.photos import photo_signature

    return photo_signature(image, segment=False).flags


@transaction.atomic
def variant_adjust_stock(
    *, variant_id: int, delta: int, reason: str = "", user: AbstractBaseUser | None = None
) -> Variant:
    """Add ``delta`` (negative to remove) to a variant's stock atomically; the database refuses < 0.

    The only way stock changes: each change leaves a history row with who, why and the new quantity.
    """
    Variant.objects.filter(pk=variant_id).update(stock_quantity=F("stock_quantity") + delta)
    variant = Variant.objects.get(pk=variant_id)
    history_record_create(variant, user=user, reason=reason or f"stock {delta:+d}")
    return variant


def variant_get_or_create(*, product: Product, size: str) -> Variant:
    """The product's variant of ``size`` (any case), created with no stock when missing; safe under races."""
    variant = Variant.objects.filter(product=product, size__iexact=size).first()
    if variant is not None:
        return variant
    try:
        with transaction.atomic():
            return Variant.objects.create(product=product, size=size, stock_quantity=0)
    except IntegrityError:
        return Variant.objects.get(product=product, size=size)


def product_create(
    *, sku: str, name: str, category: Category, gender: str = Gender.UNISEX, brand: str = "", colour: str = "",
    price: Decimal | None = None, status: str = ProductStatus.ACTIVE, is_synthetic: bool = False,
) -> Product:
    return Product.objects.create(
        sku=sku, name=name, category=category, gender=gender, brand=brand, colour=colour, price=price,
        status=status, is_synthetic=is_synthetic,
    )


__all__ = [
    "ImageRejected", "category_for_text", "category_get_or_create", "gender_for_text", "kind_for_text",
    "product_create", "product_image_add", "quality_flags_for", "variant_adjust_stock", "variant_get_or_create",
]
