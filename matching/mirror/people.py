"""Is someone standing at the mirror, and where? Face detection from the OpenCV wheel, plus a skin cue.

Measured on 60 photos each (``bench/mirror_people.py``, figures in docs/mirror.md): OpenCV's
``haarcascade_frontalface_alt2`` at 320 px finds a face in 44 of 60 VITON photos of a person wearing a top
and in 0 of 60 flat shop photos of tops; the default HOG people detector fired on 7 of those shop photos
and found only 3 of the worn ones at a useful threshold, so it is not used. Photos that cut the face off
at the top (common for shop models, rare at a mirror) are caught by skin just above the top garment (neck,
chin), checked after segmentation.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

DETECT_SIZE = 320  # long side of the grey image the face detector sees
MIN_FACE = 0.07  # share of the short side
_local = threading.local()  # one classifier per thread: OpenCV does not promise detectMultiScale is thread-safe


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the image's coordinates

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


def _face_cascade() -> cv2.CascadeClassifier:
    cascade = getattr(_local, "cascade", None)
    if cascade is None:
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")
        if cascade.empty():
            raise RuntimeError("OpenCV's haarcascade_frontalface_alt2.xml is missing from the cv2 wheel.")
        _local.cascade = cascade
    return cascade


def faces_find(image: Image.Image) -> list[Face]:
    """Faces in ``image`` (RGB), largest first."""
    scale = min(1.0, DETECT_SIZE / max(image.size))
    small = image.convert("L").resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BILINEAR
    )
    grey = cv2.equalizeHist(np.asarray(small, dtype=np.uint8))
    side = max(12, int(MIN_FACE * min(grey.shape)))
    found = _face_cascade().detectMultiScale(grey, scaleFactor=1.15, minNeighbors=4, minSize=(side, side))
    faces = [
        Face((round(x / scale), round(y / scale), round((x + w) / scale), round((y + h) / scale)))
        for x, y, w, h in (found if len(found) else [])
    ]
    return sorted(faces, key=lambda face: -face.width * face.height)


def body_region(face: Face, width: int, height: int) -> tuple[int, int, int, int]:
    """Where the body (and a garment held up in front of it) is, from the face: about seven face-widths
    wide, from just above the face down to the bottom of the frame."""
    cx, _ = face.centre
    half = 3.5 * face.width
    return (max(0, round(cx - half)), max(0, round(face.box[1] - 0.2 * face.height)),
            min(width, round(cx + half)), height)


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels (the classic YCrCb box), bool HxW."""
    ycrcb = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2]
    return (y > 60) & (cr >= 135) & (cr <= 175) & (cb >= 85) & (cb <= 130)


def skin_above(image: Image.Image, bbox: tuple[int, int, int, int], *, min_share: float = 0.2) -> bool:
    """Whether a neck, chin or shoulders show just above a garment's box: someone is wearing or holding it."""
    x0, y0, x1, y1 = bbox
    band = max(4, round(0.15 * (y1 - y0)))
    if y0 < band // 2:
        return False  # the garment starts at the frame's top edge: nothing above it to see
    margin = round(0.1 * (x1 - x0))
    cx0, cx1 = x0 + margin, x1 - margin
    if cx1 - cx0 < 4:
        return False
    region = np.asarray(image.crop((cx0, max(0, y0 - band), cx1, y0 + band // 3)).convert("RGB"), dtype=np.uint8)
    return bool(region.size and skin_mask(region).mean() >= min_share)
