"""Catalogue admin for the catalogue team: thumbnails, search by SKU and name, variants and images inline, history."""
from django.contrib import admin
from django.db.models import IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from .admin_history import ProductHistoryAdminMixin, StockAdjustAdminMixin, adjust_stock_link
from .models import Category, Deal, Look, Product, ProductImage, Variant
from .thumbnails import thumbnail_url


def thumbnail(image: ProductImage | None, size: int = 64) -> str:
    url = thumbnail_url(source=image.file, size=size, key=image.sha256) if image is not None else ""
    if not url:
        return "—"
    return format_html(
        '<img src="{}" width="{}" height="{}" loading="lazy" style="object-fit:contain;background:#f4f4f4;'
        'border-radius:4px" alt="{}">',
        url, size, size, image.product.sku if image.product_id else "",
    )


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "slug", "product_count")
    list_filter = ("kind", "parent")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="products")
    def product_count(self, obj: Category) -> int:
        return obj.products.count()


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ("size", "barcode", "stock_quantity", "adjust")
    readonly_fields = ("stock_quantity", "adjust")  # stock changes only through the stock service

    @admin.display(description="stock")
    def adjust(self, obj: Variant) -> str:
        return adjust_stock_link(obj)


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0
    fields = ("preview", "file", "role", "width", "height", "quality_flags", "is_synthetic")
    readonly_fields = ("preview", "width", "height", "quality_flags", "is_synthetic")

    @admin.display(description="photo")
    def preview(self, obj: ProductImage) -> str:
        return thumbnail(obj, 96)

    def has_add_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False  # new photos go through the import or intake so they are validated and hashed


@admin.register(Product)
class ProductAdmin(ProductHistoryAdminMixin, SimpleHistoryAdmin):
    list_display = ("photo", "sku", "name", "category", "gender", "status", "stock", "price", "synthetic_badge")
    list_display_links = ("photo", "sku")
    list_filter = ("status", "gender", "category__kind", "category", "is_synthetic")
    search_fields = ("sku", "name", "brand", "variants__barcode")
    list_select_related = ("category",)
    list_per_page = 50
    readonly_fields = ("origin", "created_at", "updated_at", "is_synthetic")
    autocomplete_fields = ("merged_into",)
    inlines = [VariantInline, ProductImageInline]
    fieldsets = (
        (None, {"fields": ("sku", "name", "brand", "category", "gender", "colour", "price", "status", "origin")}),
        ("History", {"fields": ("merged_into", "is_synthetic", "created_at", "updated_at"), "classes": ["collapse"]}),
    )

    def get_queryset(self, request):
        # A subquery, not Sum() over the join: a search on variants__barcode joins variants again and
        # would multiply the sum by the number of variants.
        stock = (Variant.objects.filter(product=OuterRef("pk")).order_by().values("product")
                 .annotate(total=Sum("stock_quantity")).values("total"))
        return super().get_queryset(request).prefetch_related("images").annotate(
            total_stock=Coalesce(Subquery(stock, output_field=IntegerField()), 0)
        )

    @admin.display(description="came from")
    def origin(self, obj: Product) -> str:
        from warehouse.review.admin_draft import draft_origin_html

        return draft_origin_html(obj)

    @admin.display(description="photo")
    def photo(self, obj: Product) -> str:
        return thumbnail(obj.primary_image)

    @admin.display(description="stock", ordering="total_stock")
    def stock(self, obj: Product) -> int:
        return obj.total_stock or 0

    @admin.display(description="data", ordering="is_synthetic")
    def synthetic_badge(self, obj: Product) -> str:
        if obj.is_synthetic:
            return format_html('<span style="background:#fde68a;padding:2px 6px;border-radius:3px">{}</span>', "synthetic")  # noqa: E501
        return ""


@admin.register(Variant)
class VariantAdmin(StockAdjustAdminMixin, SimpleHistoryAdmin):
    list_display = ("product", "size", "barcode", "stock_quantity")
    search_fields = ("product__sku", "product__name", "barcode")
    list_select_related = ("product",)
    autocomplete_fields = ("product",)
    readonly_fields = ("stock_quantity",)  # changed only by the "adjust stock" action (the stock service)
    actions = ["adjust_stock"]


@admin.register(ProductImage)
class ProductImageAdmin(SimpleHistoryAdmin):
    list_display = ("preview", "product", "role", "width", "height", "quality_flags", "is_synthetic")
    list_filter = ("role", "is_synthetic")
    search_fields = ("product__sku", "product__name", "sha256")
    list_select_related = ("product",)
    readonly_fields = ("preview", "width", "height", "sha256", "quality_flags", "is_synthetic", "created_at")
    fields = ("preview", "product", "file", "role", "width", "height", "sha256", "quality_flags", "is_synthetic")

    @admin.display(description="photo")
    def preview(self, obj: ProductImage) -> str:
        return thumbnail(obj, 96)

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False


@admin.register(Look)
class LookAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "size", "is_synthetic")
    list_filter = ("is_active", "is_synthetic")
    search_fields = ("name", "products__sku")
    filter_horizontal = ("products",)

    @admin.display(description="products")
    def size(self, obj: Look) -> int:
        return obj.products.count()


@admin.register(Deal)
class DealAdmin(admin.ModelAdmin):
    list_display = ("label", "product", "percent_off", "deal_price", "starts_at", "ends_at", "is_active")
    list_filter = ("is_active", "starts_at", "ends_at")
    search_fields = ("label", "product__sku", "product__name")
    list_select_related = ("product",)
    autocomplete_fields = ("product",)
    date_hierarchy = "starts_at"


from .cleanup import admin as cleanup_admin  # noqa: E402, F401 - findings, scans, merges; photo flag filter
