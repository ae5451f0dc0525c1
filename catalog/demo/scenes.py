"""Backgrounds and camera effects: clean studio shots for the catalogue, messy phone snapshots for queries.

A snapshot is what a warehouse phone sees: the garment lying on a floor, carpet, table or in front of a
shelf, photographed at an angle under uneven light, slightly blurred, noisy and JPEG-compressed.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .garments import Layer, channels

SCENES = ("wood", "carpet", "table", "shelf")


def studio_photo(layer: Layer, rng: np.random.Generator) -> np.ndarray:
    """Garment on a plain light backdrop with a soft drop shadow: uint8 RGB."""
    h, w = layer.alpha.shape
    tone = rng.uniform(0.92, 0.985)
    tint = tone * (1.0 + rng.uniform(-0.012, 0.012, 3))
    light = _studio_falloff(h, w) * _shadow(layer.alpha, offset=(0.01 * w, 0.018 * h), blur=0.02 * w, strength=0.22)
    return _to_uint8(_composite(cv2.merge([light * np.float32(t) for t in tint]), layer))


@lru_cache(maxsize=2)
def _studio_falloff(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    falloff = 1.02 - 0.08 * np.hypot((xx - w / 2) / w, (yy - h / 2) / h)
    falloff.setflags(write=False)
    return falloff


def phone_snapshot(layer: Layer, rng: np.random.Generator, size: tuple[int, int] = (768, 1024)) -> np.ndarray:
    """``layer`` photographed in a random cluttered scene by a phone: uint8 RGB of ``size`` (w, h)."""
    w, h = size
    scene = SCENES[int(rng.integers(len(SCENES)))]
    background = {"wood": wood_floor, "carpet": carpet, "table": table, "shelf": shelf}[scene](h, w, rng)
    placed = _place(layer, rng, w, h)
    light = np.array(_light_direction(rng), np.float32)
    background = _drop_shadow(background, placed.alpha, offset=tuple(light * 0.03 * w), blur=0.03 * w, strength=0.4)
    photo = _composite(background, Layer(placed.rgb * channels(_cloth_light(rng, h, w)), placed.alpha))
    if rng.random() < 0.35:
        photo = _occlude(photo, rng)
    photo = _perspective(photo, rng)
    photo = _uneven_light(photo, rng)
    photo = _blur(photo, rng)
    photo += _noise(rng, photo.shape, 1.0) * np.float32(rng.uniform(0.008, 0.03))
    return _to_uint8(photo)


def _noise(rng: np.random.Generator, shape: tuple[int, ...], blur: float, tile: int = 256) -> np.ndarray:
    """Float32 standard normal noise, optionally blurred (``blur`` in pixels; 0 for none).

    Large fields repeat a ``tile``-pixel block: drawing millions of normals per photo is the slowest step,
    and sensor noise or carpet pile that repeats every 256 pixels is invisible.
    """
    h, w = shape[:2]
    block = (min(h, tile), min(w, tile), *shape[2:])
    noise = rng.standard_normal(block, dtype=np.float32)
    if blur:
        noise = cv2.GaussianBlur(noise, (0, 0), blur, borderType=cv2.BORDER_REFLECT)
    reps = (-(-h // block[0]), -(-w // block[1])) + (1,) * (len(shape) - 2)
    return np.tile(noise, reps)[:h, :w]


# --- backgrounds (float32 HxWx3, 0..1) -------------------------------------------------------------------


def wood_floor(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = np.array(rng.choice([(0.55, 0.38, 0.24), (0.72, 0.56, 0.38), (0.42, 0.28, 0.18), (0.8, 0.7, 0.55)]))
    plank = int(rng.integers(70, 130))
    grain = cv2.resize(_noise(rng, (h // 3, 12), 0), (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(_noise(rng, (h, w), 0, tile=max(h, w)), (0, 0), sigmaX=12, sigmaY=0.8)
    rows = np.arange(h) // plank
    tones = 1.0 + rng.uniform(-0.12, 0.12, rows.max() + 1)
    value = tones[rows][:, None] * (1 + 0.05 * grain + 0.06 * fine)
    image = _tinted(value, base)
    for r in range(rows.max() + 1):
        y = r * plank
        image[max(0, y - 1) : y + 1] *= 0.55
        x = int(rng.integers(0, w))
        image[y : y + plank, max(0, x - 1) : x + 1] *= 0.6
    return image.astype(np.float32)


def carpet(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = np.array(rng.choice([(0.5, 0.5, 0.52), (0.62, 0.55, 0.45), (0.3, 0.35, 0.5), (0.55, 0.3, 0.3)]))
    pile = _noise(rng, (h, w), 0.9)
    mottle = cv2.resize(_noise(rng, (8, 6), 0), (w, h), interpolation=cv2.INTER_CUBIC)
    image = _tinted(1 + 0.12 * pile + 0.05 * mottle, base)
    if rng.random() < 0.5:  # a rug border
        inset = int(rng.integers(30, 120))
        colour = tuple(float(c) for c in np.clip(base * rng.uniform(0.5, 1.5, 3), 0, 1))
        cv2.rectangle(image, (inset, inset), (w - inset, h - inset), colour, int(rng.integers(10, 30)))
    return image.astype(np.float32)


def table(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    top = np.array(rng.choice([(0.88, 0.87, 0.84), (0.6, 0.6, 0.62), (0.45, 0.32, 0.22), (0.78, 0.72, 0.62)]))
    image = np.empty((h, w, 3), np.float32)
    edge = int(h * rng.uniform(0.82, 0.95))
    slope = rng.uniform(-0.05, 0.05)
    yy, xx = np.mgrid[0:h, 0:w]
    below = yy > edge + slope * (xx - w / 2)
    image[:] = top
    image[below] = top * 0.35
    image *= channels(1 + 0.02 * _noise(rng, (h, w), 1.5))
    _clutter(image, rng, count=int(rng.integers(2, 5)), region=(0, 0, w, edge))
    return image


def shelf(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    wall = np.array(rng.choice([(0.85, 0.83, 0.78), (0.7, 0.75, 0.78), (0.9, 0.9, 0.9)]))
    image = np.empty((h, w, 3), np.float32)
    image[:] = wall
    board = tuple(float(c) for c in rng.choice([(0.5, 0.36, 0.22), (0.9, 0.9, 0.88), (0.3, 0.3, 0.32)]))
    step = int(rng.integers(180, 280))
    for y in range(step, h, step):
        cv2.rectangle(image, (0, y), (w, y + 18), board, -1)
        cv2.rectangle(image, (0, y + 18), (w, y + 24), tuple(c * 0.6 for c in board), -1)
        _clutter(image, rng, count=int(rng.integers(3, 7)), region=(0, y - step + 30, w, y), standing=True, floor=y)
    return image


def _clutter(image: np.ndarray, rng: np.random.Generator, *, count: int, region: tuple[int, int, int, int],
             standing: bool = False, floor: int | None = None) -> None:
    """Boxes, books, mugs and phones: the things lying around in a stock room."""
    x0, y0, x1, y1 = region
    for _ in range(count):
        colour = tuple(float(c) for c in rng.uniform(0.1, 0.95, 3))
        bw, bh = int(rng.integers(30, 140)), int(rng.integers(40, 160))
        x = int(rng.integers(x0, max(x0 + 1, x1 - bw)))
        y = (floor - bh) if standing and floor is not None else int(rng.integers(y0, max(y0 + 1, y1 - bh)))
        shape = int(rng.integers(3))
        if shape == 0:
            cv2.rectangle(image, (x, y), (x + bw, y + bh), colour, -1)
            cv2.rectangle(image, (x, y), (x + bw, y + bh), tuple(c * 0.6 for c in colour), 2)
        elif shape == 1:
            cv2.circle(image, (x + bw // 2, y + bh // 2), min(bw, bh) // 2, colour, -1, cv2.LINE_AA)
            cv2.circle(image, (x + bw // 2, y + bh // 2), min(bw, bh) // 3, tuple(c * 0.7 for c in colour), 3)
        else:
            for i in range(int(rng.integers(2, 6))):
                spine = tuple(float(c) for c in rng.uniform(0.1, 0.9, 3))
                cv2.rectangle(image, (x + i * 14, y), (x + i * 14 + 12, y + bh), spine, -1)


# --- camera ----------------------------------------------------------------------------------------------


def _place(layer: Layer, rng: np.random.Generator, w: int, h: int) -> Layer:
    size = layer.alpha.shape[0]
    scale = rng.uniform(0.75, 1.15) * min(w, h) / size
    angle = rng.uniform(-18, 18)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += (w / 2 - size / 2 + rng.uniform(-0.08, 0.08) * w, h / 2 - size / 2 + rng.uniform(-0.08, 0.08) * h)
    rgb = cv2.warpAffine(layer.rgb, matrix, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(layer.alpha, matrix, (w, h), flags=cv2.INTER_LINEAR)
    return Layer(rgb, alpha)


def _light_direction(rng: np.random.Generator) -> tuple[float, float]:
    angle = rng.uniform(0, 2 * np.pi)
    return float(np.cos(angle)), float(np.sin(angle))


def _cloth_light(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    wrinkles = cv2.resize(_noise(rng, (6, 5), 0), (w, h), interpolation=cv2.INTER_CUBIC)
    return 1.0 + 0.05 * wrinkles


def _occlude(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Something (a box corner, a sleeve of the photographer) pokes in from an edge."""
    h, w = photo.shape[:2]
    colour = tuple(float(c) for c in rng.uniform(0.15, 0.85, 3))
    edge = int(rng.integers(4))
    depth = int(rng.uniform(0.08, 0.16) * (w if edge in (0, 1) else h))
    start = int(rng.uniform(0.1, 0.6) * (h if edge in (0, 1) else w))
    span = int(rng.uniform(0.15, 0.3) * (h if edge in (0, 1) else w))
    corners = {0: ((0, start), (depth, start + span)), 1: ((w - depth, start), (w, start + span)),
               2: ((start, 0), (start + span, depth)), 3: ((start, h - depth), (start + span, h))}[edge]
    out = photo.copy()
    cv2.rectangle(out, corners[0], corners[1], colour, -1)
    return out


def _perspective(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tilt the camera: map an inset, jittered quadrilateral to the full frame (no empty borders)."""
    h, w = photo.shape[:2]
    inset = rng.uniform(0.0, 0.08, (4, 2)) * (w, h)
    source = np.float32([(0, 0), (w, 0), (w, h), (0, h)]) + np.float32(inset * [(1, 1), (-1, 1), (-1, -1), (1, -1)])
    target = np.float32([(0, 0), (w, 0), (w, h), (0, h)])
    matrix = cv2.getPerspectiveTransform(source, target)
    return cv2.warpPerspective(photo, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)


def _uneven_light(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A lamp to one side, darker corners and a warm or cool cast. Smooth, so computed at 1/8 resolution."""
    h, w = photo.shape[:2]
    dx, dy = _light_direction(rng)
    yy, xx = np.mgrid[0:1:complex(0, h // 8), 0:1:complex(0, w // 8)].astype(np.float32)
    t = ((xx - 0.5) * dx + (yy - 0.5) * dy + 0.7) / 1.4
    low, high = rng.uniform(0.55, 0.85), rng.uniform(1.0, 1.15)
    vignette = 1.0 - rng.uniform(0.1, 0.3) * (np.hypot(xx - 0.5, yy - 0.5) / 0.71) ** 2
    gain = cv2.resize((low + (high - low) * t) * vignette, (w, h), interpolation=cv2.INTER_LINEAR)
    cast = (1.0 + rng.uniform(-0.02, 0.08), 1.0, 1.0 - rng.uniform(-0.02, 0.1))  # mostly warm lamps
    return photo * cv2.merge([gain * np.float32(c) for c in cast])


def _blur(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.3:
        length = int(rng.integers(5, 12))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        return cv2.filter2D(photo, -1, kernel / max(float(kernel.sum()), 1e-6))
    return cv2.GaussianBlur(photo, (0, 0), rng.uniform(0.5, 1.6))


def _drop_shadow(background: np.ndarray, alpha: np.ndarray, *, offset: tuple[float, float], blur: float,
                 strength: float) -> np.ndarray:
    return background * channels(_shadow(alpha, offset=offset, blur=blur, strength=strength))


def _shadow(alpha: np.ndarray, *, offset: tuple[float, float], blur: float, strength: float) -> np.ndarray:
    """The light left where ``alpha`` casts a soft shadow: 1 in the open, 1 - strength right under it."""
    h, w = alpha.shape
    k = 4  # a soft shadow loses nothing when blurred at a quarter of the resolution
    matrix = np.float32([[1 / k, 0, offset[0] / k], [0, 1 / k, offset[1] / k]])
    small = cv2.warpAffine(alpha, matrix, (w // k, h // k), flags=cv2.INTER_AREA)
    shadow = cv2.resize(cv2.GaussianBlur(small, (0, 0), max(blur / k, 0.5)), (w, h), interpolation=cv2.INTER_LINEAR)
    return 1.0 - strength * shadow


def _tinted(value: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """A brightness plane coloured ``colour`` (RGB 0..1): float32 HxWx3."""
    return cv2.merge([value.astype(np.float32) * np.float32(c) for c in colour])


def _composite(background: np.ndarray, layer: Layer) -> np.ndarray:
    return cv2.blendLinear(layer.rgb, background, layer.alpha, 1.0 - layer.alpha)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return cv2.convertScaleAbs(image, alpha=255.0)  # rounds and saturates to 0..255
