"""Catalogue admin for the catalogue team: thumbnails, search by SKU and name, variants and images inline."""
from django.contrib import admin
from django.db.models import Sum
from django.utils.html import format_html

from .models import Category, Deal, Look, Product, ProductImage, Variant


def thumbnail(image: ProductImage | None, size: int = 64) -> str:
    if image is None or not image.file:
        return "—"
    return format_html(
        '<img src="{}" width="{}" height="{}" loading="lazy" style="object-fit:contain;background:#f4f4f4;'
        'border-radius:4px" alt="{}">',
        image.file.url, size, size, image.product.sku if image.product_id else "",
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
    fields = ("size", "barcode", "stock_quantity")


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0
    fields = ("preview", "file", "role", "width", "height", "quality_flags", "is_synthetic")
    readonly_fields = ("preview", "width", "height", "quality_flags", "is_synthetic")

    @admin.display(description="photo")
    def preview(self, obj: ProductImage) -> str:
        return thumbnail(obj, 96)

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # new photos go through the import or intake so they are validated and hashed


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("photo", "sku", "name", "category", "gender", "status", "stock", "price", "synthetic_badge")
    list_display_links = ("photo", "sku")
    list_filter = ("status", "gender", "category__kind", "category", "is_synthetic")
    search_fields = ("sku", "name", "brand", "variants__barcode")
    list_select_related = ("category",)
    list_per_page = 50
    readonly_fields = ("created_at", "updated_at", "is_synthetic")
    autocomplete_fields = ("merged_into",)
    inlines = [VariantInline, ProductImageInline]
    fieldsets = (
        (None, {"fields": ("sku", "name", "brand", "category", "gender", "colour", "price", "status")}),
        ("History", {"fields": ("merged_into", "is_synthetic", "created_at", "updated_at"), "classes": ["collapse"]}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("images").annotate(total_stock=Sum("variants__stock_quantity"))

    @admin.display(description="photo")
    def photo(self, obj: Product) -> str:
        return thumbnail(obj.primary_image)

    @admin.display(description="stock", ordering="total_stock")
    def stock(self, obj: Product) -> int:
        return obj.total_stock or 0

    @admin.display(description="data", ordering="is_synthetic")
    def synthetic_badge(self, obj: Product) -> str:
        if obj.is_synthetic:
            return format_html('<span style="background:#fde68a;padding:2px 6px;border-radius:3px">{}</span>', "synthetic")
        return ""


@admin.register(Variant)
class VariantAdmin(admin.ModelAdmin):
    list_display = ("product", "size", "barcode", "stock_quantity")
    search_fields = ("product__sku", "product__name", "barcode")
    list_select_related = ("product",)
    autocomplete_fields = ("product",)


@admin.register(ProductImage)
class ProductImageAdmin(admin.ModelAdmin):
    list_display = ("preview", "product", "role", "width", "height", "quality_flags", "is_synthetic")
    list_filter = ("role", "is_synthetic")
    search_fields = ("product__sku", "product__name", "sha256")
    list_select_related = ("product",)
    readonly_fields = ("preview", "width", "height", "sha256", "quality_flags", "is_synthetic", "created_at")
    fields = ("preview", "product", "file", "role", "width", "height", "sha256", "quality_flags", "is_synthetic")

    @admin.display(description="photo")
    def preview(self, obj: ProductImage) -> str:
        return thumbnail(obj, 96)

    def has_add_permission(self, request) -> bool:
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
