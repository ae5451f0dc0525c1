"""Registering a trained embedder as a version, and promoting it only when it measures better.

A candidate is scored against the active version on the held-out pairs of the given pair files, through the
real path (``evaluation.catalogue_import`` + ``run_queries`` in a throwaway database): it is promoted when its
recall@1 is higher and its recall@10 is not lower. The verdict also records the paired split (queries only one of
the two puts right first) and its McNemar p. Promotion starts the background re-embedding of the catalogue
(the old version serves until it is done); the thresholds come with the weights (fitted on validation pairs).
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from django.utils import timezone

from segmentation.weights import sha256_file

from .. import conf, evaluation, services
from ..models import EmbeddingModel, ModelState
from ..throwaway import throwaway_database
from .pair_eval import write_pair_eval

logger = logging.getLogger(__name__)


def embedder_register(*, weights: Path) -> EmbeddingModel:
    """Copy the weights (and sidecar) under the trained-models folder by checksum, record the version row."""
    digest = sha256_file(weights)
    folder = conf.trained_dir() / "embedder"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"efficientnet-lite0-ft-{digest[:16]}.pt"
    if not target.exists():
        shutil.copyfile(weights, target)
    sidecar = Path(weights).with_suffix(".json")
    if sidecar.exists():
        shutil.copyfile(sidecar, target.with_suffix(".json"))
    model = services.embedding_model_for(embedder_name=services.TRAINED_EMBEDDER, weights=str(target))
    if sidecar.exists():
        trained = json.loads(sidecar.read_text()).get("metrics", {})
        model.metrics = {**(model.metrics or {}), "training": trained}
        model.save(update_fields=["metrics"])
    return model


def _throwaway_run(
    *, embedder_name: str, weights: str | None, catalog: Path, queries: Path, segment: bool | str, prefix: str,
    garments: bool = True,
) -> tuple[list[evaluation.QueryRecord], dict, EmbeddingModel]:
    """Import ``catalog`` and match ``queries`` with that embedder version, in a throwaway database
    (``garments``: every garment found, merged, as the mirror; else one cut-out per photo, as intake)."""
    with throwaway_database(prefix):
        stand_in = services.embedding_model_for(embedder_name=embedder_name, weights=weights)
        services.embedding_model_switch(model_id=stand_in.pk)
        ingest = evaluation.catalogue_import(catalog)
        return evaluation.run_queries(queries, segment=segment, garments=garments), ingest, stand_in


def holdout_scores(
    model: EmbeddingModel, *, catalog: Path, queries: Path, segment: bool | str = "auto",
) -> tuple[dict, list[evaluation.QueryRecord]]:
    """recall@1/@10 and the open-set AUROC of ``model`` on an evaluation set, in a throwaway database, one
    cut-out per photo as intake matches (the figures in docs/matching.md, ``evaluate_matching --single-garment``),
    and the query records they come from."""
    records, ingest, stand_in = _throwaway_run(embedder_name=model.embedder, weights=model.weights or None,
                                               catalog=catalog, queries=queries, segment=segment, prefix="promote",
                                               garments=False)
    summary = evaluation.summarise(records, ingest=ingest, model=stand_in, segment=segment)
    return {key: summary[key] for key in ("n_queries", "recall@1", "recall@10", "mrr", "open_set")}, records


def embedder_promote(
    *, model: EmbeddingModel, pair_files: Iterable[Path], distractors: Path | None = None,
    distractor_limit: int | None = 500, pair_limit: int | None = None, segment: bool | str = "auto",
) -> dict:
    """Score ``model`` and the active version on held-out pairs; start the switch only when ``model`` wins."""
    active = services.embedding_model_active()
    if model.pk == active.pk:
        return {"promoted": False, "reason": "already active"}
    pair_files = list(pair_files)
    if not pair_files:
        return {"promoted": False, "reason": "no pair file to judge on"}
    with tempfile.TemporaryDirectory(prefix="promote-") as tmp:
        made = write_pair_eval(pairs_csv=Path(pair_files[0]), out=Path(tmp), split="holdout",
                               distractors_csv=distractors, distractor_limit=distractor_limit, pair_limit=pair_limit)
        candidate, candidate_records = holdout_scores(model, catalog=made["catalog"], queries=made["queries"],
                                                      segment=segment)
        current, active_records = holdout_scores(active, catalog=made["catalog"], queries=made["queries"],
                                                 segment=segment)
    better = (candidate["recall@1"] or 0) > (current["recall@1"] or 0) and (
        (candidate["recall@10"] or 0) >= (current["recall@10"] or 0))
    # The rule is the issue's; the paired split beside it says how much of a difference is chance.
    verdict = {"promoted": better, "candidate": candidate, "active": current, "active_model": active.name,
               "paired": evaluation.paired_first(candidate_records, active_records),
               "judged_at": timezone.now().isoformat(),
               "reason": "better on held-out pairs" if better else "not better than the active version"}
    model = EmbeddingModel.objects.get(pk=model.pk)
    model.metrics = {**(model.metrics or {}), "promotion": verdict}
    if better:
        model.save(update_fields=["metrics"])
        services.embedding_model_activate(embedder_name=model.embedder, weights=model.weights or None)
    else:
        model.state = ModelState.RETIRED
        model.save(update_fields=["metrics", "state"])
    logger.info("promotion of %s: %s", model.name, verdict)
    return verdict


def embedder_calibrate_on_pairs(
    *, weights: Path, pair_file: Path, distractors: Path | None = None, distractor_limit: int | None = None,
    segment: bool | str = "auto", target_precision: float | None = None,
) -> dict:
    """Fit the decision thresholds of trained ``weights`` on the validation pairs (never the held-out ones)
    through the real match path, and write them into the weights' sidecar: a fresh installation starts with
    them, and the expected precision is stated."""
    from .. import calibration, conf

    with tempfile.TemporaryDirectory(prefix="calibrate-") as tmp:
        made = write_pair_eval(pairs_csv=pair_file, out=Path(tmp), split="validation", distractors_csv=distractors,
                               distractor_limit=distractor_limit)
        # one cut-out per photo: the thresholds serve intake's decision, which matches that way (match_image)
        records, _, _ = _throwaway_run(embedder_name=services.TRAINED_EMBEDDER, weights=str(weights),
                                       catalog=made["catalog"], queries=made["queries"], segment=segment,
                                       prefix="calib", garments=False)
    alpha = conf.open_set_alpha()
    pairs = calibration.pairs_from_records(records, alpha=alpha)
    thresholds, metrics = calibration.calibrate(pairs, alpha=alpha, target_precision=target_precision)
    metrics["source"] = (f"validation pairs of {pair_file.parent.name} ({len(pairs)} queries, segment={segment}, "
                         "one cut-out)")
    sidecar_path = Path(weights).with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.exists() else {}
    sidecar["calibration"] = {"thresholds": thresholds, "metrics": metrics}
    sidecar_path.write_text(json.dumps(sidecar, indent=2))
    return sidecar["calibration"]
