"""GrabCut (OpenCV) at working size, started from hints, a prior probability map or a centre prior.

All coordinates here are in working-size pixels; ``hints.py`` converts user hints from photo coordinates.
"""

from __future__ import annotations

import cv2
import numpy as np

from .hints import Hints

GC_BGD, GC_FGD, GC_PR_BGD, GC_PR_FGD = cv2.GC_BGD, cv2.GC_FGD, cv2.GC_PR_BGD, cv2.GC_PR_FGD
SURE_GARMENT = 0.9  # a network probability of garment this high is fixed garment for GrabCut ...
SURE_BACKGROUND = 0.1  # ... and this low fixed background
RNG_SEED = 0  # OpenCV's RNG is reset to this before each GrabCut run (run's comment)


def centre_prior(height: int, width: int) -> np.ndarray:
    """Automatic start: the photo border is background, an ellipse around the centre probable foreground."""
    labels = np.full((height, width), GC_PR_BGD, np.uint8)
    cv2.ellipse(
        labels,
        (width // 2, height // 2),
        (max(1, int(width * 0.36)), max(1, int(height * 0.40))),
        0,
        0,
        360,
        int(GC_PR_FGD),
        -1,
    )
    border = max(1, round(min(height, width) * 0.03))
    labels[:border] = GC_BGD
    labels[-border:] = GC_BGD
    labels[:, :border] = GC_BGD
    labels[:, -border:] = GC_BGD
    return labels


def labels_from_prior(prob: np.ndarray) -> np.ndarray:
    """Probability of garment (HxW float) -> GrabCut labels: confident pixels fixed, the rest probable."""
    labels = np.full(prob.shape, GC_PR_BGD, np.uint8)
    labels[prob >= 0.5] = GC_PR_FGD
    sure_fg = (prob >= SURE_GARMENT).astype(np.uint8)
    sure_fg = cv2.erode(sure_fg, np.ones((3, 3), np.uint8))
    labels[sure_fg > 0] = GC_FGD
    sure_bg = (prob < SURE_BACKGROUND).astype(np.uint8)
    sure_bg = cv2.erode(sure_bg, np.ones((5, 5), np.uint8))
    labels[sure_bg > 0] = GC_BGD
    return labels


def settled_by_prior(mask: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """A GrabCut mask (bool, at the prior's size) with the pixels the network is sure of given back to it: GrabCut
    ran on a thumbnail, and decides only the uncertain band, not the edges the network drew at its own size."""
    return (mask | (prob >= SURE_GARMENT)) & ~(prob < SURE_BACKGROUND)


def initial_labels(shape: tuple[int, int], hints: Hints | None, prior: np.ndarray | None, thickness: int) -> np.ndarray:
    height, width = shape
    labels = labels_from_prior(prior) if prior is not None else centre_prior(height, width)
    if hints is not None and hints.rect is not None:
        x0, y0, x1, y1 = hints.rect
        inside = np.zeros((height, width), bool)
        inside[y0:y1, x0:x1] = True
        if prior is None:
            labels[inside] = GC_PR_FGD
        else:  # the prior decides inside; at least make the rectangle probable rather than sure background
            region = labels[inside]
            region[region == GC_BGD] = GC_PR_BGD
            labels[inside] = region
        labels[~inside] = GC_BGD
    if hints is not None:
        for stroke in hints.bg:
            _draw(labels, stroke, GC_BGD, thickness)
        for stroke in hints.fg:
            _draw(labels, stroke, GC_FGD, thickness)
    return labels


def _draw(labels: np.ndarray, points: np.ndarray, value: int, thickness: int) -> None:
    pts = np.round(points).astype(np.int32).reshape(-1, 1, 2)
    if len(pts) == 1:
        cv2.circle(labels, tuple(int(v) for v in pts[0, 0]), max(1, thickness // 2), int(value), -1)
    else:
        cv2.polylines(labels, [pts], isClosed=False, color=int(value), thickness=thickness)


def is_flat(image: np.ndarray, threshold: float = 2.0) -> bool:
    return float(image.reshape(-1, image.shape[-1]).std(axis=0).max()) < threshold


def run(image: np.ndarray, labels: np.ndarray, iterations: int) -> np.ndarray:
    """GrabCut from ``labels``; returns a bool foreground mask. Never raises on degenerate input:
    without foreground or background candidates, or on flat colour, the start labels decide."""
    start = (labels == GC_FGD) | (labels == GC_PR_FGD)
    has_fg = bool(start.any())
    has_bg = bool(((labels == GC_BGD) | (labels == GC_PR_BGD)).any())
    if not has_fg:
        return start
    if not has_bg:
        return start
    if is_flat(image):  # nothing to tell garment from background: only what the user marked
        return labels == GC_FGD
    work = labels.copy()
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    # GrabCut seeds its colour models with k-means on OpenCV's per-thread RNG: without a fixed seed the same
    # photo gave a different cut-out (and vector) on every call in a process, by a few hundred pixels.
    cv2.setRNGSeed(RNG_SEED)
    try:
        cv2.grabCut(np.ascontiguousarray(image), work, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return start
    return (work == GC_FGD) | (work == GC_PR_FGD)
