"""``cut_out`` and ``cut_out_garments``: the segmentation entry points (contract in docs/CONTRACTS.md).

Pipeline: the photo is reduced to working size (long side ``STOCKMATCH_SEG_WORKING_SIZE``, 128 px); the
network (when a version is available) gives class probabilities; GrabCut runs at working size, started from
hints, from the network's garment probability or from a centre prior; the mask is cleaned (main components,
small holes filled) and brought to the photo's resolution with a guided filter; the cut-out is
``view.garment_view`` (the embedder's view). A rectangle hint is a hard frame: the photo is cropped to it (plus
a ring of context that GrabCut takes as background) and cut again at the crop's own working size, so a tight
box gives the network and GrabCut a closer look instead of changing nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import conf, grabcut, postprocess
from . import hints as hint_utils
from .classes import garment_labels, garment_probability, person_share
from .garments import split_garments
from .segmenter import get_segmenter
from .source import Source
from .types import METHODS, CutOut
from .view import garment_view

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)
FRAME_CONTEXT = 0.08  # a box hint is cut with this ring of context around it (sure background for GrabCut)


@dataclass
class _Working:
    source: Source
    image: np.ndarray  # RGB at working size
    scale: float  # working / photo
    hints: hint_utils.Hints | None  # in photo coordinates
    small_hints: hint_utils.Hints | None  # at working size
    net: object | None  # the network serving this cut (looked up once), None for GrabCut alone or when unavailable


def _prepare(image, hints: Mapping | None, method: str) -> _Working:  # noqa: ANN001
    """The photo at working size: the setting, or the serving network's input size when that is larger (a
    network trained at 160 px sees 160 px; GrabCut keeps to ``grabcut_size`` whatever this is)."""
    source = Source(image)
    parsed = hint_utils.parse(hints, source.width, source.height)
    net = _network() if method in ("auto", "tiramisu") else None
    small = source.scaled(max(conf.working_size(), net.long_side) if net is not None else conf.working_size())
    scale = small.shape[1] / source.width
    return _Working(source, small, scale, parsed, hint_utils.scaled(parsed, scale, small.shape[1], small.shape[0]),
                    net)


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


@dataclass
class _Parse:
    mask: np.ndarray  # bool, working size
    soft: np.ndarray | None  # garment probability blended with the mask, for edge refinement
    probs: np.ndarray | None  # class probabilities (C x H x W)
    classes: list[str]
    method: str
    version: str | None


def _garment_mask(work: _Working, method: str) -> _Parse:
    h, w = work.image.shape[:2]
    if grabcut.is_flat(work.image):  # a blank photo: no garment, whatever a network would guess
        only_strokes = _apply_hints(np.zeros((h, w), bool), work.small_hints)
        return _Parse(only_strokes, None, None, [], method, None)
    net = work.net
    probs, classes, garment_prob = None, [], None
    if net is not None:
        probs = _predict(net, work.image)
        classes = net.classes
        garment_prob = garment_probability(probs, classes)
    if method == "tiramisu" and net is not None:
        mask = garment_labels(probs.argmax(axis=0), classes)
        used, soft = "tiramisu", garment_prob
    else:
        mask = _grabcut(work, garment_prob)
        if conf.auto_keeps_sure() and garment_prob is not None and work.small_hints is None:  # hints: GrabCut decides
            mask = grabcut.settled_by_prior(mask, garment_prob)
        used = "auto" if net is not None else "grabcut"
        soft = None if garment_prob is None else 0.5 * garment_prob + 0.5 * mask
    mask = _apply_hints(mask, work.small_hints)
    must_keep = _stroke_mask((h, w), work.small_hints.fg) if work.small_hints and work.small_hints.fg else None
    mask = postprocess.clean(mask, must_keep=must_keep)
    return _Parse(mask, soft, probs, classes, used, net.version if net is not None else None)


def _full_mask(work: _Working, mask_small: np.ndarray, soft: np.ndarray | None) -> np.ndarray | None:
    """uint8 0/255 mask at the photo's resolution (edges refined), or None when nothing worth a cut-out is left."""
    if not mask_small.any() or mask_small.mean() < conf.min_area_fraction():
        return None
    guide = work.source.scaled(conf.refine_size())
    mask = postprocess.upsample(mask_small, soft, guide, work.source.size)
    if work.hints is not None and work.hints.rect is not None:  # exact rectangle at full resolution
        x0, y0, x1, y1 = work.hints.rect
        mask[:y0] = 0
        mask[y1:] = 0
        mask[:, :x0] = 0
        mask[:, x1:] = 0
    return mask if mask.any() else None


def _result(
    source: Source,
    mask: np.ndarray | None,
    method: str,
    version: str | None,
    started: float,
    kind: str | None = None,
    confidence: float | None = None,
    person: float | None = None,
) -> CutOut:
    ms = (time.perf_counter() - started) * 1000
    if mask is None:
        empty = np.zeros((source.height, source.width), np.uint8)
        return CutOut(empty, garment_view(source, None), None, method, version, ms, "empty", kind, confidence, person)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    bbox = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return CutOut(mask, garment_view(source, mask), bbox, method, version, ms, "ok", kind, confidence, person)


def _framed(work: _Working) -> tuple[_Working, tuple[int, int, int, int]]:
    """The photo cropped to the rectangle hint plus a ring of context, with the hints moved into the crop."""
    x0, y0, x1, y1 = work.hints.rect
    pad = max(8, round(FRAME_CONTEXT * max(x1 - x0, y1 - y0)))
    box = (max(0, x0 - pad), max(0, y0 - pad), min(work.source.width, x1 + pad), min(work.source.height, y1 + pad))
    source = work.source
    crop = source.pil.crop(box) if source.pil is not None else source.array[box[1] : box[3], box[0] : box[2]]
    offset = np.array([box[0], box[1]], np.float64)
    moved = hint_utils.Hints(
        rect=(x0 - box[0], y0 - box[1], x1 - box[0], y1 - box[1]),
        fg=[points - offset for points in work.hints.fg],
        bg=[points - offset for points in work.hints.bg],
    )
    inner = Source(crop)
    small = inner.scaled(max(work.image.shape[:2]))  # the whole photo's working size (never enlarged)
    scale = small.shape[1] / inner.width
    framed = _Working(inner, small, scale, moved, hint_utils.scaled(moved, scale, small.shape[1], small.shape[0]),
                      work.net)
    return framed, box


def _disjoint(full: list[np.ndarray | None], small: list[np.ndarray]) -> list[np.ndarray | None]:
    """Edge refinement grows each garment's mask a little on its own; where two overlap at full resolution, the
    pixel goes to the garment that had it at working size."""
    present = [m for m in full if m is not None]
    if len(present) < 2:
        return full
    count = np.zeros(present[0].shape, np.uint8)
    for m in present:
        count += m > 0
    overlap = count > 1
    if not overlap.any():
        return full
    owner = np.zeros(small[0].shape, np.uint8)
    for i, m in enumerate(small, start=1):
        owner[m] = i
    h, w = present[0].shape
    owner = cv2.resize(owner, (w, h), interpolation=cv2.INTER_NEAREST)
    out = []
    for i, m in enumerate(full, start=1):
        if m is not None:
            m = m.copy()
            m[overlap & (owner != i)] = 0
        out.append(m)
    return out


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"Unknown segmentation method {method!r}; valid: {', '.join(METHODS)}")


def cut_out(image, hints: Mapping | None = None, method: str = "auto") -> CutOut:  # noqa: ANN001
    """Cut the garment out of a photo. See docs/CONTRACTS.md for arguments and the result.

    Raises ``HintError`` (a ValueError) for unusable hints and ``SegmentationInputError`` (a ValueError) for
    images that cannot be segmented; a photo without a garment gives ``status="empty"``."""
    started = time.perf_counter()
    _check_method(method)
    work = _prepare(image, hints, method)
    if work.hints is not None and work.hints.rect is not None:
        framed, box = _framed(work)
        parse = _garment_mask(framed, method)
        inner = _full_mask(framed, parse.mask, parse.soft)
        mask = None
        if inner is not None:
            mask = np.zeros((work.source.height, work.source.width), np.uint8)
            mask[box[1] : box[3], box[0] : box[2]] = inner
        return _result(work.source, mask, parse.method, parse.version, started)
    parse = _garment_mask(work, method)
    return _result(work.source, _full_mask(work, parse.mask, parse.soft), parse.method, parse.version, started)


def cut_out_garments(image: Image.Image | np.ndarray, method: str = "auto") -> list[CutOut]:
    """One cut-out per real garment (``garments.split_garments``: a dress is one full-body garment, a top and
    trousers are two, shoes one footwear cut-out), each with its kind and confidence, largest first.

    Needs the network to tell kinds apart; without it (or when no garment passes the size rules but something
    was found) the result is a single cut-out with ``kind=None``. Never empty: nothing found gives one
    ``empty`` result."""
    started = time.perf_counter()
    _check_method(method)
    work = _prepare(image, None, method)
    parse = _garment_mask(work, method)
    person = person_share(parse.probs, parse.classes) if parse.probs is not None else None
    results = []
    if parse.probs is not None and parse.mask.any():
        garments = split_garments(parse.mask, parse.probs, parse.classes)
        masks = _disjoint([_full_mask(work, g.mask, None) for g in garments], [g.mask for g in garments])
        for garment, mask in zip(garments, masks, strict=True):
            if mask is not None and mask.any():
                results.append(
                    _result(work.source, mask, parse.method, parse.version, started, garment.kind, garment.confidence,
                            person)
                )
        # largest first at full size: edge refinement can swap two garments of nearly equal working-size area
        results.sort(key=lambda cut: -int(np.count_nonzero(cut.mask)))
    results = results or [
        _result(work.source, _full_mask(work, parse.mask, parse.soft), parse.method, parse.version, started,
                person=person)
    ]
    if person is not None and work.net is not None:
        for cut in results:
            cut.person_seen = person >= work.net.person_min_share
    return results
