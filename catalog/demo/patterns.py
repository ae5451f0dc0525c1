"""Fabric textures: a full-canvas colour field per garment, cut out later by the garment's mask.

The texture lives in garment coordinates, so a rotated or scaled view shows the same stripes and prints.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

PATTERNS = ("solid", "stripes", "checks", "dots", "print", "graphic")

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Fabric:
    base: RGB
    accent: RGB
    trim: RGB
    pattern: str
    period: float  # pixels between stripes, checks or dots at 512 px; blobs across the canvas for prints
    angle: float  # degrees
    seed: int


@lru_cache(maxsize=8)
def fabric_texture(fabric: Fabric, size: int) -> np.ndarray:
    """Float32 HxWx3 RGB in 0..1: the cloth before shading. Read-only: the views of a product share it."""
    texture = _texture(fabric, size)
    texture.setflags(write=False)
    return texture


@lru_cache(maxsize=4)
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(yy, xx)`` as float32, shared by every texture of this size."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy.setflags(write=False)
    xx.setflags(write=False)
    return yy, xx


def _texture(fabric: Fabric, size: int) -> np.ndarray:
    rng = np.random.default_rng(fabric.seed)
    base, accent, trim = ([np.float32(v / 255.0) for v in c] for c in (fabric.base, fabric.accent, fabric.trim))
    yy, xx = grid(size)
    theta = np.deg2rad(fabric.angle)
    cos, sin = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    u = xx * cos + yy * sin
    v = yy * cos - xx * sin
    period = fabric.period * size / 512.0
    if fabric.pattern == "stripes":
        weight = _bands(u, period, duty=0.35 + 0.3 * rng.random())
    elif fabric.pattern == "checks":
        weight = 0.5 * _bands(u, period, 0.5) + 0.5 * _bands(v, period, 0.5)
    elif fabric.pattern == "dots":
        weight = _dots(u, v, period, radius=period * (0.18 + 0.12 * rng.random()))
    elif fabric.pattern == "print":
        index = _blob_index(rng, size, int(fabric.period))
        grain = _grain(rng, size)
        planes = [np.take(np.float32([b, a, t]), index) for b, a, t in zip(base, accent, trim, strict=True)]
        return cv2.merge([cv2.GaussianBlur(p, (0, 0), 0.8) * grain for p in planes])
    else:  # solid and graphic: plain cloth; a graphic is drawn on the chest by the garment
        weight = None
    grain = _grain(rng, size)
    if weight is None:
        return cv2.merge([grain * b for b in base])
    weight = cv2.GaussianBlur(weight, (0, 0), 0.6)
    return cv2.merge([(b + (a - b) * weight) * grain for b, a in zip(base, accent, strict=True)])


def _bands(coordinate: np.ndarray, period: float, duty: float) -> np.ndarray:
    return ((coordinate % period) < duty * period).astype(np.float32)


def _dots(u: np.ndarray, v: np.ndarray, period: float, radius: float) -> np.ndarray:
    row = np.floor(v / period)
    shifted = u + (row % 2) * period / 2  # staggered rows, like printed polka dots
    du = (shifted % period) - period / 2
    dv = (v % period) - period / 2
    return ((du * du + dv * dv) < radius * radius).astype(np.float32)


def _blob_index(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Camouflage or abstract floral print: smooth noise quantised into three colour indices."""
    cells = max(cells, 3)
    field = cv2.resize(rng.random((cells, cells)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    low, high = np.quantile(field, [0.45, 0.78])
    return (field > low).astype(np.intp) + (field > high).astype(np.intp)


def _grain(rng: np.random.Generator, size: int) -> np.ndarray:
    """Faint woven grain so no area is a perfectly flat colour."""
    noise = rng.standard_normal((size, size), dtype=np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), 0.7)
    return 1.0 + 0.025 * noise
