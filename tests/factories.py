"""Test data builders (real rows in the real database)."""
from __future__ import annotations

import itertools

from catalog.models import Category, CategoryKind, Product, ProductStatus, Variant
from catalog.services import category_get_or_create

_counter = itertools.count(1)


def category(name: str = "T-Shirt", kind: str = CategoryKind.TOPWEAR, parent: str | None = "Topwear") -> Category:
    return category_get_or_create(name=name, kind=kind, parent_name=parent)


def product(*, sku: str | None = None, category_obj: Category | None = None, **fields) -> Product:
    n = next(_counter)
    defaults = {"name": f"Product {n}", "gender": "unisex", "status": ProductStatus.ACTIVE}
    defaults.update(fields)
    return Product.objects.create(sku=sku or f"SKU-{n:05d}", category=category_obj or category(), **defaults)


def variant(*, product_obj: Product | None = None, size: str = "M", stock: int = 0, barcode: str | None = None) -> Variant:  # noqa: E501
    return Variant.objects.create(product=product_obj or product(), size=size, stock_quantity=stock, barcode=barcode)
