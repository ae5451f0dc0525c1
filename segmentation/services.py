"""``cut_out`` and ``cut_out_garments``: the segmentation entry points (contract in docs/CONTRACTS.md).

Pipeline: the photo is reduced to working size (long side ``STOCKMATCH_SEG_WORKING_SIZE``, 160 px); the
network (when a version is available) gives class probabilities; GrabCut runs at working size, started from
hints, from the network's garment probability or from a centre prior; the mask is cleaned (main components,
small holes filled) and brought to the photo's resolution with a guided filter; the cut-out is the garment
on neutral grey, cropped to its box plus a margin and padded square.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from . import conf, grabcut, postprocess
from . import hints as hint_utils
from .classes import BACKGROUND, GARMENT_KINDS
from .segmenter import get_segmenter
from .source import Source
from .types import METHODS, CutOut

log = logging.getLogger(__name__)
GREY = (128, 128, 128)


@dataclass
class _Working:
    source: Source
    image: np.ndarray  # RGB at working size
    scale: float  # working / photo
    hints: hint_utils.Hints | None  # in photo coordinates
    small_hints: hint_utils.Hints | None  # at working size


def _prepare(image, hints: Mapping | None) -> _Working:  # noqa: ANN001
    source = Source(image)
    parsed = hint_utils.parse(hints, source.width, source.height)
    small = source.scaled(conf.working_size())
    scale = small.shape[1] / source.width
    return _Working(source, small, scale, parsed, hint_utils.scaled(parsed, scale, small.shape[1], small.shape[0]))


def _network():  # noqa: ANN202
    try:
        return get_segmenter()
    except Exception:  # a broken model must not stop intake: GrabCut still works
        log.exception("segmenter unavailable; falling back to GrabCut")
        return None


def _predict(net, image: np.ndarray) -> np.ndarray:  # noqa: ANN001
    """Class probabilities at the working image's size, the network run at the size it was trained for."""
    h, w = image.shape[:2]
    scale = net.long_side / max(h, w)
    if scale >= 1.0 or abs(scale - 1.0) < 0.05:
        return net.predict(image)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    probs = net.predict(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    return np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in probs])


def _stroke_mask(shape: tuple[int, int], strokes: list[np.ndarray]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for points in strokes:
        grabcut._draw(mask, points, 1, conf.stroke_thickness())
    return mask > 0


def _apply_hints(mask: np.ndarray, small_hints: hint_utils.Hints | None) -> np.ndarray:
    """Hints are the user's word: nothing outside the rectangle, bg strokes removed, fg strokes added."""
    if small_hints is None:
        return mask
    mask = mask.copy()
    if small_hints.rect is not None:
        x0, y0, x1, y1 = small_hints.rect
        inside = np.zeros_like(mask)
        inside[y0:y1, x0:x1] = True
        mask &= inside
    if small_hints.bg:
        mask &= ~_stroke_mask(mask.shape, small_hints.bg)
    if small_hints.fg:
        mask |= _stroke_mask(mask.shape, small_hints.fg)
    return mask


def _grabcut(work: _Working, prior: np.ndarray | None) -> np.ndarray:
    """GrabCut at ``grabcut_size`` (smaller than the network's input), result back at working size."""
    h, w = work.image.shape[:2]
    scale = min(1.0, conf.grabcut_size() / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(work.image, size, interpolation=cv2.INTER_AREA)
        prior_small = None if prior is None else cv2.resize(prior, size, interpolation=cv2.INTER_AREA)
        small_hints = hint_utils.scaled(work.hints, work.scale * scale, size[0], size[1])
    else:
        image, prior_small, small_hints = work.image, prior, work.small_hints
    thickness = max(1, round(conf.stroke_thickness() * max(scale, 0.75)))
    labels = grabcut.initial_labels(image.shape[:2], small_hints, prior_small, thickness)
    mask = _grabcut_in_play(image, labels)
    if scale < 1.0:
        mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    return mask


def _grabcut_in_play(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """GrabCut on the box around everything not already sure background (plus a margin): with a network
    prior this is often a fraction of the photo, and the background model stays local to the garment."""
    undecided = labels != grabcut.GC_BGD
    if not undecided.any():
        return np.zeros(labels.shape, bool)
    h, w = labels.shape
    rows, cols = np.flatnonzero(undecided.any(axis=1)), np.flatnonzero(undecided.any(axis=0))
    margin = max(4, round(0.06 * max(h, w)))
    y0, y1 = max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)
    x0, x1 = max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)
    if (y1 - y0) * (x1 - x0) > 0.8 * h * w:
        return grabcut.run(image, labels, conf.grabcut_iterations())
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = grabcut.run(
        np.ascontiguousarray(image[y0:y1, x0:x1]), np.ascontiguousarray(labels[y0:y1, x0:x1]), conf.grabcut_iterations()
    )
    return mask


def _garment_mask(
    work: _Working, method: str
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str, str | None]:
    """(bool mask at working size, soft garment probability or None, class probabilities or None, method used,
    model version)."""
    h, w = work.image.shape[:2]
    if grabcut.is_flat(work.image):  # a blank photo: no garment, whatever a network would guess
        only_strokes = _apply_hints(np.zeros((h, w), bool), work.small_hints)
        return only_strokes, None, None, method, None
    net = _network() if method in ("auto", "tiramisu") else None
    probs = None
    if net is not None:
        probs = _predict(net, work.image)
        garment_prob = 1.0 - probs[BACKGROUND]
    if method == "tiramisu" and net is not None:
        mask = probs.argmax(axis=0) != BACKGROUND
        used, soft = "tiramisu", garment_prob
    else:
        prior = garment_prob if net is not None else None
        mask = _grabcut(work, prior)
        used = "auto" if net is not None else "grabcut"
        soft = None if prior is None else 0.5 * prior + 0.5 * mask
    mask = _apply_hints(mask, work.small_hints)
    must_keep = _stroke_mask((h, w), work.small_hints.fg) if work.small_hints and work.small_hints.fg else None
    mask = postprocess.clean(mask, must_keep=must_keep)
    return mask, soft, probs, used, (net.version if net is not None else None)


def _finish(
    work: _Working,
    mask_small: np.ndarray,
    soft: np.ndarray | None,
    method: str,
    version: str | None,
    started: float,
    kind: str | None = None,
) -> CutOut:
    source = work.source
    if mask_small.mean() < conf.min_area_fraction() or not mask_small.any():
        return _empty(source, method, version, started, kind)
    guide = source.scaled(conf.refine_size())
    mask = postprocess.upsample(mask_small, soft, guide, source.size)
    if work.hints is not None and work.hints.rect is not None:  # exact rectangle at full resolution
        x0, y0, x1, y1 = work.hints.rect
        mask[:y0] = 0
        mask[y1:] = 0
        mask[:, :x0] = 0
        mask[:, x1:] = 0
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return _empty(source, method, version, started, kind)
    cols = np.flatnonzero(mask.any(axis=0))
    bbox = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    cutout = _compose_cutout(source, mask, bbox)
    return CutOut(mask, cutout, bbox, method, version, (time.perf_counter() - started) * 1000, "ok", kind)


def _compose_cutout(source: Source, mask: np.ndarray, bbox: tuple[int, int, int, int]) -> Image.Image:
    size = conf.cutout_size()
    x0, y0, x1, y1 = bbox
    margin = round(conf.cutout_margin() * max(x1 - x0, y1 - y0))
    box = (max(0, x0 - margin), max(0, y0 - margin), min(source.width, x1 + margin), min(source.height, y1 + margin))
    rgb = source.crop(box, size)
    alpha = cv2.resize(
        mask[box[1] : box[3], box[0] : box[2]], (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA
    )
    alpha = (alpha.astype(np.float32) / 255.0)[..., None]
    blended = (rgb.astype(np.float32) * alpha + np.float32(GREY) * (1 - alpha)).astype(np.uint8)
    return _pad_square(blended, size)


def _pad_square(rgb: np.ndarray, size: int) -> Image.Image:
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    resized = cv2.resize(
        rgb,
        (max(1, round(w * scale)), max(1, round(h * scale))),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
    )
    canvas = Image.new("RGB", (size, size), GREY)
    canvas.paste(Image.fromarray(resized), ((size - resized.shape[1]) // 2, (size - resized.shape[0]) // 2))
    return canvas


def _empty(source: Source, method: str, version: str | None, started: float, kind: str | None = None) -> CutOut:
    whole = _pad_square(source.scaled(conf.cutout_size()), conf.cutout_size())
    mask = np.zeros((source.height, source.width), np.uint8)
    return CutOut(mask, whole, None, method, version, (time.perf_counter() - started) * 1000, "empty", kind)


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"Unknown segmentation method {method!r}; valid: {', '.join(METHODS)}")


def cut_out(image, hints: Mapping | None = None, method: str = "auto") -> CutOut:  # noqa: ANN001
    """Cut the garment out of a photo. See docs/CONTRACTS.md for arguments and the result.

    Raises ``HintError`` (a ValueError) for unusable hints and ``SegmentationInputError`` (a ValueError) for
    images that cannot be segmented; a photo without a garment gives ``status="empty"``."""
    started = time.perf_counter()
    _check_method(method)
    work = _prepare(image, hints)
    mask, soft, _, used, version = _garment_mask(work, method)
    return _finish(work, mask, soft, used, version, started)


def cut_out_garments(image, method: str = "auto") -> list[CutOut]:  # noqa: ANN001
    """One cut-out per garment kind found (topwear, bottomwear, full-body, footwear), largest first.

    Needs the network to tell kinds apart; without it (or when no kind is found but something is) the
    result is a single cut-out with ``kind=None``. Never empty: nothing found gives one ``empty`` result."""
    started = time.perf_counter()
    _check_method(method)
    work = _prepare(image, None)
    mask, soft, probs, used, version = _garment_mask(work, method)
    if probs is None or not mask.any():
        return [_finish(work, mask, soft, used, version, started)]
    garment_probs = probs[1:]  # every class but background
    assigned = garment_probs.argmax(axis=0) + 1
    classes = get_segmenter().classes
    results: list[tuple[int, CutOut]] = []
    min_pixels = max(4, 0.01 * mask.size)
    for kind in GARMENT_KINDS:
        if kind not in classes:
            continue
        part = mask & (assigned == classes.index(kind))
        if part.sum() < min_pixels:
            continue
        part = postprocess.clean(part, keep_ratio=0.3)
        cut = _finish(work, part, None, used, version, started, kind=kind)
        if cut.status == "ok":
            results.append((int(part.sum()), cut))
    if not results:
        return [_finish(work, mask, soft, used, version, started)]
    results.sort(key=lambda item: -item[0])
    return [cut for _, cut in results]
