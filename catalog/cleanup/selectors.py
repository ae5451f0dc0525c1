"""Reads for catalogue cleanup."""
from __future__ import annotations

from django.db.models import QuerySet

from catalog.models import Product, ProductStatus

from .models import Finding, FindingState, ScanRun

MAX_MERGE_CHAIN = 20


def product_resolve(*, sku: str) -> Product | None:
    """The live product behind ``sku``: a merged product's SKU leads to the product it was merged into."""
    product = Product.objects.select_related("category").filter(sku=(sku or "").strip()).first()
    return product_follow_merges(product=product) if product is not None else None


def product_follow_merges(*, product: Product) -> Product:
    seen = {product.pk}
    while product.status == ProductStatus.MERGED and product.merged_into_id and len(seen) < MAX_MERGE_CHAIN:
        product = Product.objects.select_related("category").get(pk=product.merged_into_id)
        if product.pk in seen:
            break
        seen.add(product.pk)
    return product


def findings_open(*, kind: str | None = None) -> QuerySet[Finding]:
    qs = Finding.objects.filter(state=FindingState.OPEN)
    return qs.filter(kind=kind) if kind else qs


def scan_run_latest() -> ScanRun | None:
    return ScanRun.objects.order_by("-created_at", "-id").first()
