"""Training views: what the embedder sees at run time, and phone-like variations of it.

Every view ends in ``matching.preprocess.canonical_crop`` (garment on neutral grey, cropped, padded square),
the same function the catalogue and the queries go through, so training and serving see alike images. The
variations are what separates a warehouse or worn photo from a studio photo: a looser or tighter cut, the
person or the background left in, perspective, light and colour casts, blur and compression.
"""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageFilter

from ..preprocess import canonical_crop, studio_mask


def background_mask(image: Image.Image, *, tolerance: float = 18.0) -> np.ndarray | None:
    """0/255 mask of what is not a plain backdrop (any colour) connected to the border, else ``None``.

    Worn photos on a studio backdrop give the person; it stands in for a segmenter's cut-out of the garment
    (looser: skin and hair stay) when views are synthesised.
    """
    array = np.asarray(image.convert("RGB"), dtype=np.int16)
    border = np.concatenate([array[0], array[-1], array[:, 0], array[:, -1]])
    backdrop = np.median(border, axis=0)
    near = (np.abs(array - backdrop).max(axis=2) <= tolerance).astype(np.uint8)
    if near[[0, -1]].mean() < 0.5:
        return None
    count, labels = cv2.connectedComponents(near, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    background = np.isin(labels, edge[edge > 0]) & (near > 0)
    mask = np.where(background, 0, 255).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    return mask if 0.05 < (mask > 0).mean() < 0.95 else None


def _jitter_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A segmenter's imperfect edge: grown or shrunk by a few pixels."""
    radius = int(rng.integers(-3, 4))
    if radius == 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
    return cv2.dilate(mask, kernel) if radius > 0 else cv2.erode(mask, kernel)


def _box_crop(
    image: Image.Image, mask: np.ndarray | None, box: tuple[float, float, float, float]
) -> tuple[Image.Image, np.ndarray | None]:
    w, h = image.size
    x0, y0, x1, y1 = (int(round(v)) for v in (box[0] * w, box[1] * h, box[2] * w, box[3] * h))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, max(x1, x0 + 8)), min(h, max(y1, y0 + 8))
    cropped = image.crop((x0, y0, x1, y1))
    return cropped, (mask[y0:y1, x0:x1] if mask is not None else None)


def colour_cast(image: Image.Image, rng: np.random.Generator, strength: float = 1.0) -> Image.Image:
    """Light and white-balance: per-channel gains, brightness, contrast, a little saturation change."""
    array = np.asarray(image, dtype=np.float32)
    gains = np.exp(rng.normal(0.0, 0.12 * strength, 3)).astype(np.float32)
    brightness = float(np.exp(rng.normal(0.0, 0.15 * strength)))
    contrast = float(np.exp(rng.normal(0.0, 0.12 * strength)))
    mean = array.mean()
    array = (array - mean) * contrast + mean
    array = array * gains * brightness
    grey = array.mean(axis=2, keepdims=True)
    saturation = float(np.exp(rng.normal(0.0, 0.12 * strength)))
    array = grey + (array - grey) * saturation
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def degrade(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Phone optics and transport: blur, downscale, JPEG."""
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.5))))
    if rng.random() < 0.3:
        side = int(rng.integers(72, 160))
        image = image.resize((side, side), Image.Resampling.BILINEAR).resize(image.size, Image.Resampling.BILINEAR)
    if rng.random() < 0.4:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=int(rng.integers(35, 90)))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def perspective(
    image: Image.Image, mask: np.ndarray | None, rng: np.random.Generator, amount: float = 0.08
) -> tuple[Image.Image, np.ndarray | None]:
    w, h = image.size
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + rng.uniform(-amount, amount, (4, 2)).astype(np.float32) * np.float32([w, h])
    matrix = cv2.getPerspectiveTransform(src, dst)
    array = cv2.warpPerspective(np.asarray(image), matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    warped_mask = None
    if mask is not None:
        warped_mask = cv2.warpPerspective(mask, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return Image.fromarray(array), warped_mask


def shop_view(image: Image.Image, rng: np.random.Generator | None = None, *, phone_like: bool = False) -> Image.Image:
    """A catalogue photo as the catalogue embeds it; with ``rng``, lightly varied; ``phone_like`` varies it
    as a phone photo of the same garment would (perspective, casts, a segmenter's edge, blur)."""
    image = image.convert("RGB")
    mask = studio_mask(image)
    if rng is None:
        return canonical_crop(image, mask)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        mask = mask[:, ::-1].copy() if mask is not None else None
    if phone_like:
        image, mask = perspective(image, mask, rng)
        if mask is not None:
            mask = _jitter_mask(mask, rng)
        image = colour_cast(image, rng, strength=1.5)
        view = canonical_crop(image, mask, margin=float(rng.uniform(0.0, 0.12)))
        return degrade(view, rng)
    if rng.random() < 0.3:
        image = colour_cast(image, rng, strength=0.5)
    return canonical_crop(image, mask, margin=float(rng.uniform(0.02, 0.08)))


def query_view(image: Image.Image, rng: np.random.Generator | None = None) -> Image.Image:
    """A worn or phone photo as a query: the whole photo, the person cut out, or a garment-sized crop of it.

    Without ``rng`` the person cut-out (the whole photo when no backdrop is found)."""
    image = image.convert("RGB")
    mask = background_mask(image)
    if rng is None:
        return canonical_crop(image, mask)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        mask = mask[:, ::-1].copy() if mask is not None else None
    choice = rng.random()
    if choice < 0.45:
        # a garment-sized frame around the torso, as a segmenter's top cut-out or a worker's box gives
        cx, top = rng.uniform(0.42, 0.58), rng.uniform(0.08, 0.25)
        half, bottom = rng.uniform(0.28, 0.45), rng.uniform(0.65, 0.92)
        image, mask = _box_crop(image, mask, (cx - half, top, cx + half, bottom))
    if mask is not None and rng.random() < 0.3:
        mask = _jitter_mask(mask, rng)
    use_mask = mask if rng.random() < 0.7 else None
    image = colour_cast(image, rng, strength=1.0)
    view = canonical_crop(image, use_mask, margin=float(rng.uniform(0.0, 0.08)))
    return degrade(view, rng)
