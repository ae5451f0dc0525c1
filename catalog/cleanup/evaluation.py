"""``manage.py evaluate_cleanup`` (DESIGN §5): load a catalogue CSV, run every scan, report the findings.

Runs in whatever database is current; the command wraps it in a throwaway one.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from django.db import transaction
from django.test.utils import override_settings

from catalog.imaging import ImageRejected
from catalog.models import CategoryKind, Product
from catalog.services import (
    category_for_text,
    category_get_or_create,
    gender_for_text,
    product_create,
    product_image_add,
)

from .models import Finding, FindingKind, ScanRun
from .services import scan_run_execute

IMPORT_CHUNK = 64


def catalogue_load(catalog_csv: Path, *, progress: Callable[[int], None] | None = None) -> tuple[dict[int, str], dict]:
    """One product per SKU with its photos, embedded through the usual after-commit path.

    Returns ``{image id: image path as in the CSV}`` and ingest figures."""
    from matching.evaluation import read_csv
    from matching.services import catalog_embed, embedding_model_active

    rows = read_csv(catalog_csv, ["sku", "image"])
    by_sku: dict[str, list[dict]] = {}
    for row in rows:
        if row["sku"] and row["image"]:
            by_sku.setdefault(row["sku"], []).append(row)
    paths: dict[int, str] = {}
    started = time.perf_counter()
    skus = list(by_sku)
    with override_settings(CLEANUP={"AUTO_SCAN": False}):  # one full scan afterwards, not one per chunk
        for start in range(0, len(skus), IMPORT_CHUNK):
            with transaction.atomic():
                for sku in skus[start : start + IMPORT_CHUNK]:
                    _load_sku(sku, by_sku[sku], catalog_csv.parent, paths)
            if progress:
                progress(len(paths))
    catalog_embed(model=embedding_model_active())  # anything the after-commit path did not do
    return paths, {
        "products": len(skus), "images": len(paths), "ingest_seconds": round(time.perf_counter() - started, 2),
    }


def _load_sku(sku: str, rows: list[dict], root: Path, paths: dict[int, str]) -> None:
    first = rows[0]
    category = category_for_text(first.get("category", "")) or category_get_or_create(
        name=(first.get("category") or "Uncategorised")[:100], kind=CategoryKind.ACCESSORY)
    product = Product.objects.filter(sku=sku).first() or product_create(
        sku=sku, name=first.get("name") or sku, category=category,
        gender=gender_for_text(first.get("gender", "")) or "unisex",
    )
    for n, row in enumerate(rows):
        try:
            image, _ = product_image_add(product=product, data=(root / row["image"]).read_bytes(),
                                         filename=Path(row["image"]).name, role="primary" if n == 0 else "alternate")
        except (OSError, ImageRejected):
            continue
        paths.setdefault(image.pk, row["image"])


def cleanup_report(*, paths: dict[int, str]) -> dict:
    """The findings in the DESIGN §5 shape."""
    duplicates = []
    for finding in Finding.objects.filter(kind=FindingKind.DUPLICATE).order_by("id"):
        duplicates.append(sorted(finding.products.values_list("sku", flat=True)))
    wrong_labels = [
        {"sku": d["sku"], "field": d["field"], "current": d["current"], "suggested": d["suggested"],
         "confidence": d["confidence"]}
        for d in (f.details for f in Finding.objects.filter(kind=FindingKind.WRONG_LABEL).order_by("id"))
    ]
    bad_photos = [
        {"sku": d["sku"], "image": paths.get(d["image"], str(d["image"])), "flags": d["flags"]}
        for d in (f.details for f in Finding.objects.filter(kind=FindingKind.BAD_PHOTO).order_by("id"))
    ]
    gaps = [f.details for f in Finding.objects.filter(kind=FindingKind.GAP).order_by("id")]
    return {"duplicates": sorted(duplicates), "wrong_labels": wrong_labels, "bad_photos": bad_photos, "gaps": gaps}


def cleanup_evaluate(catalog_csv: Path, *, progress: Callable[[int], None] | None = None, heads: bool = False) -> dict:
    """Load the catalogue, run every scan, report. ``heads``: train and activate classification heads on the
    loaded catalogue first (its mistakes included, as an installation would), so the label scan asks them."""
    from matching.services import embedding_model_active

    paths, ingest = catalogue_load(catalog_csv, progress=progress)
    if heads:
        from matching.heads import heads_train

        with tempfile.TemporaryDirectory(prefix="cleanup-heads-") as folder, \
                override_settings(STOCKMATCH_HEADS_DIR=folder):
            heads_train(model=embedding_model_active(), force=True)
            return _scan_and_report(paths, ingest)
    return _scan_and_report(paths, ingest)


def _scan_and_report(paths: dict[int, str], ingest: dict) -> dict:
    from matching.services import embedding_model_active

    run = ScanRun.objects.create()
    started = time.perf_counter()
    run = scan_run_execute(scan_run_id=run.pk, inline=True)
    seconds = round(time.perf_counter() - started, 2)
    return {**cleanup_report(paths=paths), "scan_seconds": seconds, "scan_seconds_by_step": run.counts.get("seconds"),
            **ingest, "model_version": embedding_model_active().name}
