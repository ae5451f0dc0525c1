"""Builders shared by the mirror tests (holds no tests): device keys, a small real catalogue, camera frames."""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from catalog.models import Deal, Look, Product, ProductStatus
from catalog.services import category_get_or_create, product_image_add
from matching.mirror.models import MirrorKey
from tests import factories

RECOMMEND_URL = "/api/v1/mirror/recommendations"
PAIRS = (2100, 2101, 2102, 2103, 2104, 2105)  # held-out shop/worn pairs (the lead trains on < 2100)

# Every key a shopper-facing response may contain, at any depth.
SHOPPER_KEYS = {
    "status", "message", "garments", "kind", "gender", "label", "confidence", "region", "similar",
    "complete_the_look", "sku", "name", "brand", "price", "currency", "deal", "percent_off", "ends_at", "sizes",
    "image_urls", "code", "expires_at", "items", "size", "detail",
}


def device_client(name: str = "mirror 1") -> tuple[APIClient, MirrorKey]:
    device, key = MirrorKey.objects.create_key(name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client, device


def keys_in(value) -> set[str]:
    """Every dictionary key anywhere in a JSON value."""
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_in(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_in(v) for v in value)) if value else set()
    return set()


def scalars_in(value) -> list:
    """Every non-container value anywhere in a JSON value."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in scalars_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in scalars_in(v)]
    return [value]


def frame_of(path: Path, size: tuple[int, int] = (1080, 1440), fmt: str = "JPEG") -> io.BytesIO:
    """A camera-sized frame made from a real photo (upscaled as a mirror camera would see the shopper)."""
    image = Image.open(path).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=90)
    buffer.seek(0)
    buffer.name = f"frame.{fmt.lower()}"
    return buffer


def worn_photo(shared_data: Path, pair: int) -> Path:
    return shared_data / "shop-worn-pairs" / "worn" / f"p{pair:04d}.jpg"


def shop_photo(shared_data: Path, pair: int) -> Path:
    return shared_data / "shop-worn-pairs" / "shop" / f"p{pair:04d}.jpg"


def studio_rows(shared_data: Path, sub_category: str, gender: str, n: int) -> list[dict]:
    with open(shared_data / "catalog-photos" / "labels.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["sub_category"] == sub_category and r["gender"] == gender]
    return rows[:n]


def _product(sku: str, kind: str, category: str, data: bytes, *, stock: int = 3, **fields) -> Product:
    product = factories.product(
        sku=sku, category_obj=category_get_or_create(name=category, kind=kind), gender="women",
        price=Decimal("40.00"), **fields,
    )
    product_image_add(product=product, data=data, filename=f"{sku}.jpg", role="primary")
    factories.variant(product_obj=product, size="S", stock=0)
    factories.variant(product_obj=product, size="M", stock=stock)
    return product


@dataclass
class Shop:
    tops: dict[int, Product]  # pair number -> the shop photo's product
    bottoms: list[Product]
    shoes: list[Product]
    sold_out_bottom: Product
    retired_bottom: Product
    draft_shoe: Product
    look: Look


def build_shop(shared_data: Path) -> Shop:
    """Women's tops (the shop photos of held-out pairs), bottoms and shoes from studio photos, a look, a deal,
    and items that must never be recommended (sold out, retired, draft); all embedded for matching."""
    from matching.services import catalog_embed, embedding_model_active

    tops = {n: _product(f"TOP-{n}", "topwear", "Top", shop_photo(shared_data, n).read_bytes()) for n in PAIRS}
    bottoms_rows = studio_rows(shared_data, "Bottomwear", "Women", 6)
    shoes_rows = studio_rows(shared_data, "Shoes", "Women", 4)
    photo = lambda row: (shared_data / "catalog-photos" / row["image"]).read_bytes()  # noqa: E731
    bottoms = [_product(f"BOT-{i}", "bottomwear", "Trousers", photo(row)) for i, row in enumerate(bottoms_rows[:3])]
    shoes = [_product(f"SHO-{i}", "footwear", "Shoes", photo(row)) for i, row in enumerate(shoes_rows[:2])]
    sold_out = _product("BOT-SOLD", "bottomwear", "Trousers", photo(bottoms_rows[3]), stock=0)
    retired = _product("BOT-RET", "bottomwear", "Trousers", photo(bottoms_rows[4]), status=ProductStatus.RETIRED)
    draft = _product("SHO-DRAFT", "footwear", "Shoes", photo(shoes_rows[2]), status=ProductStatus.DRAFT)
    look = Look.objects.create(name="Weekend")
    look.products.add(tops[PAIRS[0]], bottoms[2], sold_out, retired, tops[PAIRS[1]])
    now = timezone.now()
    Deal.objects.create(product=bottoms[2], label="Spring sale", percent_off=Decimal("25"),
                        starts_at=now - dt.timedelta(days=1), ends_at=now + dt.timedelta(days=6))
    catalog_embed(model=embedding_model_active())
    return Shop(tops, bottoms, shoes, sold_out, retired, draft, look)
