"""``evaluate_classification`` (DESIGN §5): heads and kNN judged on photos the catalogue never saw.

TRAIN's photos become the catalogue of the current (throwaway) database through the catalogue import, so
they are embedded exactly as catalogue photos are. Each TEST photo is turned into what the embedder would
see in production:

- a catalogue-like photo (plain white studio background, detected by ``preprocess.is_studio_photo``) through
  ``services.catalog_view``, as when the catalogue itself is classified (cleanup's label checks);
- any other photo (phone, mirror camera) through ``services.query_view``: the segmentation cut-out that
  ``match_image`` embeds, which is what the mirror classifies.

``--test-view catalog|query`` forces one path. TEST is then classified twice through
``classify_vectors``: by kNN voting (no head yet), and after ``heads_train`` by the heads.

TRAIN photos that are not studio photos (phone photos: what confirmed intake items are in production) do not
join the catalogue: they are embedded as camera photos and given to ``heads_train`` as its camera-domain
examples, as labelled intake photos are (``camera_examples``). kNN votes over the catalogue only.
"""
from __future__ import annotations

import csv
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.core.management.base import CommandError

from catalog.imaging import ImageRejected, load_image
from catalog.models import CategoryKind, Gender

from . import evaluation, search, services
from .appearance import appearance_dimension, appearance_embedder, appearance_of, appearance_version
from .classification import ATTRIBUTES, classify_vectors
from .heads import HeadConfig, heads_train, scores
from .preprocess import is_studio_photo

VIEWS = ("auto", "catalog", "query")


@dataclass
class EvalPhoto:
    image: str
    gender: str
    kind: str
    view: str  # "catalog" | "query"
    vector: np.ndarray
    ms: float  # decode + view + embed (+ appearance)
    appearance: np.ndarray | None = None  # the appearance embedder's vector of the same views (heads read it)


def read_labelled(path: Path) -> list[dict]:
    """Rows of an ``image,gender,kind`` CSV; an unknown gender or kind is refused with the valid values."""
    rows = evaluation.read_csv(path, ["image", "gender", "kind"])
    valid = {"gender": set(Gender.values), "kind": set(CategoryKind.values)}
    for n, row in enumerate(rows, start=2):
        for column in ("gender", "kind"):
            row[column] = row[column].lower()
            if row[column] and row[column] not in valid[column]:
                raise CommandError(
                    f"{path}, line {n}: {column} {row[column]!r} is not one of {', '.join(sorted(valid[column]))} "
                    f"(or empty)."
                )
    return rows


def studio_and_camera(csv_path: Path, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """TRAIN rows split into studio photos (white background: the catalogue) and camera photos; an
    unreadable photo stays with the studio rows, whose import reports it."""
    studio, camera = [], []
    for row in rows:
        try:
            image = load_image((csv_path.parent / row["image"]).read_bytes()).image
        except (OSError, ImageRejected):
            studio.append(row)
            continue
        (studio if is_studio_photo(image) else camera).append(row)
    return studio, camera


def camera_vectors(photos: list[EvalPhoto], dimension: int) -> search.LabelledVectors:
    """Camera TRAIN photos as ``heads_train``'s camera examples; each photo is its own product."""
    looks = appearance_embedder() is not None
    return search.LabelledVectors(
        image_ids=np.zeros(len(photos), dtype=np.int64),
        product_ids=-np.arange(1, len(photos) + 1, dtype=np.int64),
        genders=[photo.gender for photo in photos], kinds=[photo.kind for photo in photos],
        vectors=np.stack([photo.vector for photo in photos]) if photos else np.zeros((0, dimension), np.float32),
        appearance=(np.stack([photo.appearance for photo in photos]) if photos
                    else np.zeros((0, appearance_dimension()), np.float32)) if looks else None,
    )


def train_catalogue_import(train_csv: Path, rows: list[dict], *, progress: Callable[[int], None] | None) -> dict:
    """Load TRAIN rows with both labels as one product each (through the catalogue import, so embedded
    as catalogue photos are); rows missing a label are skipped and counted."""
    usable = [row for row in rows if row["gender"] and row["kind"]]
    with tempfile.TemporaryDirectory(prefix="classify-train-") as folder:
        catalog_csv = Path(folder) / "catalog.csv"
        with open(catalog_csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sku", "image", "category", "gender", "name"])
            for n, row in enumerate(usable):
                writer.writerow([f"TRAIN-{n:06d}", str((train_csv.parent / row["image"]).resolve()), row["kind"],
                                 row["gender"], Path(row["image"]).name])
        ingest = evaluation.catalogue_import(catalog_csv, progress=progress)
    ingest["skipped_unlabelled"] = len(rows) - len(usable)
    return ingest


def photos_embed(test_csv: Path, rows: list[dict], *, view: str, segment: str,
                      progress: Callable[[int], None] | None = None) -> tuple[list[EvalPhoto], int]:
    """Embed each TEST photo one at a time (as a live request would), timing decode + view + embed, and the
    appearance vector of the same views when an appearance embedder is configured."""
    embedder = services.embedder_for(services.embedding_model_active())
    looker = appearance_embedder()
    looks = looker is not None
    looks_rule = looker.studio_mask_rule if looker is not None else None
    photos, unreadable = [], 0
    for n, row in enumerate(rows):
        started = time.perf_counter()
        try:
            image = load_image((test_csv.parent / row["image"]).read_bytes()).image
        except (OSError, ImageRejected):
            unreadable += 1
            continue
        chosen = view if view != "auto" else ("catalog" if is_studio_photo(image) else "query")
        context = embedder.context_view
        seen = (services.catalog_views(image, context=context, rule=embedder.studio_mask_rule) if chosen == "catalog"
                else services.query_views(image, segment=segment, context=context))
        vector = embedder.embed_groups([seen])[0]
        look = None
        if looks:
            # the appearance embedder sees a studio photo through its own mask rule, as the catalogue stores it
            look_views = (services.catalog_views(image, context=context, rule=looks_rule)
                          if chosen == "catalog" and looks_rule != embedder.studio_mask_rule else seen)
            look = appearance_of([look_views])[0]
        photos.append(EvalPhoto(image=row["image"], gender=row["gender"], kind=row["kind"], view=chosen,
                                vector=vector, ms=(time.perf_counter() - started) * 1000, appearance=look))
        if progress:
            progress(n + 1)
    return photos, unreadable


def classify_timed(photos: list[EvalPhoto]) -> tuple[list, list[float]]:
    """``classify_vectors`` one photo at a time; returns the predictions and the ms each took."""
    model = services.embedding_model_active()
    predictions, ms = [], []
    for photo in photos:
        started = time.perf_counter()
        look = photo.appearance[None, :] if photo.appearance is not None else None
        predictions.append(classify_vectors(photo.vector[None, :], model=model, appearance=look)[0])
        ms.append((time.perf_counter() - started) * 1000)
    return predictions, ms


def summary_of(photos: list[EvalPhoto], predictions: list, classify_ms: list[float]) -> dict:
    out: dict = {"n_test": len(photos)}
    for attribute in ATTRIBUTES:
        pairs = [(getattr(photo, attribute), getattr(prediction, attribute))
                 for photo, prediction in zip(photos, predictions, strict=True) if getattr(photo, attribute)]
        result = scores([true for true, _ in pairs], [p.label if p else None for _, p in pairs])
        out[f"n_{attribute}"] = result["n"]
        out[f"{attribute}_accuracy"] = result["accuracy"]
        out[f"{attribute}_recall"] = result["recall"]
        out[f"{attribute}_mean_recall"] = result["mean_recall"]
        out[f"{attribute}_source"] = dict(Counter(p.source if p else "none" for _, p in pairs))
    total = [photo.ms + extra for photo, extra in zip(photos, classify_ms, strict=True)]
    out["ms_per_image_p50"] = round(float(np.percentile(total, 50)), 1) if total else None
    out["classify_ms_p50"] = round(float(np.percentile(classify_ms, 50)), 2) if classify_ms else None
    return out


def evaluate(train_csv: Path, test_csv: Path, *, view: str = "auto", segment: str = "auto",
             config: HeadConfig | None = None, progress: Callable[[str, int], None] | None = None) -> dict:
    """Run the whole evaluation in the current database (the command makes it a throwaway one)."""
    train_rows, test_rows = read_labelled(train_csv), read_labelled(test_csv)
    if view not in VIEWS:
        raise CommandError(f"Unknown test view {view!r}; use one of {', '.join(VIEWS)}.")
    studio_rows, camera_rows = studio_and_camera(train_csv, train_rows)
    ingest = train_catalogue_import(train_csv, studio_rows, progress=progress and (lambda n: progress("catalogue", n)))
    model = services.embedding_model_active()
    camera, _ = photos_embed(train_csv, camera_rows, view="query", segment=segment,
                             progress=progress and (lambda n: progress("camera", n)))
    photos, unreadable = photos_embed(test_csv, test_rows, view=view, segment=segment,
                                           progress=progress and (lambda n: progress("test", n)))
    knn = summary_of(photos, *classify_timed(photos))
    reports = heads_train(model=model, config=config, force=True, camera=camera_vectors(camera, model.dimension))
    heads = summary_of(photos, *classify_timed(photos))
    return {
        **heads,
        "classifier": "heads (kNN for an attribute without one)",
        "knn": knn,
        "heads": {
            report.attribute: {
                "name": report.head.name if report.head else None, "skipped": report.skipped or None,
                "val_accuracy": report.metrics.get("accuracy"),
                "baseline_val_accuracy": report.baseline.get("accuracy"),
                "promoted_by_rule": report.beats_baseline,
            }
            for report in reports
        },
        "n_train_images": ingest["images"], "n_train_skipped_unlabelled": ingest["skipped_unlabelled"],
        "n_train_camera_images": len(camera),
        "n_test_unreadable": unreadable, "test_views": dict(Counter(photo.view for photo in photos)),
        "segmentation": segment if any(photo.view == "query" for photo in photos) else None,
        "model_versions": {"embedder": model.name, "appearance": appearance_version() or None},
    }
