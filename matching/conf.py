"""Matching settings: the one place that reads ``settings.MATCHING`` (defaults for every key)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings


def _get(name: str, default: Any) -> Any:
    return getattr(settings, "MATCHING", {}).get(name, default)


def trained_dir() -> Path:
    """Where this installation's trained weights, heads and exported ONNX files live (``STOCKMATCH_TRAINED_DIR``)."""
    return Path(settings.STOCKMATCH_TRAINED_DIR)


def default_threshold() -> float:
    """Score an uncalibrated model needs to call a product "in catalogue"."""
    return float(_get("DEFAULT_THRESHOLD", 0.8))


def default_margin() -> float:
    return float(_get("DEFAULT_MARGIN", 0.0))


def min_margin() -> float:
    """The smallest margin over the next product a calibration may choose (``calibration.operating_point``)."""
    return float(_get("MIN_MARGIN", 0.0))


def open_set_alpha() -> float:
    """Weight of the next products' mean score in the open-set score new calibrations fit (``calibration``)."""
    return float(_get("OPEN_SET_ALPHA", 0.5))


def target_precision() -> float:
    """Precision the "in catalogue" decision is calibrated to reach (``calibration.calibrate``)."""
    return float(_get("TARGET_PRECISION", 0.95))


def precision_confidence() -> float:
    """Confidence with which a calibration must show ``target_precision`` (0: the precision seen is enough)."""
    return float(_get("PRECISION_CONFIDENCE", 0.8))


def embed_batch_size() -> int:
    return int(_get("EMBED_BATCH_SIZE", 64))


def build_chunk() -> int:
    """Images re-embedded per run of the background build task."""
    return int(_get("BUILD_CHUNK", 2000))


def exact_search_max_rows() -> int:
    return int(_get("EXACT_SEARCH_MAX_ROWS", 3000))


def hnsw_ef_search() -> int:
    return int(_get("HNSW_EF_SEARCH", 120))


def working_size() -> int:
    """Long side of the working copy a query photo is decoded to before segmentation."""
    return int(_get("WORKING_SIZE", 768))


def fusion() -> str:
    """How several photos of one item are combined: "max" or "mean"."""
    return str(_get("FUSION", "max"))


def colour_weights() -> tuple[float, float]:
    """(chroma, lightness) weights of the colour re-ranking; (0, 0) switches it off."""
    colour = _get("COLOUR", {})
    return float(colour.get("CHROMA", 0.15)), float(colour.get("LIGHTNESS", 0.05))


def colour_depth() -> int:
    """How many of a search's first products the colour re-ranking reorders (the search fetches at least this many)."""
    return int(_get("COLOUR", {}).get("DEPTH", 20))


def auto_embed() -> bool:
    return bool(_get("AUTO_EMBED", True))


def calibration_source() -> str | None:
    """Dotted path of a callable giving decided intake matches for calibration (the warehouse app provides it)."""
    return _get("CALIBRATION_SOURCE", None)


def retrain() -> dict:
    """Scheduled embedder retraining (``matching.training.schedule``)."""
    defaults = {"MIN_NEW_GROUPS": 200, "PAIR_FILES": [], "PHOTO_CSVS": [], "TIME_BUDGET_MINUTES": 60}
    return defaults | _get("RETRAIN", {})


def classify_knn_k() -> int:
    return int(_get("CLASSIFY_KNN_K", 15))


def classify_knn_temperature() -> float:
    return float(_get("CLASSIFY_KNN_TEMPERATURE", 0.05))


def classify_appearance() -> str:
    """Embedder (``settings.EMBEDDERS`` name) whose vector of a photo's views joins the embedding in new heads'
    input; "" for none."""
    return str(_get("CLASSIFY_APPEARANCE", "") or "")
