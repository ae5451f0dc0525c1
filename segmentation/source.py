"""Photo access for segmentation: any PIL mode or array in, small RGB copies and bounded crops out.

A huge photo is never copied at full resolution as float: PIL inputs are reduced with PIL's own resampler,
arrays with ``cv2.INTER_AREA``, and the cut-out is cropped before it is resized."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from .types import SegmentationInputError

MIN_SIDE = 4


class Source:
    def __init__(self, image) -> None:  # noqa: ANN001
        if isinstance(image, Image.Image):
            self.pil: Image.Image | None = _pil_rgb(image)
            self.array: np.ndarray | None = None
            self.width, self.height = self.pil.size
        elif isinstance(image, np.ndarray):
            self.pil = None
            self.array = _array_rgb(image)
            self.height, self.width = self.array.shape[:2]
        else:
            raise SegmentationInputError(f"Expected a PIL image or an RGB uint8 array, got {type(image).__name__}.")
        if min(self.width, self.height) < MIN_SIDE:
            raise SegmentationInputError(
                f"The image is {self.width}x{self.height} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed."
            )

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def scaled(self, long_side: int) -> np.ndarray:
        """RGB uint8 copy whose long side is at most ``long_side`` (never enlarged)."""
        scale = min(1.0, long_side / max(self.width, self.height))
        size = (max(1, round(self.width * scale)), max(1, round(self.height * scale)))
        if self.pil is not None:
            if size == self.pil.size:
                return np.asarray(self.pil)
            return np.asarray(self.pil.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
        import cv2

        if size == (self.width, self.height):
            return self.array
        return cv2.resize(self.array, size, interpolation=cv2.INTER_AREA)

    def crop(self, box: tuple[int, int, int, int], max_side: int) -> np.ndarray:
        """RGB uint8 crop of ``box`` (x0, y0, x1, y1, inside the photo), resized to fit ``max_side``."""
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        scale = min(1.0, max_side / max(w, h))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if self.pil is not None:
            return np.asarray(self.pil.resize(size, Image.Resampling.BILINEAR, box=box, reducing_gap=2.0))
        import cv2

        region = self.array[y0:y1, x0:x1]
        return region if size == (w, h) else cv2.resize(region, size, interpolation=cv2.INTER_AREA)


def _pil_rgb(image: Image.Image) -> Image.Image:
    from catalog.imaging import to_rgb

    try:
        image = ImageOps.exif_transpose(image) or image
        return to_rgb(image)
    except (OSError, ValueError) as exc:
        raise SegmentationInputError(f"The image cannot be decoded ({exc}).") from exc


def _array_rgb(array: np.ndarray) -> np.ndarray:
    """Grayscale, RGBA and 16-bit arrays are converted; anything else is refused with the reason."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise SegmentationInputError(f"Expected an HxW or HxWx3 image array, got shape {array.shape}.")
    if array.dtype == np.uint16:
        top = float(array.max()) or 1.0
        array = (array.astype(np.float32) * (255.0 / top)).astype(np.uint8)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise SegmentationInputError("The image array contains NaN or infinite values.")
        top = 1.0 if float(array.max(initial=0)) <= 1.0 else 255.0
        array = np.clip(array * (255.0 / top), 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise SegmentationInputError(f"Unsupported image array dtype {array.dtype}; use uint8 RGB.")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 4:  # alpha onto white, as catalog.imaging does
        alpha = array[..., 3:4].astype(np.float32) / 255.0
        array = (array[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(array)
