"""Mask clean-up at working size and edge-aware upsampling to the photo's resolution."""

from __future__ import annotations

import cv2
import numpy as np


def clean(
    mask: np.ndarray, keep_ratio: float = 0.12, hole_ratio: float = 0.02, must_keep: np.ndarray | None = None
) -> np.ndarray:
    """Keep the main component(s), fill small holes, smooth the outline. ``mask`` is bool; returns bool.

    A component survives when it is at least ``keep_ratio`` of the largest one (a top and shoes are separate
    components) or touches ``must_keep`` (pixels the user marked as garment)."""
    m = mask.astype(np.uint8)
    if not m.any():
        return mask.astype(bool)
    k = np.ones((3, 3), np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_OPEN, k)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, k)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return m.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= keep_ratio * areas.max()
    if must_keep is not None and must_keep.any():
        keep[np.unique(labels[must_keep & (labels > 0)])] = True
    m = keep[labels].astype(np.uint8)
    # fill holes that do not reach the border and are small next to the garment
    inv = (1 - m).astype(np.uint8)
    hn, hlabels, hstats, _ = cv2.connectedComponentsWithStats(inv, connectivity=4)
    limit = hole_ratio * m.sum()
    h, w = m.shape
    for i in range(1, hn):
        x, y, bw, bh, area = hstats[i]
        touches = x == 0 or y == 0 or x + bw == w or y + bh == h
        if not touches and area <= limit:
            m[hlabels == i] = 1
    return m.astype(bool)


def upsample(mask: np.ndarray, soft: np.ndarray | None, guide: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
    """Working-size mask -> uint8 0/255 mask of ``out_size`` (width, height).

    The soft mask is brought to the guide's size and filtered with the guide photo (guided filter, He et al.),
    which snaps edges to colour boundaries; a larger photo then gets a plain bilinear upscale of the result,
    so no full-resolution float copy is ever made."""
    gh, gw = guide.shape[:2]
    src = mask.astype(np.float32)
    if soft is not None:  # blend hard decision with confidence for smoother transitions
        src = 0.5 * src + 0.5 * soft.astype(np.float32)
    src = cv2.resize(src, (gw, gh), interpolation=cv2.INTER_LINEAR)
    radius = max(2, round(max(gh, gw) / 96))
    grey = cv2.cvtColor(np.ascontiguousarray(guide), cv2.COLOR_RGB2GRAY) if guide.ndim == 3 else guide
    try:  # a grey guide is 3-4x cheaper than colour and follows the same edges in most photos
        filtered = cv2.ximgproc.guidedFilter(grey, src, radius, 1e-3 * 255 * 255)
    except (AttributeError, cv2.error):
        filtered = src
    refined = (filtered >= 0.5).astype(np.uint8) * 255
    if (gw, gh) != tuple(out_size):
        refined = cv2.resize(refined, tuple(out_size), interpolation=cv2.INTER_LINEAR)
        refined = np.where(refined >= 128, np.uint8(255), np.uint8(0))
    return refined
