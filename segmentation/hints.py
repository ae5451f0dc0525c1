"""User hints (rectangle, foreground and background strokes): validation, clipping and rescaling."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


class HintError(ValueError):
    """Hints that cannot be used (malformed, or a rectangle entirely outside the photo)."""


@dataclass
class Hints:
    rect: tuple[int, int, int, int] | None = None
    fg: list[np.ndarray] = field(default_factory=list)
    bg: list[np.ndarray] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.rect is None and not self.fg and not self.bg


def parse(hints: Mapping | Hints | None, width: int, height: int) -> Hints | None:
    """Check hints given in photo pixel coordinates. The rectangle is clipped to the photo; a rectangle
    with no area inside the photo is refused. Stroke points may lie outside (they are clipped when drawn).
    Already parsed ``Hints`` (``scaled`` to this photo by the caller) pass through."""
    if isinstance(hints, Hints):
        return None if hints.empty else hints
    if not hints:
        return None
    if not isinstance(hints, Mapping):
        raise HintError("Hints must be a mapping with 'rect', 'fg' and/or 'bg'.")
    unknown = set(hints) - {"rect", "fg", "bg"}
    if unknown:
        raise HintError(f"Unknown hint keys: {', '.join(sorted(map(str, unknown)))}; valid: rect, fg, bg.")
    parsed = Hints()
    rect = hints.get("rect")
    if rect is not None:
        try:
            x0, y0, x1, y1 = (float(v) for v in rect)
        except (TypeError, ValueError) as exc:
            raise HintError("'rect' must be [x0, y0, x1, y1] numbers.") from exc
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        cx0, cy0 = max(0.0, x0), max(0.0, y0)
        cx1, cy1 = min(float(width), x1), min(float(height), y1)
        if cx1 - cx0 < 1 or cy1 - cy0 < 1:
            raise HintError(f"The rectangle {list(rect)} lies outside the {width}x{height} photo.")
        parsed.rect = (round(cx0), round(cy0), round(cx1), round(cy1))
    for key in ("fg", "bg"):
        strokes = hints.get(key) or []
        for stroke in strokes:
            try:
                points = np.asarray(stroke, dtype=np.float64).reshape(-1, 2)
            except (TypeError, ValueError) as exc:
                raise HintError(f"'{key}' strokes must be lists of [x, y] points.") from exc
            if len(points) == 0 or not np.isfinite(points).all():
                raise HintError(f"A '{key}' stroke has no usable points.")
            getattr(parsed, key).append(points)
    return None if parsed.empty else parsed


def scaled(hints: Hints | None, scale: float, width: int, height: int) -> Hints | None:
    """The same hints at working size (``scale`` = working / photo)."""
    if hints is None:
        return None
    out = Hints(fg=[p * scale for p in hints.fg], bg=[p * scale for p in hints.bg])
    if hints.rect is not None:
        x0, y0, x1, y1 = hints.rect
        sx0, sy0 = int(np.floor(x0 * scale)), int(np.floor(y0 * scale))
        sx1, sy1 = int(np.ceil(x1 * scale)), int(np.ceil(y1 * scale))
        sx0, sy0 = min(max(sx0, 0), width - 1), min(max(sy0, 0), height - 1)
        out.rect = (sx0, sy0, max(sx0 + 1, min(sx1, width)), max(sy0 + 1, min(sy1, height)))
    return out
