"""The garment view: what the worker sees as the cut-out and exactly what the embedder gets of the garment;
and the context view, the same garment in its photo, which an embedder with context views averages with it.

One function for both sides, so a fix the worker approves is the picture that is matched. Catalogue photos
(``matching.preprocess.canonical_crop``) go through it too, uncapped, so query and catalogue views are made
alike. Light to import: no torch, no Django at import time.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from .source import Source

MARGIN = 0.04  # of the garment box's long side; the catalogue vectors were made with it
GREY = (128, 128, 128)
CONTEXT_MARGIN = 0.25  # of the garment box's long side, for the context view


def garment_view(
    image: Image.Image | np.ndarray, mask: np.ndarray | None, *, max_side: int | None = None, margin: float = MARGIN
) -> Image.Image:
    """The garment on neutral grey, cropped to its box plus a 4 % margin, padded square.

    ``image``: a PIL image, an RGB array or a ``Source``; ``mask``: 0/255 (or bool) at the image's resolution,
    None or empty for "no garment" (the whole photo, padded square). ``max_side``: the side of the square
    (None: the configured cut-out size, ``STOCKMATCH_SEG_CUTOUT_SIZE``, 256; 0: the crop's own resolution, as
    for catalogue photos). At the crop's resolution the mask is hard; a resized crop blends the resized mask,
    so edges are not jagged. ``margin`` varies only in training views (``matching.training.views``)."""
    source = image if isinstance(image, Source) else Source(image)
    if max_side is None:
        from . import conf

        max_side = conf.cutout_size()
    hard = None if mask is None else np.asarray(mask) > 0
    if hard is not None and hard.shape != (source.height, source.width):
        raise ValueError(f"mask is {hard.shape[1]}x{hard.shape[0]}, the photo {source.width}x{source.height}")
    if hard is None or not hard.any():
        return _pad_square(_fit(source, (0, 0, source.width, source.height), max_side), max_side)
    rows, cols = np.flatnonzero(hard.any(axis=1)), np.flatnonzero(hard.any(axis=0))
    x0, y0, x1, y1 = int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
    pad = round(margin * max(x1 - x0, y1 - y0))
    box = (max(0, x0 - pad), max(0, y0 - pad), min(source.width, x1 + pad), min(source.height, y1 + pad))
    rgb = _fit(source, box, max_side)
    keep = hard[box[1] : box[3], box[0] : box[2]]
    if keep.shape == rgb.shape[:2]:
        out = np.empty_like(rgb)
        out[:] = GREY
        out[keep] = rgb[keep]
        return _pad_square(out, max_side)
    shrink = rgb.shape[0] < keep.shape[0]
    alpha = cv2.resize(
        keep.astype(np.float32),
        (rgb.shape[1], rgb.shape[0]),
        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
    )[..., None]
    blended = rgb.astype(np.float32) * alpha + np.float32(GREY) * (1 - alpha)
    return _pad_square(np.clip(blended + 0.5, 0, 255).astype(np.uint8), max_side)


def context_view(
    image: Image.Image | np.ndarray, mask: np.ndarray | None, *, max_side: int | None = None,
    margin: float | None = CONTEXT_MARGIN,
) -> Image.Image:
    """The garment in its photo: the box of ``mask`` grown by ``margin`` of its long side, nothing masked,
    padded square (the whole photo when ``mask`` is empty or ``margin`` is None). The embedder averages it with
    the garment view on both sides, so a garment the cut-out clipped or a cut-out that kept a little
    background still meets its catalogue photo (docs/matching.md, "Two views")."""
    source = image if isinstance(image, Source) else Source(image)
    if max_side is None:
        from . import conf

        max_side = conf.cutout_size()
    hard = None if mask is None else np.asarray(mask) > 0
    if margin is None or hard is None or not hard.any():
        return _pad_square(_fit(source, (0, 0, source.width, source.height), max_side), max_side)
    rows, cols = np.flatnonzero(hard.any(axis=1)), np.flatnonzero(hard.any(axis=0))
    x0, y0, x1, y1 = int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
    pad = round(margin * max(x1 - x0, y1 - y0))
    box = (max(0, x0 - pad), max(0, y0 - pad), min(source.width, x1 + pad), min(source.height, y1 + pad))
    return _pad_square(_fit(source, box, max_side), max_side)


def _fit(source: Source, box: tuple[int, int, int, int], max_side: int) -> np.ndarray:
    """The box's pixels with the long side ``max_side`` (reduced or enlarged); unchanged when it is 0."""
    w, h = box[2] - box[0], box[3] - box[1]
    if not max_side:
        return source.crop(box, max(w, h))
    rgb = source.crop(box, max_side)
    if max(rgb.shape[:2]) < max_side:
        scale = max_side / max(w, h)
        size = (min(max_side, max(1, round(w * scale))), min(max_side, max(1, round(h * scale))))
        rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_LINEAR)
    return rgb


def _pad_square(rgb: np.ndarray, side: int = 0) -> Image.Image:
    h, w = rgb.shape[:2]
    picture = Image.fromarray(np.ascontiguousarray(rgb))
    side = side or max(h, w)
    if h == w == side:
        return picture
    canvas = Image.new("RGB", (side, side), GREY)
    canvas.paste(picture, ((side - w) // 2, (side - h) // 2))
    return canvas
