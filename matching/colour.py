"""Garment colour: a small histogram per photo and the re-ranking term it gives a match.

The trained embedder learned to ignore light casts, and with them much of a garment's colour: grey trousers
and mint ones of the same cut come out close (docs/matching.md "Colour re-ranking"). A colour histogram of
the garment's own pixels puts it back. A signature is the garment's chroma (CIELAB a*/b*, 16 x 16 bins over
the central range, lightly smoothed) and its lightness (L*, 8 bins), each normalised to sum 1. Two signatures
compare by the Bhattacharyya coefficient of each part (1: the same distribution, 0: disjoint).

A candidate's score becomes ``score + CHROMA * (bc_chroma - 1) + LIGHTNESS * (bc_lightness - 1)`` with the
best of its product's photos: a penalty, never a bonus, so a perfect colour match keeps the embedder's score
and its calibrated meaning. A query photo may be lit by a coloured light, so it has two signatures: as taken,
and with the light's colour divided out (shades of grey, p = 6, estimated from the pixels around the garment);
the closer of the two counts. Either alone was worse: correcting always moves garments photographed on a warm
floor, never correcting punishes the right product under a cast (docs/matching.md "Colour re-ranking").
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from PIL import Image

from .preprocess import _usable, studio_mask

CHROMA_BINS = 16
CHROMA_RANGE = (64, 192)  # OpenCV's 8-bit a*/b* (128 is neutral); garments rarely leave this range
LIGHTNESS_BINS = 8
SIZE = CHROMA_BINS * CHROMA_BINS + LIGHTNESS_BINS
CATALOG_SIDE = 320  # catalogue photos are measured on a copy this size
MIN_PIXELS = 200
ERODE_SHARE = 0.02  # the mask is eroded by this share of its short side: edge pixels mix in the background


SHADES_OF_GREY_P = 6
QUERY_STRIDE = 2  # a query photo at working size (768 px) is measured on every second pixel and row
MIN_SURROUND_SHARE = 0.2  # below this share of pixels around the garment the whole photo estimates the light


def signature(image: Image.Image, mask: np.ndarray | None) -> np.ndarray:
    """The colour signature (``SIZE`` float32) of the garment under ``mask`` (0/255, the photo's size), or of
    the photo's central two thirds when there is no mask."""
    return _histogram(_garment_pixels(np.asarray(image.convert("RGB")), mask))


def query_signatures(image: Image.Image, mask: np.ndarray | None) -> list[np.ndarray]:
    """A query photo's two signatures: the garment as photographed, and with the light's colour divided out."""
    array = np.asarray(image.convert("RGB"))[::QUERY_STRIDE, ::QUERY_STRIDE]
    mask = mask[::QUERY_STRIDE, ::QUERY_STRIDE] if mask is not None else None
    pixels = _garment_pixels(array, mask)
    light = _light_colour(array, mask)
    corrected = np.clip(pixels.astype(np.float32) / light, 0, 255).astype(np.uint8)
    return [_histogram(pixels), _histogram(corrected)]


def _light_colour(array: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The light's colour (per channel, mean 1) by shades of grey over the pixels around the garment."""
    around = array.reshape(-1, 3)
    if mask is not None and mask.shape[:2] == array.shape[:2] and (mask == 0).mean() > MIN_SURROUND_SHARE:
        around = array[mask == 0]
    values = (around.astype(np.float32) + 1.0) / 256.0
    cubed = values * values * values
    light = np.power(np.mean(cubed * cubed, axis=0), 1.0 / SHADES_OF_GREY_P)  # p = 6
    return light / light.mean()


def _histogram(pixels: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    chroma, _, _ = np.histogram2d(lab[:, 1], lab[:, 2], bins=CHROMA_BINS, range=[CHROMA_RANGE, CHROMA_RANGE])
    chroma = cv2.GaussianBlur(chroma.astype(np.float32), (3, 3), 0.8).ravel()
    lightness, _ = np.histogram(lab[:, 0], bins=LIGHTNESS_BINS, range=(0, 256))
    return np.concatenate([
        chroma / max(float(chroma.sum()), 1e-9), lightness / max(float(lightness.sum()), 1e-9),
    ]).astype(np.float32)


def catalog_signature(image: Image.Image) -> np.ndarray:
    """A catalogue photo's signature: its studio mask's garment (the catalogue view's mask rule)."""
    small = image.convert("RGB")
    small.thumbnail((CATALOG_SIDE, CATALOG_SIDE), Image.Resampling.BILINEAR)
    return signature(small, _usable(small, studio_mask(small)))


def _garment_pixels(array: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is not None and mask.shape[:2] == array.shape[:2] and int((mask > 0).sum()) >= MIN_PIXELS:
        inside = (mask > 0).astype(np.uint8)
        side = max(1, int(min(inside.shape) * ERODE_SHARE))
        eroded = cv2.erode(inside, np.ones((side, side), np.uint8))
        return array[(eroded if int(eroded.sum()) >= MIN_PIXELS else inside) > 0]
    height, width = array.shape[:2]
    return array[height // 6: height - height // 6, width // 6: width - width // 6].reshape(-1, 3)


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Bhattacharyya coefficients (chroma, lightness) of two signatures, each in [0, 1]."""
    cut = CHROMA_BINS * CHROMA_BINS
    root = np.sqrt(np.clip(a, 0, None) * np.clip(b, 0, None))
    return float(root[:cut].sum()), float(root[cut:].sum())


def penalty(queries: Sequence[np.ndarray], photos: Iterable[np.ndarray], *, chroma: float,
            lightness: float) -> float:
    """The (≤ 0) change to a candidate's score: the closest pair of a query signature and a photo's, weighted."""
    best = None
    for photo in photos:
        for query in queries:
            c, l_ = similarity(query, photo)
            value = chroma * (c - 1.0) + lightness * (l_ - 1.0)
            best = value if best is None else max(best, value)
    return 0.0 if best is None else best


def encode(values: np.ndarray) -> bytes:
    return np.asarray(values, dtype=np.float16).tobytes()


def decode(raw: bytes | memoryview | None) -> np.ndarray | None:
    if raw is None:
        return None
    values = np.frombuffer(bytes(raw), dtype=np.float16).astype(np.float32)
    return values if values.size == SIZE else None
