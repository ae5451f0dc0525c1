"""Write the demo catalogue through the catalogue services: products, variants, images, looks, snapshots.

Idempotent: products are found by SKU, variants by size, images by SHA-256 (``product_image_add``), looks by
name, and snapshot files are rewritten only when their bytes change, so a second run creates nothing.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count

from catalog.models import Category, ImageRole, Look, Product, Variant
from catalog.services import category_get_or_create, product_create, product_image_add

from .mistakes import mistakes_build
from .photos import Mapper, photo_mapper, product_photos, snapshot_photo
from .spec import CATEGORIES, ProductSpec, look_plans, product_spec

CHUNK = 24  # products per transaction


@dataclass
class DemoReport:
    products_created: int = 0
    variants_created: int = 0
    images_created: int = 0
    looks_created: int = 0
    snapshots_written: int = 0
    snapshot_csv: Path | None = None

    @property
    def created(self) -> int:
        return (self.products_created + self.variants_created + self.images_created + self.looks_created
                + self.snapshots_written)

    def summary(self) -> str:
        return (
            f"{self.products_created} products, {self.variants_created} variants, {self.images_created} images, "
            f"{self.looks_created} looks created; {self.snapshots_written} snapshots written"
            + (f" ({self.snapshot_csv})" if self.snapshot_csv else "")
        )


def default_snapshot_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "demo" / "snapshots"


def demo_catalogue_build(
    *, seed: int = 7, products: int = 240, snapshots: int = 40, snapshot_dir: Path | None = None, workers: int = 1,
    progress: Callable[[], None] | None = None, mistakes: bool = True,
) -> DemoReport:
    """Create (or complete) the synthetic demo catalogue and write phone-like query snapshots.

    Photos are rendered by ``workers`` processes while this one writes rows; ``progress`` is called once
    per product and once per snapshot. ``mistakes`` plants ``mistakes.MISTAKES`` for the cleanup screens.
    """
    report = DemoReport()
    specs = [product_spec(seed=seed, index=i) for i in range(products)]
    categories = _categories()
    found = {
        p.sku: p
        for p in Product.objects.filter(sku__in=[s.sku for s in specs]).annotate(image_count=Count("images"))
    }
    to_render = [s for s in specs if s.sku not in found or found[s.sku].image_count < len(s.views)]
    with photo_mapper(workers) as mapper:
        # Lazy and in order: rows for product n are written while the workers render product n + 1, ...
        rendered = iter(zip(to_render, mapper(product_photos, [(seed, s.index) for s in to_render]), strict=True))
        waiting = {s.sku for s in to_render}
        for start in range(0, len(specs), CHUNK):
            # One transaction per chunk: photos added together are embedded together (one batch per commit).
            with transaction.atomic():
                for spec in specs[start : start + CHUNK]:
                    photos = next(rendered)[1] if spec.sku in waiting else []
                    _product_build(spec, found.get(spec.sku), categories[spec.category.garment], photos, report)
                    if progress:
                        progress()
        _looks_build(specs, seed, report)
        if mistakes:
            mistakes_build(seed, categories, report)
        if snapshots:
            folder = snapshot_dir or default_snapshot_dir()
            report.snapshot_csv = _snapshots_write(specs, seed, snapshots, folder, mapper, report, progress)
    return report


def _categories() -> dict[str, Category]:
    return {
        garment: category_get_or_create(name=c.name, kind=c.kind, parent_name=c.parent)
        for garment, c in CATEGORIES.items()
    }


def _product_build(spec: ProductSpec, product: Product | None, category: Category, photos: list[bytes],
                   report: DemoReport) -> None:
    """Create the product with its variants and photos, or complete what an interrupted run left out."""
    if product is None:
        product = product_create(
            sku=spec.sku, name=spec.name, category=category, gender=spec.gender, brand=spec.brand,
            colour=spec.colour, price=spec.price, is_synthetic=True,
        )
        report.products_created += 1
        have: set[str] = set()
    else:
        have = set(product.variants.values_list("size", flat=True))
    missing = [v for v in spec.variants if v.size not in have]
    if missing:
        Variant.objects.bulk_create(
            [Variant(product=product, size=v.size, barcode=v.barcode, stock_quantity=v.stock) for v in missing]
        )
        report.variants_created += len(missing)
    for number, (view, data) in enumerate(zip(spec.views, photos, strict=False)):
        _, created = product_image_add(
            product=product, data=data, filename=f"{spec.sku.lower()}-{number + 1}-{view}.jpg",
            role=ImageRole.PRIMARY if number == 0 else ImageRole.ALTERNATE, is_synthetic=True,
        )
        report.images_created += created


def _looks_build(specs: list[ProductSpec], seed: int, report: DemoReport) -> None:
    products = {p.sku: p for p in Product.objects.filter(sku__in=[s.sku for s in specs])}
    for name, items in look_plans(specs, seed):
        with transaction.atomic():
            look, created = Look.objects.get_or_create(name=name, defaults={"is_synthetic": True})
            if created:
                look.products.set([products[item.sku] for item in items])
                report.looks_created += 1


def _snapshots_write(specs: list[ProductSpec], seed: int, count: int, folder: Path, mapper: Mapper,
                     report: DemoReport, progress: Callable[[], None] | None) -> Path:
    """Write ``count`` snapshots of products spread over the catalogue, and ``snapshots.csv`` (image,sku).

    When the folder already holds this very listing and its files, nothing is rendered again (delete the
    folder to force it).
    """
    folder.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng([seed, 3_000_000]).permutation(len(specs))
    subjects = [specs[int(order[number % len(specs)])] for number in range(count)]
    rows = [(f"snapshot-{number + 1:03d}.jpg", spec.sku) for number, spec in enumerate(subjects)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("image", "sku"))
    writer.writerows(rows)
    csv_path = folder / "snapshots.csv"
    listing = buffer.getvalue().encode()
    if _unchanged(csv_path, listing) and all((folder / name).is_file() for name, _ in rows):
        jobs = []
    else:
        jobs = [(seed, spec.index, number) for number, spec in enumerate(subjects)]
    for (name, _), data in zip(rows, mapper(snapshot_photo, jobs), strict=False):
        report.snapshots_written += _write_if_changed(folder / name, data)
        if progress:
            progress()
    for _ in rows[len(jobs) :] if progress else ():
        progress()
    _write_if_changed(csv_path, listing)
    return csv_path


def _unchanged(path: Path, data: bytes) -> bool:
    return path.is_file() and path.read_bytes() == data


def _write_if_changed(path: Path, data: bytes) -> bool:
    if _unchanged(path, data):
        return False
    path.write_bytes(data)
    return True
