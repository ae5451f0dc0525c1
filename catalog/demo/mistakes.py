"""Typical catalogue mistakes planted in the demo catalogue, so the cleanup screens have something real to find.

What a catalogue that grew by hand tends to hold: the same garment listed twice under new SKUs (its photo
re-saved by another tool, resized for a web shop, or cropped), a product filed under a category of another
kind, and photos that are too dark or blurred. Each planted product is an ordinary synthetic product (its
name does not give it away); ``MISTAKES`` says what it is, for a catalogue manager trying the screens. None
copies a product that the demo snapshots show, so the snapshots' matching figures are not muddled by them.
Idempotent like the rest of the demo: products by SKU, images by SHA-256.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import transaction
from PIL import Image, ImageEnhance, ImageFilter

from catalog.imaging import encode_jpeg
from catalog.models import Category, ImageRole, Product, Variant
from catalog.services import product_create, product_image_add

from .photos import product_photos
from .spec import ean13, product_spec

if TYPE_CHECKING:
    from .build import DemoReport


def reencoded(image: Image.Image) -> bytes:
    return encode_jpeg(image, 62)


def resized(image: Image.Image) -> bytes:
    return encode_jpeg(image.resize((image.width * 7 // 10, image.height * 7 // 10), Image.Resampling.LANCZOS), 85)


def cropped(image: Image.Image) -> bytes:
    w, h = image.size
    return encode_jpeg(image.crop((w // 12, h // 10, w - w // 12, h - h // 14)), 88)


def darkened(image: Image.Image) -> bytes:
    return encode_jpeg(ImageEnhance.Brightness(image).enhance(0.16), 90)


def blurred(image: Image.Image) -> bytes:
    return encode_jpeg(image.filter(ImageFilter.GaussianBlur(radius=image.width / 90)), 90)


@dataclass(frozen=True)
class Mistake:
    source: int  # demo product index: the product copied, or (``copy`` False) a new product rendered from it
    alter: Callable[[Image.Image], bytes]
    what: str
    copy: bool = True  # a second listing of product ``source`` under a new SKU, with one altered photo
    other_kind: str | None = None  # filed under a category of this kind instead of its own


MISTAKES = (
    Mistake(0, reencoded, "listed twice: the same photo re-saved under a new SKU"),
    Mistake(0, resized, "listed a third time: the photo resized (with the two above, a cluster of three)"),
    Mistake(9, cropped, "listed twice: the photo cropped"),
    Mistake(1006, reencoded, "shoes filed under a topwear category", copy=False, other_kind="topwear"),
    Mistake(1001, reencoded, "a skirt filed under a topwear category", copy=False, other_kind="topwear"),
    Mistake(1004, darkened, "a photo far too dark", copy=False),
    Mistake(1005, blurred, "a blurred photo", copy=False),
)


def planted_sku(mistake: Mistake, number: int, seed: int) -> str:
    if mistake.copy:
        return f"{product_spec(seed=seed, index=mistake.source).sku[:-4]}{900 + number:04d}"
    return product_spec(seed=seed, index=mistake.source).sku


def mistakes_build(seed: int, categories: dict[str, Category], report: DemoReport) -> None:
    """Create the planted products (counted in ``report``)."""
    by_kind: dict[str, Category] = {}
    for category in categories.values():
        by_kind.setdefault(category.kind, category)
    for number, mistake in enumerate(MISTAKES, start=1):
        spec = product_spec(seed=seed, index=mistake.source)
        sku = planted_sku(mistake, number, seed)
        if Product.objects.filter(sku=sku, images__isnull=False).exists():
            continue
        if mistake.copy:
            original = Product.objects.filter(sku=spec.sku).first()
            first = original.images.order_by("id").first() if original else None
            if first is None:
                continue
            with first.file.open("rb") as handle:
                photo = Image.open(io.BytesIO(handle.read())).convert("RGB")
        else:
            photo = Image.open(io.BytesIO(product_photos((seed, mistake.source))[0])).convert("RGB")
        category = categories[spec.category.garment]
        if mistake.other_kind:
            category = by_kind.get(mistake.other_kind, category)
        with transaction.atomic():
            product = Product.objects.filter(sku=sku).first()
            if product is None:
                product = product_create(
                    sku=sku, name=spec.name, category=category, gender=spec.gender, brand=spec.brand,
                    colour=spec.colour, price=spec.price, is_synthetic=True,
                )
                report.products_created += 1
            if not product.variants.exists():
                Variant.objects.bulk_create([
                    Variant(product=product, size=variant.size, stock_quantity=1 + (number + n) % 4,
                            barcode=ean13(f"28{number:07d}{n:03d}") if mistake.copy else variant.barcode)
                    for n, variant in enumerate(spec.variants)
                ])
                report.variants_created += len(spec.variants)
            _, created = product_image_add(product=product, data=mistake.alter(photo), filename=f"{sku.lower()}-1.jpg",
                                           role=ImageRole.PRIMARY, is_synthetic=True)
            report.images_created += created
