"""Per-photo signatures for catalogue cleanup: perceptual hashes and quality measurements.

Everything here is a pure function of the pixels; the scans store the results (``ImageSignature``) so
a photo is decoded once per file, never once per comparison.

Measurements are taken on a copy whose long side is at most ``WORK_SIZE`` (never upscaled), so the
sharpness of a 4000 px photo and of a 400 px one are comparable. Sharpness is the variance of the
Laplacian over the garment and its outline only: a studio photo's flat white background would
otherwise dilute it by however much of the frame it fills.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from .conf import cleanup_setting
from .duplicates import thumb_of

WORK_SIZE = 256
PHOTO_FLAGS = ("blurred", "dark", "bright", "small", "no_garment", "cut_off")


@dataclass
class PhotoSignature:
    phash: int  # 64-bit DCT hash as a signed int64 (fits a bigint column)
    thumb: bytes  # 8x8 RGB
    blockmean: bytes  # 256-bit block-mean hash
    sharpness: float
    brightness: float
    garment_share: float | None  # None: no mask could be made (not a studio photo, no segmenter)
    edge_share: float | None  # largest share of one image edge covered by the garment
    flags: list[str] = field(default_factory=list)
    measures: dict = field(default_factory=dict)


def signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def phash_of(gray: np.ndarray) -> int:
    bits = cv2.img_hash.pHash(gray).ravel()
    return signed64(int.from_bytes(bytes(bits), "big"))


def blockmean_of(gray: np.ndarray) -> bytes:
    return bytes(cv2.img_hash.blockMeanHash(gray, mode=cv2.img_hash.BLOCK_MEAN_HASH_MODE_0).ravel())


def hamming64(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFFFFFFFFFFFFFF).bit_count()


def hamming_bytes(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def _work_copy(image: Image.Image) -> np.ndarray:
    rgb = image.convert("RGB")
    scale = min(1.0, WORK_SIZE / max(rgb.size))
    if scale < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))),
                         Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(rgb, dtype=np.uint8)


def garment_mask(rgb: np.ndarray, *, segment: bool = True) -> np.ndarray | None:
    """Boolean garment mask of a work copy: the studio background test, then the segmentation network."""
    from matching.preprocess import studio_mask, white_border

    picture = Image.fromarray(rgb)
    # the current rule makes a pale garment whole; where even it cannot, the first rule's pieces still show it
    mask = studio_mask(picture)
    if mask is None:
        mask = studio_mask(picture, rule=1)
    if mask is not None:
        return mask > 0
    if not white_border(rgb):
        return _network_mask(rgb) if segment else None
    return np.zeros(rgb.shape[:2], bool)  # a white frame with (almost) nothing on it


def _network_mask(rgb: np.ndarray) -> np.ndarray | None:
    try:
        from segmentation import cut_out
    except ImportError:
        return None
    try:
        cut = cut_out(Image.fromarray(rgb), method="tiramisu")
    except Exception:  # noqa: BLE001 - no segmenter trained/installed: the garment checks are skipped
        return None
    mask = np.asarray(cut.mask) if getattr(cut, "mask", None) is not None else None
    if mask is None or mask.shape[:2] != rgb.shape[:2]:
        return None
    return mask > 0


def photo_signature(image: Image.Image, *, segment: bool | None = None) -> PhotoSignature:
    """Hashes, measurements and flags (``PHOTO_FLAGS``) for one upright photo.

    ``segment``: whether a photo that is not on a studio background may be segmented by the network to
    find its garment (default ``CLEANUP["SEGMENT_PHOTOS"]``); without a mask no_garment and cut_off are
    not judged.
    """
    if segment is None:
        segment = bool(cleanup_setting("SEGMENT_PHOTOS"))
    rgb = _work_copy(image)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    flags: list[str] = []
    if min(image.size) < int(cleanup_setting("MIN_SIDE")):
        flags.append("small")
    mean = float(gray.mean())
    p01, p05, p99 = (float(v) for v in np.percentile(gray, [1, 5, 99]))
    exposure_bad = False
    if p99 < float(cleanup_setting("DARK_P99")) or mean < float(cleanup_setting("DARK_MEAN")):
        flags.append("dark")
        exposure_bad = True
    elif p05 > float(cleanup_setting("BRIGHT_P05")):
        flags.append("bright")
        exposure_bad = True
    mask = None if exposure_bad else garment_mask(rgb, segment=segment)
    garment_share = edge_share = None
    region = np.ones(gray.shape, bool)
    if mask is not None:
        garment_share = float(mask.mean())
        edges = [mask[0], mask[-1], mask[:, 0], mask[:, -1]]
        shares = [float(edge.mean()) for edge in edges]
        edge_share = max(shares)
        if garment_share < float(cleanup_setting("MIN_GARMENT_SHARE")):
            flags.append("no_garment")
        else:
            if edge_share >= float(cleanup_setting("CUT_OFF_EDGE_SHARE")) and min(shares) < 0.05:
                flags.append("cut_off")
            region = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    # Contrast-normalised, so a dark but sharp photo is not also called blurred.
    stretched = np.clip((gray.astype(np.float64) - p01) * (255.0 / max(p99 - p01, 1.0)), 0, 255)
    laplacian = cv2.Laplacian(stretched, cv2.CV_64F)
    sharpness = float(laplacian[region].var()) if region.any() else 0.0
    if "no_garment" not in flags and sharpness < float(cleanup_setting("BLUR_VARIANCE")):
        flags.append("blurred")
    return PhotoSignature(
        phash=phash_of(gray), thumb=thumb_of(image), blockmean=blockmean_of(gray), sharpness=round(sharpness, 2),
        brightness=round(mean, 2), garment_share=None if garment_share is None else round(garment_share, 4),
        edge_share=None if edge_share is None else round(edge_share, 4),
        flags=[flag for flag in PHOTO_FLAGS if flag in flags],
        measures={"p01": p01, "p05": p05, "p99": p99},
    )
