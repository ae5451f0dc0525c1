"""The one place that decodes uploaded and imported photos.

Every photo entering Stockmatch passes ``load_image``: it refuses what is not an image, is truncated,
too large in bytes or pixels (decompression bombs), and returns an upright RGB ``PIL.Image`` whatever
the source (EXIF rotation, HEIC, CMYK, 16-bit, palette, alpha).

Memory: with ``max_side`` the photo is decoded at reduced size. A JPEG is decoded at 1/2, 1/4 or 1/8
scale by libjpeg itself (draft mode), so a 12 MP phone photo never exists at full resolution in memory;
other formats are decoded whole, then reduced (``Image.reduce`` through ``thumbnail``) before any mode
conversion, so the full-resolution RGB copy is never made. The pixel cap (``STOCKMATCH_MAX_IMAGE_PIXELS``,
25 MP) is checked from the header, before decoding: phones send 12 MP (the phone page sends 2,000 px);
a 48-200 MP "high resolution" mode photo or a 56 MP PNG is refused with a reason (docs/intake.md).
"""
from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from django.conf import settings
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

try:
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - pillow-heif is in requirements
    HEIF_SUPPORTED = False

ImageFile.LOAD_TRUNCATED_IMAGES = False
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "HEIF", "HEIC", "AVIF", "TIFF", "BMP", "GIF", "MPO"}


class ImageRejected(ValueError):
    """A photo that cannot be used, with a reason a person can act on."""

    def __init__(self, reason: str, code: str = "invalid_image") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


# Modes Pillow can shrink directly; others (palette, 1-bit, 16-bit) are converted first.
_REDUCIBLE_MODES = {"RGB", "RGBA", "RGBX", "L", "LA", "CMYK", "YCbCr", "I", "F"}


@dataclass(frozen=True)
class LoadedImage:
    image: Image.Image  # upright RGB, at most ``max_side`` on its long side when that was asked for
    format: str
    sha256: str
    original_size: tuple[int, int]  # as stored in the file (before EXIF rotation)
    size: tuple[int, int]  # upright, full resolution: what coordinates on the photo (hints) refer to

    @property
    def scale(self) -> float:
        """``image``'s size over the photo's full size (1.0 when decoded whole)."""
        return self.image.width / self.size[0]


def max_pixels() -> int:
    return int(getattr(settings, "STOCKMATCH_MAX_IMAGE_PIXELS", 25_000_000))


def max_bytes() -> int:
    return int(getattr(settings, "STOCKMATCH_MAX_UPLOAD_BYTES", 25 * 1024 * 1024))


def read_bytes(source: BinaryIO | bytes, *, limit: int | None = None) -> bytes:
    """Read a whole upload, refusing it once it passes ``limit`` bytes (without reading further)."""
    limit = max_bytes() if limit is None else limit
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
    else:
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass
        data = source.read(limit + 1)
    if len(data) > limit:
        raise ImageRejected(
            f"The photo is larger than {limit // (1024 * 1024)} MB. Take it again at a lower resolution.",
            code="too_large",
        )
    if not data:
        raise ImageRejected("The file is empty.", code="empty")
    return data


def load_image(
    source: BinaryIO | bytes, *, limit_bytes: int | None = None, max_side: int | None = None
) -> LoadedImage:
    """Validate and decode a photo; with ``max_side``, decoded no larger than that on its long side."""
    data = read_bytes(source, limit=limit_bytes)
    pixel_limit = max_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            fmt = (probe.format or "").upper()
            width, height = probe.size
            if width * height > pixel_limit:
                raise ImageRejected(
                    f"The photo has {width}x{height} pixels, more than the limit of {pixel_limit:,}.",
                    code="too_many_pixels",
                )
            probe.verify()  # structural check; the object is unusable afterwards
            image = Image.open(io.BytesIO(data))
            orientation = image.getexif().get(0x0112, 1)
            if max_side and max(image.size) > max_side:
                factor = max_side / max(image.size)
                # JPEG: libjpeg decodes at the smallest 1/2-1/8 scale still at least the target size.
                image.draft(None, (math.ceil(image.width * factor), math.ceil(image.height * factor)))
                if image.mode not in _REDUCIBLE_MODES:
                    image.load()
                    image = to_rgb(image)
                image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"The photo is too large to decode safely ({exc}).", code="too_many_pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected(
            "This file is not a photo Stockmatch can read (JPEG, PNG, WebP or HEIC).", code="not_an_image"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"The photo is damaged or incomplete ({exc}). Take it again.", code="corrupt") from exc
    if fmt not in ACCEPTED_FORMATS:
        raise ImageRejected(f"Photos in {fmt or 'this'} format are not accepted.", code="unsupported_format")
    upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    image = ImageOps.exif_transpose(image)
    return LoadedImage(
        image=to_rgb(image), format=fmt, sha256=sha256_of(data), original_size=(width, height), size=upright
    )


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode (CMYK, 16-bit, palette, alpha, grayscale) to 8-bit RGB; alpha goes onto white."""
    if image.mode == "RGB":
        return image
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        image = Image.fromarray((array * (255.0 / top)).clip(0, 255).astype(np.uint8), mode="L")
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def encode_jpeg(image: Image.Image | np.ndarray, quality: int = 90) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    to_rgb(image).save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def encode_png(image: Image.Image | np.ndarray) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
