"""Dominant garment colour and a small colour-harmony rule, for complete-the-look.

The colour is the circular mean hue of the most common hue among a garment's clearly coloured pixels,
or "neutral" (black, white, grey, washed-out) when fewer than a third of them carry colour. Harmony:
neutrals go with everything; two colours go well when their hues are close (tonal), opposite
(complementary) or about a third of the wheel apart (triadic); anything else is a mild clash.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

SATURATED = 0.28  # HSV saturation above which a pixel counts as coloured
MIN_VALUE = 0.18  # darker pixels are black whatever their hue
COLOURED_SHARE = 0.33
HUE_BINS = 12
THUMB = 64


@dataclass(frozen=True)
class Colour:
    hue: float | None  # degrees, None for neutrals
    saturation: float
    value: float

    @property
    def neutral(self) -> bool:
        return self.hue is None


def dominant_colour(image: Image.Image, mask: np.ndarray | None = None) -> Colour:
    """The dominant colour of ``image``'s pixels under ``mask`` (uint8/bool, image size), or of all pixels."""
    rgb = image.convert("RGB")
    scale = THUMB / max(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    small = np.asarray(rgb.resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)
    if mask is not None:
        keep = cv2.resize(np.asarray(mask, dtype=np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        pixels = small[keep] if keep.sum() >= 16 else small.reshape(-1, 3)
    else:
        pixels = small.reshape(-1, 3)
    return colour_of_pixels(pixels)


def colour_of_pixels(pixels: np.ndarray) -> Colour:
    """Dominant colour of an N×3 uint8 RGB array."""
    if len(pixels) == 0:
        return Colour(None, 0.0, 0.5)
    hsv = cv2.cvtColor(np.ascontiguousarray(pixels, dtype=np.uint8).reshape(-1, 1, 3), cv2.COLOR_RGB2HSV).reshape(-1, 3)
    hue = hsv[:, 0].astype(np.float64) * 2.0  # OpenCV stores hue / 2
    sat = hsv[:, 1].astype(np.float64) / 255.0
    val = hsv[:, 2].astype(np.float64) / 255.0
    coloured = (sat >= SATURATED) & (val >= MIN_VALUE)
    if coloured.mean() < COLOURED_SHARE:
        return Colour(None, round(float(np.median(sat)), 3), round(float(np.median(val)), 3))
    bins = (hue[coloured] // (360 / HUE_BINS)).astype(int) % HUE_BINS
    weights = np.bincount(bins, weights=sat[coloured], minlength=HUE_BINS)
    top = int(weights.argmax())
    # The top bin and its neighbours, averaged on the circle (a red spans both ends of the wheel).
    near = np.isin(bins, [(top - 1) % HUE_BINS, top, (top + 1) % HUE_BINS])
    angles = np.deg2rad(hue[coloured][near])
    mean = float(np.rad2deg(np.arctan2(np.sin(angles).mean(), np.cos(angles).mean()))) % 360
    return Colour(round(mean, 1), round(float(np.median(sat[coloured])), 3), round(float(np.median(val[coloured])), 3))


def hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def harmony(a: Colour | None, b: Colour | None) -> float:
    """How well two garment colours go together, 0 (clash) to 1; unknown colours score as neutral."""
    if a is None or b is None or a.neutral or b.neutral:
        return 0.8
    d = hue_distance(a.hue, b.hue)
    if d >= 150:
        return 1.0  # complementary
    if d <= 30:
        return 0.9  # tonal / analogous
    if 100 <= d < 150:
        return 0.7  # triadic, split-complementary
    return 0.3
