"""Reads for the mirror: shopper-safe product views and the fitting room's open shortlists.

What a shopper may see is decided here and only here: SKU, name, brand, price and currency, the live
deal, the sizes in stock (never how many) and photo URLs. No internal id, stock count, score, snapshot
or staff data is ever put in these dictionaries.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Prefetch, Q
from django.utils import timezone

from catalog.models import Deal, ImageRole, Product, ProductStatus, Variant

from .models import Shortlist, ShortlistStatus

if TYPE_CHECKING:
    import datetime as dt

ImageUrl = Callable[[str], str]  # sha256 of a product photo -> its URL for the mirror


def mirror_setting(name: str, default: Any) -> Any:
    return getattr(settings, "MIRROR", {}).get(name, default)


def _live_deals(now: dt.datetime) -> Prefetch:
    return Prefetch(
        "deals", queryset=Deal.objects.filter(is_active=True, starts_at__lte=now, ends_at__gt=now), to_attr="live_deals"
    )


def products_for_shoppers(*, product_ids: Sequence[int], image_url: ImageUrl) -> list[dict]:
    """Shopper-safe views of active products, in ``product_ids`` order (others are left out)."""
    now = timezone.now()
    products = (
        Product.objects.filter(pk__in=list(product_ids), status=ProductStatus.ACTIVE)
        .prefetch_related("images", Prefetch("variants", queryset=Variant.objects.order_by("id")), _live_deals(now))
        .in_bulk()
    )
    return [product_view(products[pid], image_url=image_url) for pid in product_ids if pid in products]


def product_for_shoppers(*, sku: str, image_url: ImageUrl) -> dict | None:
    """The shopper-safe view of the active product with ``sku``, or None."""
    product = (
        Product.objects.filter(sku=sku, status=ProductStatus.ACTIVE)
        .prefetch_related("images", Prefetch("variants", queryset=Variant.objects.order_by("id")),
                          _live_deals(timezone.now()))
        .first()
    )
    return product_view(product, image_url=image_url) if product else None


def product_view(product: Product, *, image_url: ImageUrl) -> dict:
    images = sorted(product.images.all(), key=lambda image: (image.role != ImageRole.PRIMARY, image.pk))
    return {
        "sku": product.sku,
        "name": product.name,
        "brand": product.brand,
        "price": _money(product.price),
        "currency": mirror_setting("CURRENCY", "EUR"),
        "deal": deal_view(getattr(product, "live_deals", []), product.price),
        "sizes": [variant.size for variant in product.variants.all() if variant.stock_quantity > 0],
        "image_urls": list(dict.fromkeys(image_url(image.sha256) for image in images)),
    }


def deal_view(deals: Sequence[Deal], price: Decimal | None) -> dict | None:
    """The live deal giving the lowest price (a percentage deal on a product without a price is skipped)."""
    priced = [(deal.price_for(price), deal) for deal in deals]
    priced = [(value, deal) for value, deal in priced if value is not None]
    if not priced:
        return None
    value, deal = min(priced, key=lambda item: (item[0], item[1].ends_at))
    return {
        "label": deal.label,
        "price": _money(value),
        "percent_off": float(deal.percent_off) if deal.percent_off is not None else None,
        "ends_at": deal.ends_at.isoformat(),
    }


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


# -- fitting room (staff) -----------------------------------------------------------------------------

def shortlists_open() -> list[dict]:
    """Shortlists sent to the fitting room and not yet expired or handled, newest first, with every item's
    stock checked now (an item may have sold out since the shopper picked it)."""
    now = timezone.now()
    shortlists = (
        Shortlist.objects.filter(status=ShortlistStatus.SENT, expires_at__gt=now)
        .prefetch_related("items__product__images", "items__product__variants")
    )
    result = []
    for shortlist in shortlists:
        items = []
        for item in shortlist.items.all():
            product = item.product
            variant = next((v for v in product.variants.all() if v.size == item.size), None)
            stock = variant.stock_quantity if variant else 0
            items.append({
                "sku": product.sku, "name": product.name, "size": item.size,
                "in_stock": stock > 0 and product.status == ProductStatus.ACTIVE, "stock": stock,
                "image": product.primary_image.file.url if product.primary_image else None,
            })
        result.append({
            "id": shortlist.pk, "code": shortlist.code, "created_at": shortlist.created_at,
            "expires_at": shortlist.expires_at, "items": items,
        })
    return result


def shortlist_code_taken(code: str) -> bool:
    now = timezone.now()
    return Shortlist.objects.filter(Q(code=code) & Q(status=ShortlistStatus.SENT) & Q(expires_at__gt=now)).exists()
