"""Render a garment (style + view) to an RGB layer with an alpha mask, ready to put on any background.

A style holds everything that makes one product look like itself: proportions, colours, pattern, logo.
Views of one style (front, back, angled, detail, folded, pair) change the pose, never the garment.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .patterns import Fabric, fabric_texture
from .shapes import Points, Shape, Sketch, sketch_for

GARMENTS = ("tshirt", "shirt", "sweater", "trousers", "skirt", "dress", "jacket", "shoe")
ALTERNATE_VIEWS = {
    "tshirt": ("back", "angled", "folded", "detail"),
    "shirt": ("back", "angled", "folded", "detail"),
    "sweater": ("back", "angled", "folded", "detail"),
    "jacket": ("back", "angled", "detail"),
    "trousers": ("back", "angled", "folded", "detail"),
    "skirt": ("back", "angled", "detail"),
    "dress": ("back", "angled", "detail"),
    "shoe": ("back", "pair", "angled", "detail"),
}
FONT = cv2.FONT_HERSHEY_DUPLEX
_SHIFT = 4  # sub-pixel bits for cv2 drawing


@dataclass(frozen=True)
class GarmentStyle:
    garment: str
    fabric: Fabric
    shape: Shape
    label: str  # the brand mark printed on chest logos and graphics
    seed: int


@dataclass(frozen=True)
class Layer:
    rgb: np.ndarray  # float32 HxWx3, 0..1
    alpha: np.ndarray  # float32 HxW, 0..1


def random_shape(garment: str, rng: np.random.Generator) -> Shape:
    """Per-product proportions; ranges keep every garment recognisable as its type."""
    u = rng.uniform
    if garment in ("tshirt", "shirt", "sweater", "jacket"):
        long_sleeves = garment != "tshirt" or u() < 0.15
        wide = 0.025 if garment == "jacket" else 0.0
        return {
            "w": u(0.155, 0.2) + wide, "length": u(0.56, 0.68), "flare": u(-0.01, 0.02),
            "sleeve": u(0.36, 0.44) if long_sleeves else u(0.12, 0.18),
            "angle": u(18, 30) if long_sleeves else u(50, 62),
            "sw0": u(0.1, 0.125), "sw1": u(0.065, 0.08) if long_sleeves else u(0.09, 0.11),
            "neck": u(0.05, 0.07), "depth": u(0.04, 0.1),
            "logo": float(u() < 0.4), "graphic": float(u() < 0.3), "pocket": float(u() < 0.5), "zip": float(u() < 0.6),
        }
    if garment == "trousers":
        return {"ww": u(0.14, 0.18), "length": u(0.78, 0.86), "rise": u(0.26, 0.32), "hw": u(0.07, 0.1),
                "flare": u(-0.03, 0.03), "gap": u(0.012, 0.035)}
    if garment == "skirt":
        return {"ww": u(0.12, 0.16), "hw": u(0.19, 0.32), "length": u(0.38, 0.62), "pleats": float(u() < 0.45),
                "pleat_density": u()}
    if garment == "dress":
        return {"neck": u(0.045, 0.07), "depth": u(0.04, 0.12), "sw": u(0.1, 0.13), "waist": u(0.26, 0.32),
                "ww": u(0.085, 0.115), "hw": u(0.19, 0.32), "length": u(0.68, 0.82), "sleeves": float(u() < 0.5),
                "belt": float(u() < 0.4)}
    if garment == "shoe":
        return {"style": float(rng.choice([0, 0, 1, 2])), "height": u(0.2, 0.25), "sole": u(0.03, 0.055),
                "toe": u(0.0, 0.08), "stripe": u(0.15, 0.35)}
    raise ValueError(f"Unknown garment {garment!r}; expected one of {', '.join(GARMENTS)}")


def render_garment(style: GarmentStyle, view: str, size: int = 512) -> Layer:
    """The garment centred on a transparent canvas of ``size`` pixels, posed as ``view``."""
    sketch = sketch_for(style.garment, style.shape, view)
    rgb, alpha = _paint(style, sketch, size)
    outline = np.concatenate(sketch.body + sketch.trims) * size
    layer = _pose(Layer(rgb, alpha), (*outline.min(axis=0), *outline.max(axis=0)), style, view, size)
    if view == "pair":
        behind = _shift(layer, dx=0.07 * size, dy=-0.06 * size, scale=0.96, shade=0.88)
        layer = over(layer, behind)
    return layer


def over(front: Layer, back: Layer) -> Layer:
    a = front.alpha[..., None]
    alpha = front.alpha + back.alpha * (1 - front.alpha)
    rgb = front.rgb * a + back.rgb * back.alpha[..., None] * (1 - a)
    return Layer(rgb / np.maximum(alpha, 1e-6)[..., None], alpha)


def channels(plane: np.ndarray) -> np.ndarray:
    """A single-channel float image repeated as RGB; much faster to multiply with than ``plane[..., None]``."""
    return cv2.merge([plane, plane, plane])


def _px(points: Points, size: int) -> np.ndarray:
    return np.round(points * size * (1 << _SHIFT)).astype(np.int32)


def _fill(mask_size: int, polygons: list[Points]) -> np.ndarray:
    mask = np.zeros((mask_size, mask_size), np.uint8)
    if polygons:
        cv2.fillPoly(mask, [_px(p, mask_size) for p in polygons], 255, cv2.LINE_AA, shift=_SHIFT)
    return mask.astype(np.float32) / 255.0


def _blend(rgb: np.ndarray, polygons: list[Points], colour: tuple[float, float, float], *,
           within: np.ndarray | None, strength: float = 1.0) -> None:
    """Paint ``colour`` into the polygons, in place, touching only their bounding box."""
    if not polygons:
        return
    size = rgb.shape[0]
    corners = np.concatenate(polygons) * size
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 1, 0, size)
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, 0, size)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    shifted = [_px(p - np.array([x0, y0]) / size, size) for p in polygons]
    cv2.fillPoly(mask, shifted, 255, cv2.LINE_AA, shift=_SHIFT)
    weight = mask.astype(np.float32) * (strength / 255.0)
    if within is not None:
        weight *= within[y0:y1, x0:x1]
    region = rgb[y0:y1, x0:x1]
    region += (np.array(colour, np.float32) - region) * weight[..., None]


def _colour(rgb: tuple[int, int, int], factor: float = 1.0) -> tuple[float, float, float]:
    return tuple(float(min(c * factor / 255.0, 1.0)) for c in rgb)


def _paint(style: GarmentStyle, sketch: Sketch, size: int) -> tuple[np.ndarray, np.ndarray]:
    fabric = style.fabric
    alpha = _fill(size, sketch.body + sketch.trims)
    rgb = fabric_texture(fabric, size) * channels(_shading(alpha, style.seed, size))
    _blend(rgb, sketch.trims, _colour(fabric.trim), within=None)
    _blend(rgb, sketch.accents, _colour(fabric.accent), within=alpha)  # stripes stay on the shoe
    _blend(rgb, sketch.openings, (0.0, 0.0, 0.0), within=None, strength=0.45)
    dark = _colour(fabric.base, 0.55)
    thin = max(1, size // 320)
    for line in sketch.seams:
        cv2.polylines(rgb, [_px(line, size)], False, dark, thin, cv2.LINE_AA, shift=_SHIFT)
    for line in sketch.stitches:
        _dashed(rgb, line * size, _colour(fabric.trim, 0.9 if fabric.trim != fabric.base else 0.6), thin)
    for line in sketch.laces:
        cv2.polylines(rgb, [_px(line, size)], False, _colour(fabric.trim, 0.95), 2 * thin + 1, cv2.LINE_AA, shift=_SHIFT)  # noqa: E501
    for zip_line in sketch.zips:
        _zip(rgb, zip_line * size, thin)
    for x, y, r in sketch.buttons:
        _button(rgb, (x * size, y * size), r * size, fabric)
    if sketch.badge is not None:
        _badge(rgb, sketch.badge, style, size)
    cv2.polylines(rgb, [_px(p, size) for p in sketch.body], True, _colour(fabric.base, 0.7), thin, cv2.LINE_AA,
                  shift=_SHIFT)
    return rgb, alpha


def _shading(alpha: np.ndarray, seed: int, size: int) -> np.ndarray:
    """Soft edges and a few fabric folds so a flat polygon reads as cloth lying on a table."""
    inside = (alpha > 0.5).astype(np.uint8)
    distance = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    edge = 0.84 + 0.16 * np.clip(distance / (0.035 * size), 0.0, 1.0)
    rng = np.random.default_rng(seed + 17)
    small = max(size // 8, 8)  # folds are broad and soft: draw and blur them at low resolution
    folds = np.zeros((small, small), np.float32)
    for _ in range(int(rng.integers(2, 5))):
        x0, y0, x1, y1 = (rng.uniform(0.2, 0.8, 4) * small).astype(int)
        cv2.line(folds, (x0, y0), (x1, y1), 1.0, max(1, small // 30), cv2.LINE_AA)
    folds = cv2.resize(cv2.GaussianBlur(folds, (0, 0), small / 35), (size, size), interpolation=cv2.INTER_LINEAR)
    light = np.linspace(1.03, 0.95, size, dtype=np.float32)[:, None]
    return edge * (1 - 0.12 * folds / max(float(folds.max()), 1e-6)) * light


def _dashed(rgb: np.ndarray, points: np.ndarray, colour, thickness: int) -> None:  # noqa: ANN001
    dash = max(3.0, rgb.shape[0] / 110)
    for a, b in zip(points[:-1], points[1:], strict=True):
        length = float(np.hypot(*(b - a)))
        steps = max(1, int(length / dash))
        for i in range(0, steps, 2):
            p = a + (b - a) * (i / steps)
            q = a + (b - a) * (min(i + 1, steps) / steps)
            cv2.line(rgb, tuple(np.round(p).astype(int)), tuple(np.round(q).astype(int)), colour, thickness, cv2.LINE_AA)  # noqa: E501


def _zip(rgb: np.ndarray, points: np.ndarray, thin: int) -> None:
    metal = (0.72, 0.72, 0.7)
    (x0, y0), (x1, y1) = points[0], points[-1]
    cv2.line(rgb, (int(x0), int(y0)), (int(x1), int(y1)), (0.15, 0.15, 0.15), 3 * thin + 2, cv2.LINE_AA)
    for y in np.arange(y0, y1, 4 * thin + 2):
        cv2.line(rgb, (int(x0) - 2 * thin, int(y)), (int(x0) + 2 * thin, int(y)), metal, 1, cv2.LINE_AA)
    cv2.rectangle(rgb, (int(x0) - 3 * thin - 2, int(y0)), (int(x0) + 3 * thin + 2, int(y0) + 10 * thin + 6), metal, -1)


def _button(rgb: np.ndarray, centre: tuple[float, float], radius: float, fabric: Fabric) -> None:
    c = (int(round(centre[0])), int(round(centre[1])))
    r = max(2, int(round(radius)))
    colour = _colour(fabric.trim, 0.85) if fabric.trim != fabric.base else (0.92, 0.9, 0.86)
    cv2.circle(rgb, c, r, colour, -1, cv2.LINE_AA)
    cv2.circle(rgb, c, r, _colour(fabric.base, 0.45), 1, cv2.LINE_AA)
    if r >= 4:
        for dx in (-r // 3, r // 3):
            cv2.circle(rgb, (c[0] + dx, c[1]), 1, (0.2, 0.2, 0.2), -1)


def _badge(rgb: np.ndarray, badge: tuple[float, float, float], style: GarmentStyle, size: int) -> None:
    """A chest logo (small) or graphic print (large): text blocks, rings and bars in the accent colour."""
    cx, cy, width = (v * size for v in badge)
    accent, base = _colour(style.fabric.accent), _colour(style.fabric.base)
    kind = style.seed % 4
    text = style.label
    scale = _fit_text(text, width * (0.8 if kind == 0 else 1.0))
    (tw, th), _ = cv2.getTextSize(text, FONT, scale, 1)
    thickness = max(1, int(scale * 1.6))
    org = (int(cx - tw / 2), int(cy + th / 2))
    if kind == 0:
        pad = max(3, int(th * 0.5))
        cv2.rectangle(rgb, (org[0] - pad, org[1] - th - pad), (org[0] + tw + pad, org[1] + pad), accent, -1)
        cv2.putText(rgb, text, org, FONT, scale, base, thickness, cv2.LINE_AA)
        return
    if kind == 1 and width > 0.1 * size:
        radius = int(width * 0.32)
        cv2.circle(rgb, (int(cx), int(cy - radius * 0.6)), radius, accent, max(2, radius // 5), cv2.LINE_AA)
        org = (org[0], int(cy + radius * 0.6 + th))
    if kind == 3 and width > 0.1 * size:
        bar = max(3, int(th * 0.45))
        for i in range(3):
            y = int(cy - th - 3 * bar * (i + 1))
            cv2.rectangle(rgb, (int(cx - width / 2), y), (int(cx + width / 2), y + bar), accent, -1)
    cv2.putText(rgb, text, org, FONT, scale, accent, thickness, cv2.LINE_AA)


def _fit_text(text: str, width: float) -> float:
    (tw, _), _ = cv2.getTextSize(text, FONT, 1.0, 1)
    return max(0.25, width / max(tw, 1))


def _pose(layer: Layer, bbox: tuple[float, float, float, float], style: GarmentStyle, view: str, size: int) -> Layer:
    """Centre the garment's bounding box, then tilt, shrink or zoom it for the view."""
    x0, y0, x1, y1 = bbox
    fill = 0.62 if view == "pair" else 0.8
    scale = fill * size / max(x1 - x0, y1 - y0)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    rng = np.random.default_rng([style.seed, sum(map(ord, view))])
    angle, focus = 0.0, centre
    if view == "angled":
        angle = float(rng.choice([-1, 1]) * rng.uniform(5, 11))
        scale *= rng.uniform(0.86, 0.95)
    elif view == "detail":
        focus = np.array([centre[0] + rng.uniform(-0.1, 0.1) * (x1 - x0), y0 + rng.uniform(0.2, 0.35) * (y1 - y0)])
        scale *= rng.uniform(1.6, 1.9)
    elif view == "pair":
        focus = centre + np.array([0.04, -0.03]) * size / scale
    matrix = cv2.getRotationMatrix2D((float(focus[0]), float(focus[1])), angle, float(scale))
    matrix[:, 2] += np.array([size / 2, size / 2]) - focus
    return _warp(layer, matrix, size)


def _warp(layer: Layer, matrix: np.ndarray, size: int) -> Layer:
    rgb = cv2.warpAffine(layer.rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    alpha = cv2.warpAffine(layer.alpha, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    return Layer(rgb, alpha)


def _shift(layer: Layer, *, dx: float, dy: float, scale: float, shade: float) -> Layer:
    size = layer.alpha.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), 0.0, scale)
    matrix[:, 2] += (dx, dy)
    moved = _warp(layer, matrix, size)
    return Layer(moved.rgb * shade, moved.alpha)
