"""Retrieval evaluation on data the project has never seen (DESIGN §5: ``evaluate_matching``).

The catalogue CSV is imported through the catalogue services into whatever database is current (the
commands use a throwaway one), embedded through the real after-commit path, and every query photo is
matched through ``match_image`` / ``match_garments``. Per-query records feed both the summary and
threshold calibration.
"""
from __future__ import annotations

import csv
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import CommandError
from django.db import transaction
from django.test.utils import override_settings

from catalog.imaging import ImageRejected, load_image
from catalog.models import CategoryKind, Product
from catalog.services import (
    category_for_text,
    category_get_or_create,
    gender_for_text,
    product_create,
    product_image_add,
)

from . import calibration, conf, services
from .models import EmbeddingModel, ProductEmbedding

IMPORT_CHUNK = 64


@dataclass
class QueryRecord:
    image: str
    sku: str | None  # None: not in the catalogue
    rank: int | None  # 1-based rank of the right SKU among the candidates, None when absent
    top_sku: str | None
    top_score: float
    margin: float
    kind: str | None  # category kind of the top candidate
    ms: float
    accepted: bool  # the decision said "in catalogue"
    segmenters: tuple[str, ...] = ()  # "method[:version]" of each cut-out used
    scores: tuple[float, ...] = ()  # every candidate's score, best first
    skus: tuple[str, ...] = ()  # every candidate's SKU, best first


def read_csv(path: Path, required: list[str]) -> list[dict]:
    if not path.exists():
        raise CommandError(f"{path} does not exist.")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in required if column not in (reader.fieldnames or [])]
        if missing:
            raise CommandError(f"{path} lacks column(s) {', '.join(missing)}; expected {','.join(required)}.")
        return [{key: (value or "").strip() for key, value in row.items() if key} for row in reader]


def catalogue_import(catalog_csv: Path, *, progress: Callable[[int], None] | None = None) -> dict:
    """Create one product per SKU and its images; embedding runs after each chunk commits."""
    rows = read_csv(catalog_csv, ["sku", "image"])
    by_sku: dict[str, list[dict]] = {}
    for row in rows:
        if row["sku"]:
            by_sku.setdefault(row["sku"], []).append(row)
    started = time.perf_counter()
    images = 0
    skus = list(by_sku)
    # Only matching reads an evaluation's catalogue: the cleanup's incremental scan after each chunk (a sixth of a
    # calibration's time, docs/matching.md) would find duplicates and bad photos that no manager ever sees.
    with override_settings(CLEANUP={**getattr(settings, "CLEANUP", {}), "AUTO_SCAN": False}):
        for start in range(0, len(skus), IMPORT_CHUNK):
            with transaction.atomic():
                for sku in skus[start : start + IMPORT_CHUNK]:
                    images += _import_sku(sku, by_sku[sku], catalog_csv.parent)
            if progress:
                progress(images)
    model = services.embedding_model_active()
    services.catalog_embed(model=model)  # anything the after-commit path could not do
    seconds = time.perf_counter() - started
    return {"skus": len(skus), "images": images, "seconds": seconds,
            "embedded": ProductEmbedding.objects.filter(model=model).count()}


def _import_sku(sku: str, rows: list[dict], root: Path) -> int:
    first = rows[0]
    category = category_for_text(first.get("category", "")) or category_get_or_create(
        name=first.get("category") or "Uncategorised", kind=CategoryKind.ACCESSORY
    )
    product = Product.objects.filter(sku=sku).first() or product_create(
        sku=sku, name=first.get("name") or sku, category=category,
        gender=gender_for_text(first.get("gender", "")) or "unisex",
    )
    added = 0
    for n, row in enumerate(rows):
        path = root / row["image"]
        try:
            _, created = product_image_add(product=product, data=path.read_bytes(), filename=path.name,
                                           role="primary" if n == 0 else "alternate")
        except (OSError, ImageRejected):
            continue
        added += int(created)
    return added


def live_thresholds() -> dict:
    """The calibrated thresholds of the configured embedder's version in the current (live) database."""
    from django.db import DatabaseError

    from .embedders import get_embedder

    try:
        model = EmbeddingModel.objects.filter(name=get_embedder().version).first()
    except DatabaseError:  # the live database has no matching tables yet
        return {}
    return dict(model.thresholds) if model else {}


def thresholds_apply(thresholds: dict) -> None:
    """Give the (throwaway) active model the live thresholds, so the decision is scored as it would run."""
    if thresholds:
        EmbeddingModel.objects.filter(pk=services.embedding_model_active().pk).update(thresholds=thresholds)


def run_queries(queries_csv: Path, *, segment: bool | str, garments: bool = True, k: int = 10,
                progress: Callable[[int], None] | None = None) -> list[QueryRecord]:
    rows = read_csv(queries_csv, ["image", "sku"])
    depth = calibration.decision_depth(k)  # records keep the scores the open-set score needs
    records = []
    for n, row in enumerate(rows):
        path = queries_csv.parent / row["image"]
        started = time.perf_counter()
        try:
            image = load_image(path.read_bytes()).image
        except (OSError, ImageRejected):
            continue
        if garments and segment:
            result = services.match_garments(image, k=depth, segment=segment)
        else:
            result = services.match_image(image, k=depth, segment=segment)
        ms = (time.perf_counter() - started) * 1000
        skus = [candidate.sku for candidate in result.candidates]
        wanted = row["sku"] or None
        records.append(QueryRecord(
            image=row["image"], sku=wanted, rank=skus.index(wanted) + 1 if wanted in skus else None,
            top_sku=skus[0] if skus else None, top_score=float(result.decision["score"]),
            margin=float(result.decision["margin"]), ms=ms, accepted=bool(result.decision["in_catalogue"]),
            kind=result.candidates[0].category_kind if result.candidates else None,
            segmenters=tuple(
                f"{cut.method}:{cut.model_version}" if getattr(cut, "model_version", None) else str(cut.method)
                for cut in result.cutouts
            ),
            scores=tuple(round(float(candidate.score), 6) for candidate in result.candidates), skus=tuple(skus),
        ))
        if progress:
            progress(n + 1)
    return records


RECORD_FIELDS = ("image", "sku", "rank", "top_sku", "top_score", "margin", "kind", "accepted", "ms", "scores",
                 "skus")


def records_write(records: list[QueryRecord], path: Path) -> None:
    """One CSV row per query (``scores`` and ``skus``: the candidates', best first, space-separated)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RECORD_FIELDS)
        for r in records:
            writer.writerow([r.image, r.sku or "", r.rank or "", r.top_sku or "", r.top_score, r.margin, r.kind or "",
                             int(r.accepted), round(r.ms, 1), " ".join(str(score) for score in r.scores),
                             " ".join(r.skus)])


def records_read(path: Path) -> list[QueryRecord]:
    """The query records ``records_write`` wrote (segmenters left empty); a damaged row is refused with its line."""
    records = []
    for line, row in enumerate(read_csv(path, list(RECORD_FIELDS)), start=2):
        try:
            records.append(QueryRecord(
                image=row["image"], sku=row["sku"] or None, rank=int(row["rank"]) if row["rank"] else None,
                top_sku=row["top_sku"] or None, top_score=float(row["top_score"]), margin=float(row["margin"]),
                kind=row["kind"] or None, ms=float(row["ms"] or 0), accepted=row["accepted"] == "1",
                scores=tuple(float(x) for x in row["scores"].split()), skus=tuple(row["skus"].split()),
            ))
        except ValueError as error:
            raise CommandError(f"{path}, line {line}: not an evaluate_matching --records row ({error}).") from error
    return records


def summarise(records: list[QueryRecord], *, ingest: dict, model: EmbeddingModel, segment: bool | str) -> dict:
    known = [r for r in records if r.sku]
    unknown = [r for r in records if not r.sku]
    ranks = [r.rank for r in known]
    ms = np.asarray([r.ms for r in records]) if records else np.zeros(1)

    def recall(at: int) -> float | None:
        return round(float(np.mean([bool(rank and rank <= at) for rank in ranks])), 4) if ranks else None

    decided_right = [(r.accepted and r.top_sku == r.sku) if r.sku else not r.accepted for r in records]
    alpha = conf.open_set_alpha()
    segmentation = "none"
    if segment:
        method = segment if isinstance(segment, str) else "auto"
        segmentation = f"cut_out ({method})"
    return {
        "n_queries": len(records), "n_in_catalogue": len(known), "n_not_in_catalogue": len(unknown),
        "recall@1": recall(1), "recall@5": recall(5), "recall@10": recall(10),
        "mrr": round(float(np.mean([1.0 / rank if rank else 0.0 for rank in ranks])), 4) if ranks else None,
        "open_set": calibration.pairs_auroc(calibration.pairs_from_records(records, alpha=alpha)),
        "open_set_alpha": alpha,
        "open_set_top_score": calibration.pairs_auroc(calibration.pairs_from_records(records, alpha=0.0)),
        "decision_accuracy": round(float(np.mean(decided_right)), 4) if records else None,
        "decision_thresholds": model.thresholds or "uncalibrated (settings.MATCHING defaults)",
        "decisions_by_kind": decisions_by_kind(records),
        "ingest_images_per_s": round(ingest["images"] / ingest["seconds"], 2) if ingest["seconds"] else None,
        "match_ms_p50": round(float(np.percentile(ms, 50)), 1), "match_ms_p95": round(float(np.percentile(ms, 95)), 1),
        "catalog_skus": ingest["skus"], "catalog_images": ingest["images"],
        "segmentation": segmentation,
        "segmentation_methods": dict(Counter(name for r in records for name in r.segmenters).most_common()),
        "model_versions": {"embedder": model.name, "segmenter": _segmenter_version(records)},
    }


def decisions_by_kind(records: list[QueryRecord]) -> dict:
    """The "in catalogue" answers by the top candidate's category kind (the kind whose thresholds decided):
    queries, those in the catalogue, accepted, and accepted wrongly (another SKU, or a garment not in the
    catalogue). The shipped thresholds were fitted on tops; this shows where other kinds' errors fall."""
    table: dict[str, dict[str, int]] = {}
    for record in records:
        row = table.setdefault(record.kind or "", {"queries": 0, "in_catalogue": 0, "accepted": 0, "wrong": 0})
        row["queries"] += 1
        row["in_catalogue"] += bool(record.sku)
        row["accepted"] += record.accepted
        row["wrong"] += record.accepted and record.top_sku != record.sku
    return dict(sorted(table.items()))


def paired_first(candidate: list[QueryRecord], active: list[QueryRecord]) -> dict:
    """Two versions on the same in-catalogue queries: how many each alone puts right first, and the exact
    two-sided McNemar p of that split (the chance of a split at least this uneven between equal versions).
    On a few hundred queries a recall@1 near 0.78 has a standard error near 0.03, so the counts say more."""
    by_image = {r.image: r for r in active}
    candidate_only = active_only = 0
    for record in candidate:
        other = by_image.get(record.image)
        if not record.sku or other is None:
            continue
        mine, theirs = record.rank == 1, other.rank == 1
        candidate_only += mine and not theirs
        active_only += theirs and not mine
    n, low = candidate_only + active_only, min(candidate_only, active_only)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(low + 1)) / 2**n) if n else 1.0
    return {"candidate_only_first": candidate_only, "active_only_first": active_only, "mcnemar_p": round(p, 4)}


def _segmenter_version(records: list[QueryRecord]) -> str | None:
    """The segmentation network version the cut-outs report (None when only GrabCut or nothing ran)."""
    versions = Counter(name.split(":", 1)[1] for r in records for name in r.segmenters if ":" in name)
    return versions.most_common(1)[0][0] if versions else None
