"""Catalogue import and export in the CSV format of DESIGN §5.

Format: ``sku,image,category,gender,name`` plus optional ``price,size,stock,brand,colour`` columns; one
row per image, several rows per SKU; ``image`` is relative to the CSV's folder. Import is idempotent:
products are matched by SKU, images by SHA-256 per product, variants by size, so a re-run creates
nothing new. Each row is its own transaction: a bad row is reported with its line number and the rest
goes on.
"""
from __future__ import annotations

import csv
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.db import transaction

from .imaging import ImageRejected
from .models import ImageRole, Product, ProductStatus, Variant
from .services import category_for_text, gender_for_text, product_image_add

REQUIRED_COLUMNS = ("sku", "image")
KNOWN_COLUMNS = ("sku", "image", "category", "gender", "name", "price", "size", "stock", "brand", "colour")
EXPORT_COLUMNS = KNOWN_COLUMNS


class RowError(ValueError):
    pass


@dataclass
class ImportReport:
    rows: int = 0
    products_created: int = 0
    products_updated: int = 0
    images_added: int = 0
    variants_created: int = 0
    variants_updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def add(self, other: ImportReport) -> None:
        for name in ("products_created", "products_updated", "images_added", "variants_created", "variants_updated"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        return (
            f"{self.rows} rows: {self.products_created} products created, {self.products_updated} updated, "
            f"{self.images_added} images added, {self.variants_created} variants created, "
            f"{self.variants_updated} variants updated, {len(self.errors)} bad rows"
        )


def read_rows(csv_path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)``; the header is line 1. Raises RowError for a missing column."""
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip().lower() for name in (reader.fieldnames or [])]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise RowError(f"{csv_path}: missing column(s) {', '.join(missing)}; the header must include sku,image")
        reader.fieldnames = header
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def count_rows(csv_path: Path) -> int:
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def catalog_import(
    *, csv_path: Path, is_synthetic: bool = False, on_row: Callable[[], None] | None = None
) -> ImportReport:
    csv_path = Path(csv_path).resolve()
    report = ImportReport()
    for line, row in read_rows(csv_path):
        report.rows += 1
        row_report = ImportReport()
        try:
            with transaction.atomic():
                _import_row(row, base_dir=csv_path.parent, report=row_report, is_synthetic=is_synthetic)
        except (RowError, ImageRejected) as exc:
            report.errors.append((line, str(exc)))
        else:
            report.add(row_report)
        if on_row:
            on_row()
    return report


def _import_row(row: dict[str, str], *, base_dir: Path, report: ImportReport, is_synthetic: bool) -> None:
    sku = row.get("sku", "")
    if not sku:
        raise RowError("sku is empty")
    if len(sku) > 64:
        raise RowError("sku is longer than 64 characters")
    fields = _product_fields(row)
    size = row.get("size", "")[:20]
    stock = _parse_int(row["stock"], "stock") if row.get("stock") else None
    image_path = None
    if row.get("image"):
        image_path = (base_dir / row["image"]).resolve()
        if not image_path.is_file():
            raise RowError(f"image not found: {row['image']}")
    product = Product.objects.select_for_update().filter(sku=sku).first()
    if product is not None and product.status == ProductStatus.MERGED:
        # A merged SKU's photos and stock go to the product it was merged into; its own fields stay.
        from .cleanup.selectors import product_follow_merges

        product = Product.objects.select_for_update().get(pk=product_follow_merges(product=product).pk)
        fields = {}
    if product is None:
        if "category" not in fields:
            raise RowError(f"category is required for new product {sku}")
        fields.setdefault("name", sku)
        product = Product.objects.create(sku=sku, status=ProductStatus.ACTIVE, is_synthetic=is_synthetic, **fields)
        report.products_created += 1
    else:
        changed = {k: v for k, v in fields.items() if getattr(product, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(product, key, value)
            product.save(update_fields=[*changed, "updated_at"])
            report.products_updated += 1

    if size:
        variant, created = Variant.objects.get_or_create(
            product=product, size=size, defaults={"stock_quantity": stock or 0}
        )
        if created:
            report.variants_created += 1
        elif stock is not None and variant.stock_quantity != stock:
            variant.stock_quantity = stock
            variant.save(update_fields=["stock_quantity"])
            report.variants_updated += 1

    if image_path is not None:  # last: a photo file is only stored once the rest of the row is good
        role = ImageRole.ALTERNATE if product.images.exists() else ImageRole.PRIMARY
        _, created = product_image_add(
            product=product, data=image_path.read_bytes(), filename=image_path.name, role=role,
            is_synthetic=is_synthetic,
        )
        report.images_added += int(created)


def _product_fields(row: dict[str, str]) -> dict:
    fields: dict = {}
    if row.get("name"):
        fields["name"] = row["name"][:200]
    if row.get("category"):
        category = category_for_text(row["category"])
        if category is None:
            raise RowError(f"unknown category {row['category']!r}")
        fields["category"] = category
    if row.get("gender"):
        gender = gender_for_text(row["gender"])
        if gender is None:
            raise RowError(f"unknown gender {row['gender']!r} (men, women, unisex, boys, girls)")
        fields["gender"] = gender
    if row.get("price"):
        try:
            price = Decimal(row["price"])
        except InvalidOperation as exc:
            raise RowError(f"price {row['price']!r} is not a number") from exc
        if price < 0 or not price.is_finite():
            raise RowError(f"price {row['price']!r} must be zero or more")
        fields["price"] = price.quantize(Decimal("0.01"))
    for key, limit in (("brand", 100), ("colour", 50)):
        if row.get(key):
            fields[key] = row[key][:limit]
    return fields


def _parse_int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise RowError(f"{name} {value!r} is not a whole number") from exc
    if number < 0:
        raise RowError(f"{name} {value!r} must be zero or more")
    return number


def catalog_export(*, csv_path: Path, statuses: tuple[str, ...] | None = None) -> int:
    """Write the catalogue as CSV plus an ``images/`` folder beside it; returns the number of rows.

    Each product gives max(images, variants) rows, so images, sizes and stock all survive a round trip.
    """
    csv_path = Path(csv_path).resolve()
    image_dir = csv_path.parent / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    products = Product.objects.select_related("category").prefetch_related("images", "variants").order_by("sku")
    if statuses:
        products = products.filter(status__in=statuses)
    rows = 0
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for product in products.iterator(chunk_size=200):
            images = sorted(product.images.all(), key=lambda im: (im.role != ImageRole.PRIMARY, im.id))
            variants = list(product.variants.all())
            image_names = [_export_image(image, image_dir) for image in images]
            for i in range(max(len(image_names), len(variants), 1)):
                variant = variants[i] if i < len(variants) else None
                writer.writerow(
                    {
                        "sku": product.sku,
                        "image": image_names[min(i, len(image_names) - 1)] if image_names else "",
                        "category": product.category.name,
                        "gender": product.gender,
                        "name": product.name,
                        "price": "" if product.price is None else str(product.price),
                        "size": variant.size if variant else "",
                        "stock": str(variant.stock_quantity) if variant else "",
                        "brand": product.brand,
                        "colour": product.colour,
                    }
                )
                rows += 1
    return rows


def _export_image(image, image_dir: Path) -> str:  # noqa: ANN001
    suffix = Path(image.file.name).suffix or ".jpg"
    name = f"{image.sha256}{suffix}"
    target = image_dir / name
    if not target.exists():
        with image.file.open("rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
    return f"images/{name}"
