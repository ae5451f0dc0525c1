"""Garment geometry: each garment type as polygons and lines in unit coordinates (0..1, y down).

A ``Sketch`` says what to fill with cloth, trim or accent colour and which seams, stitches, buttons
and zips to draw; ``garments.render_garment`` turns it into pixels. Shape parameters come from
``garments.random_shape`` so every product has its own proportions.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Points = np.ndarray  # float Nx2 in unit coordinates
Shape = dict[str, float]
CX = 0.5


@dataclass
class Sketch:
    body: list[Points] = field(default_factory=list)  # filled with the fabric texture
    trims: list[Points] = field(default_factory=list)  # collars, cuffs, bands, soles: trim colour
    accents: list[Points] = field(default_factory=list)  # side stripes, heel tabs: accent colour
    openings: list[Points] = field(default_factory=list)  # the inside of a neck opening: darkened cloth
    seams: list[Points] = field(default_factory=list)  # thin darker lines
    stitches: list[Points] = field(default_factory=list)  # dashed lines in trim colour
    buttons: list[tuple[float, float, float]] = field(default_factory=list)  # x, y, radius
    zips: list[Points] = field(default_factory=list)
    laces: list[Points] = field(default_factory=list)
    badge: tuple[float, float, float] | None = None  # centre x, centre y, width of a chest graphic or logo

    def mirrored(self) -> Sketch:
        """The same sketch seen from the other side (x -> 1 - x); used for the other side of a shoe."""
        flip = _flip
        return Sketch(
            body=[flip(p) for p in self.body], trims=[flip(p) for p in self.trims],
            accents=[flip(p) for p in self.accents], openings=[flip(p) for p in self.openings],
            seams=[flip(p) for p in self.seams], stitches=[flip(p) for p in self.stitches],
            buttons=[(1 - x, y, r) for x, y, r in self.buttons], zips=[flip(p) for p in self.zips],
            laces=[flip(p) for p in self.laces],
            badge=None if self.badge is None else (1 - self.badge[0], self.badge[1], self.badge[2]),
        )


def _flip(points: Points) -> Points:
    out = points.copy()
    out[:, 0] = 1.0 - out[:, 0]
    return out


def _pts(*points) -> Points:
    return np.array(points, dtype=np.float64)


def _symmetric(left: list) -> list:
    """Close a left half-outline (listed top to bottom) with its mirror image (bottom to top)."""
    right = [(2 * CX - x, y) for x, y in reversed(left)]
    return list(left) + right


def _arc(x0: float, x1: float, y: float, depth: float, n: int = 12) -> list[tuple[float, float]]:
    """Half-ellipse from (x0, y) to (x1, y) sagging ``depth`` downwards (negative bulges up)."""
    t = np.linspace(0.0, np.pi, n)
    mid, half = (x0 + x1) / 2, (x1 - x0) / 2
    return [(mid - half * np.cos(a), y + depth * np.sin(a)) for a in t]


def _band(a: np.ndarray, b: np.ndarray, direction: np.ndarray, width: float) -> Points:
    """A quad from segment a-b extended ``width`` along ``direction``: cuffs, hems, waistbands."""
    return _pts(a, b, b + direction * width, a + direction * width)


# --- tops: T-shirts, shirts, sweaters, jackets -------------------------------------------------------------


def top(p: Shape, view: str, garment: str) -> Sketch:
    sketch = Sketch()
    w, y0 = p["w"], 0.15
    y1 = y0 + p["length"] * (0.62 if view == "folded" else 1.0)
    nw = p["neck"]
    front = view != "back"
    depth = p["depth"] if front else 0.022
    shoulder = np.array([CX - w - 0.025, y0 + 0.035])
    hem = np.array([CX - w - p["flare"], y1])
    left: list = [(CX - nw, y0), tuple(shoulder)]
    sleeve_end = None
    if view == "folded":
        left += [(CX - w - 0.03, y0 + 0.1), (CX - w - 0.03, y1)]
        hem = np.array([CX - w - 0.03, y1])
        sketch.seams += [_pts((CX - w * 0.45, y0 + 0.1), (CX - w * 0.45, y1)),
                         _pts((CX + w * 0.45, y0 + 0.1), (CX + w * 0.45, y1))]
    else:
        a = np.deg2rad(p["angle"])
        d, n = np.array([-np.sin(a), np.cos(a)]), np.array([np.cos(a), np.sin(a)])
        outer = shoulder + d * p["sleeve"]
        inner = outer + n * p["sw1"]
        armpit = np.array([CX - w, y0 + 0.035 + p["sw0"] * 1.1])
        left += [tuple(outer), tuple(inner), tuple(armpit), tuple(hem)]
        sleeve_end = (outer, inner, d)
    outline = _symmetric(left) + _arc(CX + nw, CX - nw, y0, 0.022)[1:-1]
    sketch.body.append(_pts(*outline))
    if front:
        sketch.openings.append(_pts(*_arc(CX - nw, CX + nw, y0, 0.022), *_arc(CX + nw, CX - nw, y0, depth)))
    hem_r = np.array([2 * CX - hem[0], hem[1]])
    _top_details(sketch, p, garment, front=front, y0=y0, y1=y1, hem=(hem, hem_r), depth=depth)
    if sleeve_end is not None:
        outer, inner, d = sleeve_end
        for o, i in ((outer, inner), (_mirror(outer), _mirror(inner))):
            dd = d if o is outer else np.array([-d[0], d[1]])
            if garment in ("sweater", "jacket"):
                sketch.trims.append(_band(o, i, -dd, 0.035))
            else:
                sketch.seams.append(_pts(o - dd * 0.03, i - dd * 0.03))
    return sketch


def _mirror(point: np.ndarray) -> np.ndarray:
    return np.array([2 * CX - point[0], point[1]])


def _top_details(sketch: Sketch, p: Shape, garment: str, *, front: bool, y0: float, y1: float,
                 hem: tuple[np.ndarray, np.ndarray], depth: float) -> None:
    nw, w = p["neck"], p["w"]
    hem_l, hem_r = hem
    up = np.array([0.0, -1.0])
    if garment in ("sweater", "jacket"):
        sketch.trims.append(_band(hem_l, hem_r, up, 0.04))
        sketch.seams += [_pts((x, y1 - 0.038), (x, y1 - 0.004)) for x in np.linspace(hem_l[0], hem_r[0], 24)[1:-1]]
    else:
        sketch.seams.append(_pts(hem_l + up * 0.025, hem_r + up * 0.025))
    if garment in ("tshirt", "sweater"):
        ring = _arc(CX - nw, CX + nw, y0, depth) + _arc(CX + nw + 0.012, CX - nw - 0.012, y0 - 0.004, depth + 0.016)
        sketch.trims.append(_pts(*ring))
        if front and p.get("logo", 0) > 0.5:
            sketch.badge = (CX + w * 0.45, y0 + 0.13, 0.07)
        if front and p.get("graphic", 0) > 0.5:
            sketch.badge = (CX, y0 + 0.22, w * 1.1)
    elif garment == "shirt":
        if front:
            for side in (-1, 1):
                sketch.trims.append(_pts((CX + side * (nw + 0.015), y0 - 0.012), (CX + side * 0.004, y0 + depth),
                                         (CX + side * 0.035, y0 + depth + 0.05), (CX + side * (nw + 0.025), y0 + 0.04)))
            sketch.seams.append(_pts((CX + 0.018, y0 + depth), (CX + 0.018, y1)))
            step = (y1 - y0 - depth - 0.06) / 5
            sketch.buttons += [(CX, y0 + depth + 0.04 + i * step, 0.009) for i in range(6)]
            if p.get("pocket", 0) > 0.5:
                x, y = CX - w * 0.55, y0 + 0.12
                sketch.seams.append(_pts((x - 0.045, y), (x + 0.045, y), (x + 0.045, y + 0.1), (x, y + 0.115),
                                         (x - 0.045, y + 0.1), (x - 0.045, y)))
        else:
            sketch.trims.append(_pts(*_arc(CX - nw - 0.012, CX + nw + 0.012, y0 - 0.012, 0.02),
                                     *_arc(CX + nw, CX - nw, y0, 0.022)))
            sketch.seams.append(_pts((CX - w - 0.02, y0 + 0.1), (CX + w + 0.02, y0 + 0.1)))
    elif garment == "jacket":
        collar = [(CX - nw - 0.02, y0 + 0.03), (CX - nw - 0.012, y0 - 0.035), (CX + nw + 0.012, y0 - 0.035),
                  (CX + nw + 0.02, y0 + 0.03)]
        if front:
            sketch.trims.append(_pts(*collar, (CX + 0.014, y0 + depth), (CX - 0.014, y0 + depth)))
            if p.get("zip", 0) > 0.5:
                sketch.zips.append(_pts((CX, y0 + depth), (CX, y1)))
            else:
                step = (y1 - y0 - depth - 0.08) / 4
                sketch.buttons += [(CX + 0.02, y0 + depth + 0.04 + i * step, 0.013) for i in range(5)]
                sketch.seams.append(_pts((CX - 0.004, y0 + depth), (CX - 0.004, y1)))
            for side in (-1, 1):
                x = CX + side * w * 0.55
                sketch.seams.append(_pts((x - side * 0.05, y1 - 0.2), (x + side * 0.04, y1 - 0.14)))
                sketch.stitches.append(_pts((CX + side * (w - 0.01), y0 + 0.18), (CX + side * 0.04, y0 + 0.22)))
        else:
            sketch.trims.append(_pts(*collar))
            sketch.stitches.append(_pts((CX - w, y0 + 0.2), (CX + w, y0 + 0.2)))


# --- bottoms -----------------------------------------------------------------------------------------------


def trousers(p: Shape, view: str, garment: str) -> Sketch:
    sketch = Sketch()
    ww, y0, y1 = p["ww"], 0.08, 0.08 + p["length"]
    crotch, hw, flare = y0 + p["rise"], p["hw"], p["flare"]
    folded = view == "folded"
    inner = min(CX - p["gap"], CX - ww - flare + 2 * hw)
    left = [(CX - ww, y0), (CX - ww - 0.012, y0 + 0.12), (CX - ww - flare, y1), (inner, y1)]
    if folded:  # one leg laid over the other: a single wide leg
        left = [(CX - ww, y0), (CX - ww - 0.012, y0 + 0.12), (CX - hw - 0.02, y1)]
    outline = _symmetric(left)
    if not folded:
        outline.insert(len(left), (CX, crotch))
    sketch.body.append(_pts(*outline))
    sketch.seams.append(_pts((CX - ww, y0 + 0.04), (CX + ww, y0 + 0.04)))
    for side in (-1, 1):
        for x in (CX + side * (ww - 0.03), CX + side * 0.06):
            sketch.seams.append(_pts((x, y0), (x, y0 + 0.045)))
        if not folded:
            knee = CX + side * (CX - (CX - ww - flare + inner) / 2)
            sketch.seams.append(_pts((CX + side * (ww * 0.55), y0 + 0.12), (knee, y1 - 0.01)))
            sketch.stitches.append(_pts((CX + side * (ww + flare - 0.006), y1 - 0.025),
                                        (CX + side * (CX - inner + 0.006), y1 - 0.025)))
    if view == "back":
        for side in (-1, 1):
            x, y = CX + side * ww * 0.48, y0 + 0.1
            sketch.stitches.append(_pts((x - 0.045, y), (x + 0.045, y), (x + 0.04, y + 0.1), (x, y + 0.115),
                                        (x - 0.04, y + 0.1), (x - 0.045, y)))
        sketch.seams.append(_pts((CX - ww, y0 + 0.08), (CX, y0 + 0.11), (CX + ww, y0 + 0.08)))
        sketch.seams.append(_pts((CX, y0 + 0.11), (CX, crotch)))
    else:
        sketch.stitches.append(_pts((CX + 0.004, y0 + 0.045), (CX + 0.004, crotch - 0.07), (CX + 0.02, crotch - 0.05),
                                    (CX + 0.04, crotch - 0.08), (CX + 0.04, y0 + 0.045)))
        sketch.buttons.append((CX, y0 + 0.02, 0.011))
        for side in (-1, 1):
            sketch.stitches.append(_pts(*[(CX + side * (ww - 0.075 + 0.07 * t * t), y0 + 0.045 + 0.1 * t)
                                          for t in np.linspace(0, 1, 8)]))
    return sketch


def skirt(p: Shape, view: str, garment: str) -> Sketch:
    sketch = Sketch()
    ww, hw, y0 = p["ww"], p["hw"], 0.2
    y1 = y0 + p["length"]
    hem = _arc(CX - hw, CX + hw, y1, 0.03 + 0.05 * p.get("pleats", 0))
    sketch.body.append(_pts((CX + ww, y0), (CX - ww, y0), *hem))
    sketch.trims.append(_pts((CX - ww, y0), (CX + ww, y0), (CX + ww + 0.004, y0 + 0.045), (CX - ww - 0.004, y0 + 0.045)))  # noqa: E501
    if p.get("pleats", 0) > 0.5 and view != "folded":
        count = int(6 + 6 * p["pleat_density"])
        for t in np.linspace(0.0, 1.0, count + 2)[1:-1]:
            top_x = CX - ww + 2 * ww * t
            x, y = hem[int(round(t * (len(hem) - 1)))]
            sketch.seams.append(_pts((top_x, y0 + 0.05), (x, y - 0.004)))
    sketch.stitches.append(_pts(*[(x, y - 0.02) for x, y in hem[1:-1]]))
    if view == "back":
        sketch.zips.append(_pts((CX, y0 + 0.045), (CX, y0 + 0.2)))
    else:
        sketch.buttons.append((CX + ww * 0.6, y0 + 0.022, 0.01))
    return sketch


def dress(p: Shape, view: str, garment: str) -> Sketch:
    sketch = Sketch()
    y0, nw, sw = 0.1, p["neck"], p["sw"]
    wy, ww, hw = y0 + p["waist"], p["ww"], p["hw"]
    y1 = y0 + p["length"]
    front = view != "back"
    depth = p["depth"] if front else 0.025
    left: list = [(CX - nw, y0), (CX - sw, y0 + 0.015)]
    if p.get("sleeves", 0) > 0.5:
        left += [(CX - sw - 0.07, y0 + 0.09), (CX - sw - 0.03, y0 + 0.135)]
    else:
        left += [(CX - sw + 0.005, y0 + 0.07)]
    left += [(CX - sw + 0.01, y0 + 0.14), (CX - ww - 0.015, wy - 0.06), (CX - ww, wy)]
    hem = _arc(CX - hw, CX + hw, y1, 0.035)
    right = [(2 * CX - x, y) for x, y in reversed(left)]
    outline = left + hem + right + _arc(CX + nw, CX - nw, y0, 0.025)[1:-1]
    sketch.body.append(_pts(*outline))
    if front:
        sketch.openings.append(_pts(*_arc(CX - nw, CX + nw, y0, 0.025), *_arc(CX + nw, CX - nw, y0, depth)))
        sketch.stitches.append(_pts(*_arc(CX - nw - 0.01, CX + nw + 0.01, y0 - 0.003, depth + 0.012)))
    if p.get("belt", 0) > 0.5:
        sketch.trims.append(_pts((CX - ww - 0.006, wy - 0.018), (CX + ww + 0.006, wy - 0.018),
                                 (CX + ww + 0.008, wy + 0.018), (CX - ww - 0.008, wy + 0.018)))
        if front:
            sketch.buttons.append((CX, wy, 0.016))
    else:
        sketch.seams.append(_pts((CX - ww, wy), (CX + ww, wy)))
    sketch.stitches.append(_pts(*[(x, y - 0.02) for x, y in hem[1:-1]]))
    if not front:
        sketch.zips.append(_pts((CX, y0 + 0.03), (CX, wy + 0.05)))
    return sketch


# --- footwear ----------------------------------------------------------------------------------------------


def shoe(p: Shape, view: str, garment: str) -> Sketch:
    """A side profile facing right; the back view is the other shoe's outer side (mirrored)."""
    sketch = Sketch()
    style = int(p["style"])  # 0 sneaker, 1 boot, 2 loafer
    h, toe, sole = p["height"], p["toe"], p["sole"]
    ground = 0.64

    def y(level: float) -> float:  # level 0 at the sole, 1 at a sneaker's collar
        return ground - level * h

    upper = [(0.13, ground), (0.115, y(0.4)), (0.135, y(0.85))]
    if style == 1:
        upper += [(0.15, y(1.75)), (0.36, y(1.75)), (0.38, y(1.1)), (0.46, y(0.75))]
        lacing = ((0.37, y(1.6)), (0.45, y(0.8)))
    elif style == 2:
        upper += [(0.2, y(0.8)), (0.33, y(0.72)), (0.48, y(0.72)), (0.6, y(0.62))]
        lacing = None
    else:
        upper += [(0.2, y(0.97)), (0.33, y(0.8)), (0.4, y(0.98)), (0.42, y(1.12)), (0.47, y(1.1)), (0.56, y(0.78))]
        lacing = ((0.44, y(0.97)), (0.57, y(0.7)))
    upper += [(0.7, y(0.5 + toe)), (0.81, y(0.38 + toe)), (0.875, y(0.22)), (0.89, ground)]
    sketch.body.append(_smooth(_pts(*upper)))
    heel = 0.035 if style == 1 else 0.0
    sketch.trims.append(_smooth(_pts((0.11, ground - 0.012), (0.9, ground - 0.012), (0.905, ground + sole * 0.5),
                                     (0.87, ground + sole), (0.3, ground + sole), (0.28, ground + sole + heel),
                                     (0.12, ground + sole + heel), (0.105, ground + sole * 0.4)), iterations=2))
    sketch.seams.append(_pts((0.12, ground + sole * 0.35), (0.89, ground + sole * 0.35)))
    sketch.seams.append(_pts(*[(0.74 + 0.05 * np.sin(t), y(0.48 + toe) + (0.5 + toe) * h * (1 - np.cos(t)))
                               for t in np.linspace(0, np.pi / 2, 6)]))
    if lacing is not None:
        sketch.laces += _laces(np.array(lacing[0]), np.array(lacing[1]), 7 if style == 1 else 5)
        sketch.stitches.append(_pts(*lacing) + np.array([0.03, 0.03]))
    if style == 0:
        sketch.accents.append(_swoosh(p["stripe"], y))
        sketch.accents.append(_pts((0.1, y(1.0)), (0.2, y(1.0)), (0.19, y(0.45)), (0.1, y(0.4))))
    elif style == 1:
        sketch.accents.append(_pts((0.1, y(1.9)), (0.4, y(1.9)), (0.4, y(1.62)), (0.1, y(1.62))))
        sketch.stitches.append(_pts((0.14, ground - 0.025), (0.87, ground - 0.025)))
    else:
        sketch.trims.append(_pts((0.47, y(0.68)), (0.6, y(0.58)), (0.62, y(0.42)), (0.5, y(0.5))))
        sketch.stitches.append(_pts((0.4, y(0.66)), (0.55, y(0.58)), (0.68, y(0.45))))
    if view == "back":
        return sketch.mirrored()
    return sketch


def _smooth(points: Points, iterations: int = 3) -> Points:
    """Chaikin corner cutting: turns a coarse closed outline into a rounded one."""
    for _ in range(iterations):
        following = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * following, 0.25 * points + 0.75 * following], axis=1).reshape(-1, 2)
    return points


def _swoosh(height: float, y: Callable[[float], float]) -> Points:
    t = np.linspace(0.0, 1.0, 12)
    centre = [(0.2 + 0.5 * s, y(0.3 + height * 4 * s * (1.2 - s))) for s in t]
    lower = [(x, v + 0.03 * (1 - s)) for (x, v), s in zip(centre, t, strict=True)]
    upper = [(x, v - 0.005 * (1 - s)) for (x, v), s in zip(centre, t, strict=True)]
    return _pts(*lower, *upper[::-1])


def _laces(start: np.ndarray, end: np.ndarray, count: int) -> list[Points]:
    """Criss-cross laces across the lacing line from the collar to the vamp."""
    direction = (end - start) / max(float(np.hypot(*(end - start))), 1e-9)
    normal = np.array([direction[1], -direction[0]])
    laces = []
    for t in np.linspace(0.0, 1.0, count):
        centre = start + (end - start) * t
        for sign in (-1, 1):
            laces.append(_pts(centre - normal * 0.028 - direction * 0.012 * sign,
                              centre + normal * 0.028 + direction * 0.012 * sign))
    return laces


SHAPES: dict[str, Callable[[Shape, str, str], Sketch]] = {
    "tshirt": top, "shirt": top, "sweater": top, "jacket": top,
    "trousers": trousers, "skirt": skirt, "dress": dress, "shoe": shoe,
}


def sketch_for(garment: str, shape: Shape, view: str) -> Sketch:
    return SHAPES[garment](shape, view, garment)
