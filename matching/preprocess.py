"""Turning a photo and a garment mask into what the embedder sees.

Catalogue photos and query cut-outs go through the same ``canonical_crop`` (garment on neutral grey,
cropped to its box plus a margin, padded square), so both sides of a comparison look alike whatever
produced the mask. Studio photos on white get their mask from ``studio_mask``: near-white pixels
connected to the border are background. It costs about a millisecond, which keeps catalogue ingestion
fast; phone photos use ``segmentation.cut_out`` instead.
"""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

NEUTRAL_GREY = (128, 128, 128)
MASK_WORK_SIZE = 256
MIN_MASK_SHARE = 0.03  # below this the mask is not trusted and the whole photo is used


# How a studio photo's garment is told from its white background; a version row records the rule its vectors
# were made with (``preprocessing["studio_mask"]``; rows without it were made with 1), so an installation's
# stored vectors never mix rules. 1: near-white (all channels >= 232) connected to the border is background,
# which floods a white or pale garment into specks. 2: rule 1 when its mask is one solid piece, else a stricter
# background (>= 248) with the outline filled, else the whole photo (docs/matching.md, "White garments").
STUDIO_MASK_RULES = (1, 2)
STUDIO_MASK_RULE = 2
WHITE_LEVEL = 232  # all channels at least this: studio white
_STRICT_WHITE_LEVEL = 248


def studio_mask(image: Image.Image, *, rule: int = STUDIO_MASK_RULE) -> np.ndarray | None:
    """0/255 mask at ``image``'s resolution for a photo on a plain white background, else ``None``."""
    if rule not in STUDIO_MASK_RULES:
        raise ValueError(f"unknown studio mask rule {rule!r}; known: {STUDIO_MASK_RULES}")
    small, array = _mask_work_copy(image)
    if not white_border(array):
        return None  # not a white-background photo
    mask = _border_white_removed(array, WHITE_LEVEL)
    if rule == 2 and _fragmented(mask):
        mask = _solid(_border_white_removed(array, _STRICT_WHITE_LEVEL))
        if _fragmented(mask):
            return None
    if (mask > 0).mean() < MIN_MASK_SHARE:
        return None
    if small.size != image.size:
        mask = cv2.resize(mask, image.size, interpolation=cv2.INTER_NEAREST)
    return mask


def is_studio_photo(image: Image.Image) -> bool:
    """A photo on a plain white studio background (most of its border near-white), whatever its garment."""
    return white_border(_mask_work_copy(image)[1])


def _mask_work_copy(image: Image.Image) -> tuple[Image.Image, np.ndarray]:
    """The RGB thumbnail the studio tests work on (long side ``MASK_WORK_SIZE``) and its pixels."""
    small = image.convert("RGB")
    small.thumbnail((MASK_WORK_SIZE, MASK_WORK_SIZE), Image.Resampling.BILINEAR)
    return small, np.asarray(small, dtype=np.uint8)


def white_border(array: np.ndarray) -> bool:
    """Mostly near-white frame edges (an RGB array): a studio photo, even if the garment is tiny or missing."""
    near_white = array.min(axis=2) >= WHITE_LEVEL
    border = np.concatenate([near_white[0], near_white[-1], near_white[:, 0], near_white[:, -1]])
    return bool(border.mean() >= 0.6)


def _border_white_removed(array: np.ndarray, white_level: int) -> np.ndarray:
    """0/255: everything but the near-white pixels connected to the border."""
    near_white = (array.min(axis=2) >= white_level).astype(np.uint8)
    count, labels = cv2.connectedComponents(near_white, connectivity=4)
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge_labels[edge_labels > 0]) & (near_white > 0)
    mask = np.where(background, 0, 255).astype(np.uint8)
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def _fragmented(mask: np.ndarray) -> bool:
    """A garment is one solid piece: true when the largest piece holds < 90 % of the mask or the mask fills
    < half of its convex hull (a pale garment flooded into its seams and prints)."""
    binary = (mask > 0).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return True
    areas = stats[1:, cv2.CC_STAT_AREA]
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull_area = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
    return bool(areas.max() < 0.9 * areas.sum() or binary.sum() < 0.5 * max(hull_area, 1.0))


def _solid(mask: np.ndarray, grow: int = 2) -> np.ndarray:
    """Outlines made solid: grown by ``grow`` px, every outer contour filled (specks under 5 % of the largest
    dropped), shrunk back."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    grown = cv2.dilate(mask, kernel)
    contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(mask)
    if contours:
        largest = max(cv2.contourArea(contour) for contour in contours)
        kept = [contour for contour in contours if cv2.contourArea(contour) >= 0.05 * largest]
        cv2.drawContours(filled, kept, -1, 255, thickness=cv2.FILLED)
    return cv2.erode(filled, kernel)


def canonical_crop(image: Image.Image, mask: np.ndarray | None, *, margin: float | None = None) -> Image.Image:
    """The garment on neutral grey, cropped to its box (+ margin) and padded square: ``segmentation.view``'s
    garment view at full resolution. With no usable mask the whole photo is padded square unchanged.
    """
    from segmentation.view import garment_view

    extra = {} if margin is None else {"margin": margin}
    return garment_view(image, _usable(image, mask), max_side=0, **extra)


def canonical_views(image: Image.Image, mask: np.ndarray | None, *, context: bool) -> list[Image.Image]:
    """``canonical_crop``, and with ``context`` the garment in its photo (``segmentation.view.context_view`` at full
    resolution), under the same mask rule. With no usable mask both are the whole photo padded square, the same
    picture: it is given twice as one object, so an embedder embeds it once (``embedders.base.distinct_views``)."""
    from segmentation.view import context_view, garment_view

    usable = _usable(image, mask)
    crop = garment_view(image, usable, max_side=0)
    if not context:
        return [crop]
    return [crop, crop if usable is None else context_view(image, usable, max_side=0)]


def _usable(image: Image.Image, mask: np.ndarray | None) -> np.ndarray | None:
    """``mask`` when it fits the photo and covers enough of it, else None (the whole photo)."""
    fits = mask is not None and mask.shape[:2] == (image.height, image.width) and (mask > 0).mean() >= MIN_MASK_SHARE
    return mask if fits else None


def pad_square(image: Image.Image) -> Image.Image:
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), NEUTRAL_GREY)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def working_copy(image: Image.Image, long_side: int) -> tuple[Image.Image, float]:
    """An RGB copy whose long side is at most ``long_side``, and the scale applied (≤ 1)."""
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    scale = min(1.0, long_side / max(rgb.size))
    if scale >= 1.0:
        return rgb, 1.0
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), scale
