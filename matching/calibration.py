"""Fitting the "in catalogue" decision: a threshold on the open-set score and a margin over the next product.

The open-set score (``open_set_score``) is the top score less ``alpha`` times the mean score of the next
products (ranks 2-10): a product in the catalogue stands out from its neighbours, an unknown garment's best
match is one of a crowd. A query is accepted when its open-set score ≥ ``score`` and top − second ≥
``margin``. The fitted table records its ``alpha``; a table without one was fitted on the plain top score
(alpha 0) and is read that way. An accepted query is right when the top product is the one confirmed.
Among all (score, margin) points we keep the one with the best recall whose precision reaches the target with
the stated confidence: the one-sided Wilson lower bound of its precision, not the precision seen, must reach it.
A point that accepts 60 queries and gets 57 right (0.95) proves less than one that gets 190 of 200; fitted on the
point estimate, a grid over a few hundred queries kept picking lucky points (stated 0.95, read 0.84 on held-out
pairs). When no point qualifies, the best F1. Per category kind where a kind has enough queries of both sorts,
the model-wide point otherwise. The margin is never below ``MATCHING["MIN_MARGIN"]``: calibration pairs may hold no
near-twins, a catalogue does.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from django.utils import timezone
from django.utils.module_loading import import_string

from . import conf
from .models import EmbeddingModel

MARGINS = (0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08)
MIN_PER_KIND = 30  # queries of a kind needed before it gets its own threshold
CROWD = 10  # the open-set score compares the top product with the mean of ranks 2..CROWD


def decision_depth(k: int) -> int:
    """Products a search behind a decision fetches: the ``k`` asked for, and at least the ones the open-set
    score compares."""
    return max(k, CROWD)


def open_set_score(scores: Sequence[float], alpha: float) -> float:
    """Top score less ``alpha`` × the mean of the next products' (ranks 2..CROWD); the top score alone when
    ``alpha`` is 0 or there is no other product. ``scores``: best first."""
    if not scores:
        return 0.0
    crowd = scores[1:CROWD]
    return float(scores[0]) - (alpha * float(np.mean(crowd)) if alpha and len(crowd) else 0.0)


@dataclass(frozen=True)
class Pair:
    """One calibration query: its open-set score, its margin, and what the truth was."""

    score: float  # open_set_score of its candidates' scores
    margin: float
    correct: bool  # the top candidate is the confirmed product
    in_catalogue: bool
    kind: str | None = None


def precision_lower_bound(right: int, accepted: int, confidence: float) -> float:
    """One-sided Wilson score lower bound of a precision of ``right`` / ``accepted`` at ``confidence`` (0: the
    precision itself)."""
    if not accepted:
        return 0.0
    p = right / accepted
    if confidence <= 0:
        return p
    z = NormalDist().inv_cdf(confidence)
    z2 = z * z
    centre = p + z2 / (2 * accepted)
    spread = z * np.sqrt(p * (1 - p) / accepted + z2 / (4 * accepted * accepted))
    return float(max(0.0, (centre - spread) / (1 + z2 / accepted)))


def operating_point(pairs: Sequence[Pair], *, target_precision: float, confidence: float,
                    min_margin: float | None = None) -> dict:
    """The best recall whose precision reaches ``target_precision`` with ``confidence``, over thresholds on the
    open-set score and margins of at least ``min_margin`` (default ``MATCHING["MIN_MARGIN"]``); else the best F1."""
    min_margin = conf.min_margin() if min_margin is None else min_margin
    scores = np.asarray([p.score for p in pairs], dtype=np.float64)
    margins = np.asarray([p.margin for p in pairs], dtype=np.float64)
    correct = np.asarray([p.correct and p.in_catalogue for p in pairs])
    positives = max(1, sum(p.in_catalogue for p in pairs))
    candidates = np.unique(np.concatenate([scores, [scores.max() + 1e-6 if len(scores) else 1.0]]))
    best: dict | None = None
    best_f1: dict | None = None
    for margin in (m for m in MARGINS if m >= min_margin):
        for threshold in candidates:
            accepted = (scores >= threshold) & (margins >= margin)
            n_accepted = int(accepted.sum())
            true_pos = int((accepted & correct).sum())
            precision = true_pos / n_accepted if n_accepted else 1.0
            recall = true_pos / positives
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            lower = precision_lower_bound(true_pos, n_accepted, confidence)
            point = {"score": round(float(threshold), 6), "margin": margin, "precision": round(precision, 4),
                     "precision_lower_bound": round(lower, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                     "accepted": n_accepted}
            if lower >= target_precision and (best is None or (recall, -threshold) > (best["recall"], -best["score"])):  # noqa: E501
                best = point
            if best_f1 is None or f1 > best_f1["f1"]:
                best_f1 = point
    chosen = best or best_f1 or {"score": 1.0, "margin": 0.0, "precision": 1.0, "precision_lower_bound": 0.0,
                                 "recall": 0.0, "f1": 0.0, "accepted": 0}
    chosen["meets_target"] = best is not None
    return chosen


def calibrate(
    pairs: Sequence[Pair], *, alpha: float, target_precision: float | None = None, confidence: float | None = None
) -> tuple[dict, dict]:
    """(thresholds, metrics) for a model from its calibration pairs, scored with ``alpha``: the best recall whose
    precision is at least ``target_precision`` with ``confidence`` (defaults: the settings)."""
    if not pairs:
        raise ValueError("No calibration pairs.")
    target_precision = conf.target_precision() if target_precision is None else target_precision
    confidence = conf.precision_confidence() if confidence is None else confidence
    overall = operating_point(pairs, target_precision=target_precision, confidence=confidence)
    thresholds: dict = {"alpha": alpha, "default": {"score": overall["score"], "margin": overall["margin"]},
                        "per_kind": {}}
    per_kind_metrics = {}
    for kind in sorted({p.kind for p in pairs if p.kind}):
        subset = [p for p in pairs if p.kind == kind]
        if len(subset) < MIN_PER_KIND or all(p.in_catalogue for p in subset) or not any(p.in_catalogue for p in subset):
            continue
        point = operating_point(subset, target_precision=target_precision, confidence=confidence)
        thresholds["per_kind"][kind] = {"score": point["score"], "margin": point["margin"]}
        per_kind_metrics[kind] = point | {"n": len(subset)}
    metrics = {
        "expected_precision": overall["precision"], "expected_recall": overall["recall"], "f1": overall["f1"],
        "precision_lower_bound": overall["precision_lower_bound"], "confidence": confidence,
        "meets_target": overall["meets_target"], "target_precision": target_precision, "n_pairs": len(pairs),
        "n_in_catalogue": sum(p.in_catalogue for p in pairs), "per_kind": per_kind_metrics, "alpha": alpha,
        "open_set_auroc": pairs_auroc(pairs),
        "fitted_at": timezone.now().isoformat(),
    }
    return thresholds, metrics


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float | None:
    """Probability that a random positive outscores a random negative (ties count half)."""
    if not len(positive) or not len(negative):
        return None
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def pairs_auroc(pairs: Sequence[Pair]) -> float | None:
    """How well the pairs' score tells in-catalogue queries from unknown ones (AUROC, 4 decimals)."""
    value = auroc([p.score for p in pairs if p.in_catalogue], [p.score for p in pairs if not p.in_catalogue])
    return None if value is None else round(value, 4)


def pairs_from_records(records: Sequence, *, alpha: float) -> list[Pair]:
    """Calibration pairs from evaluation query records (``evaluation.QueryRecord``)."""
    return [
        Pair(score=open_set_score(r.scores or (r.top_score,), alpha), margin=r.margin,
             correct=bool(r.sku) and r.top_sku == r.sku, in_catalogue=bool(r.sku), kind=r.kind)
        for r in records
    ]


def model_calibration_store(*, model: EmbeddingModel, thresholds: dict, metrics: dict, source: str) -> EmbeddingModel:
    model.thresholds = thresholds
    model.metrics = {**(model.metrics or {}), "calibration": {**metrics, "source": source}}
    model.save(update_fields=["thresholds", "metrics"])
    return model


def pairs_from_snapshots(model: EmbeddingModel, *, alpha: float) -> list[Pair]:
    """Decided intake matches made by ``model`` (confirmed, or "not in catalogue"), as calibration pairs.

    Uses what the matcher said at the time (stored candidates), so a snapshot photo later added to the
    catalogue does not make its own match look perfect. The outcomes come from the selector named by
    ``MATCHING["CALIBRATION_SOURCE"]`` (the warehouse app's), so matching does not reach into intake.
    """
    source = conf.calibration_source()
    if not source:
        return []
    outcomes = import_string(source)(model_version=model.name)
    pairs = []
    for outcome in outcomes:
        candidates = outcome["candidates"] or []
        if not candidates:
            continue
        top = candidates[0]
        scores = [float(candidate["score"]) for candidate in candidates]
        second = scores[1] if len(scores) > 1 else 0.0
        product_id = outcome["product_id"]
        in_catalogue = product_id is not None
        pairs.append(Pair(
            score=open_set_score(scores, alpha), margin=scores[0] - second,
            correct=in_catalogue and top.get("product_id") == product_id, in_catalogue=in_catalogue,
            kind=top.get("category_kind"),
        ))
    return pairs
