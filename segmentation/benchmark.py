"""Segmentation timing for ``manage.py benchmark`` (owned by matching/)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def segment_ms_p50(images: Sequence, methods: Iterable[str] = ("grabcut", "tiramisu", "auto")) -> dict[str, float]:
    """Median wall time of ``cut_out`` per method, in ms. ``images``: PIL images, RGB arrays or paths.

    Each method gets one untimed warm-up call (model load); a method without a network available
    ("tiramisu" on a fresh install without weights) is timed as what actually ran."""
    from .evaluation import read_photo
    from .services import cut_out

    loaded = [read_photo(Path(img)) if isinstance(img, str | Path) else img for img in images]
    if not loaded:
        raise ValueError("segment_ms_p50 needs at least one image")
    report: dict[str, float] = {}
    for method in methods:
        cut_out(loaded[0], method=method)
        times = []
        for image in loaded:
            started = time.perf_counter()
            cut_out(image, method=method)
            times.append((time.perf_counter() - started) * 1000)
        report[method] = round(float(np.percentile(times, 50)), 1)
    return report
