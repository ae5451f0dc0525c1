"""Segmentation settings, read from Django settings with safe defaults (``STOCKMATCH_SEG_*``)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def _get(name: str, default):  # noqa: ANN001, ANN202
    return getattr(settings, f"STOCKMATCH_SEG_{name}", default)


def working_size() -> int:
    """Long side, in pixels, at which the network and GrabCut run."""
    return int(_get("WORKING_SIZE", 128))


def grabcut_size() -> int:
    """Long side at which GrabCut runs (its cost grows fast with pixels: DESIGN §7)."""
    return int(_get("GRABCUT_SIZE", 128))


def refine_size() -> int:
    """Long side cap for the edge-aware refinement; larger photos get the mask upscaled from here."""
    return int(_get("REFINE_SIZE", 512))


def grabcut_iterations() -> int:
    return int(_get("GRABCUT_ITERATIONS", 3))


def cutout_size() -> int:
    """Long side cap of the cut-out (``view.garment_view``), which is also what the embedder gets."""
    return int(_get("CUTOUT_SIZE", 256))


def stroke_thickness() -> int:
    """Stroke width in working-size pixels."""
    return int(_get("STROKE_THICKNESS", 3))


def min_area_fraction() -> float:
    """Masks smaller than this fraction of the photo count as 'nothing found'."""
    return float(_get("MIN_AREA_FRACTION", 0.002))


def flip_tta() -> bool:
    """Average the network's output with the mirrored photo's (test-time augmentation)."""
    return bool(_get("FLIP_TTA", True))


def version_check_seconds() -> float:
    """How often (at most) a process asks the database which segmenter version is active."""
    return float(_get("VERSION_CHECK_SECONDS", 10))


def torch_threads() -> int:
    """Intra-op threads for inference (process-wide in torch): the project's setting unless overridden."""
    return int(_get("TORCH_THREADS", getattr(settings, "STOCKMATCH_TORCH_THREADS", 2)))


def runtime() -> str:
    """Where the served network runs: "auto" (OpenVINO where it loads, else ONNX Runtime), "openvino", "onnx" or
    "torch" (``exported.py``)."""
    return str(_get("RUNTIME", "auto"))


def auto_keeps_sure() -> bool:
    """``auto`` without hints keeps the network's sure pixels at its own size (``grabcut.settled_by_prior``). Off:
    better cut-outs on held-out CCP, but with the shipped embedder the demo lost two first places (docs)."""
    return bool(_get("AUTO_KEEPS_SURE", False))


def person_min_share() -> float:
    """Skin + hair share of a photo above which someone wears or holds the garment, for a segmenter version that
    does not state its own (measured on tiramisu_light-160c with bench/person_share.py)."""
    return float(_get("PERSON_MIN_SHARE", 0.012))


def shipped_dir() -> Path:
    base = getattr(settings, "STOCKMATCH_MODELS_DIR", Path(settings.BASE_DIR) / "models")
    return Path(_get("SHIPPED_DIR", Path(base) / "segmenter"))


def trained_dir() -> Path:
    return Path(_get("TRAINED_DIR", Path(settings.STOCKMATCH_TRAINED_DIR) / "segmenter"))


def work_dir() -> Path:
    """Checkpoints and caches for training (never needed at run time)."""
    from warehouse.settings.env import DATA_DIR

    return Path(_get("WORK_DIR", Path(DATA_DIR) / "segmentation"))


def default_data_dir() -> Path | None:
    candidate = Path(_get("DATA_SOURCE_DIR", Path(settings.BASE_DIR).parent / "shared" / "data"))
    return candidate if candidate.exists() else None
