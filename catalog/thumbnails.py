"""Small cached renditions of photos for admin pages: made once, then served as plain image files.

A list of 50 products would otherwise make the browser fetch 50 full studio photos (often megabytes
each). A rendition is keyed by the source's content (checksum or unique file name) and its size, so it
never goes stale and is never made twice.
"""
from __future__ import annotations

import hashlib
import logging
import re

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from PIL import Image, ImageOps

from .imaging import encode_jpeg

logger = logging.getLogger(__name__)

# Renditions are made at twice the displayed size (sharp on high-density screens).
SIZES = (48, 64, 96, 160, 320)
_CATALOGUE_THUMB = re.compile(r"^thumbs/\d+/[0-9a-f]{2}/([0-9a-f]{64})\.jpg$")


def thumbnail_source_sha256(name: str) -> str | None:
    """The SHA-256 of the catalogue photo a rendition under ``thumbs/`` was made from (None for other files).

    A media server gives a rendition the access of the ``ProductImage`` with that checksum: public for
    catalogue photos, staff only for snapshot-derived ones.
    """
    match = _CATALOGUE_THUMB.match(name)
    return match.group(1) if match else None


def _rendition_size(size: int) -> int:
    for known in SIZES:
        if size <= known:
            return known * 2
    return SIZES[-1] * 2


def thumbnail_name(*, source: FieldFile, size: int, key: str = "", prefix: str = "thumbs") -> str:
    key = key or hashlib.sha256(source.name.encode()).hexdigest()
    return f"{prefix}/{_rendition_size(size)}/{key[:2]}/{key}.jpg"


def thumbnail_make(*, source: FieldFile, size: int, key: str = "", prefix: str = "thumbs") -> str | None:
    """The storage name of ``source``'s rendition for ``size`` px, made now if missing; None if unreadable."""
    name = thumbnail_name(source=source, size=size, key=key, prefix=prefix)
    if default_storage.exists(name):
        return name
    side = _rendition_size(size)
    try:
        with source.open("rb") as handle, Image.open(handle) as image:
            image.draft("RGB", (side, side))  # JPEG: decode at reduced size
            image = ImageOps.exif_transpose(image)
            image.thumbnail((side, side))
            data = encode_jpeg(image, quality=82)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        logger.warning("No thumbnail for %s: %s", source.name, exc)
        return None
    if default_storage.exists(name):  # made meanwhile by another request
        return name
    return default_storage.save(name, ContentFile(data))


def thumbnail_url(*, source: FieldFile, size: int, key: str = "") -> str:
    """A URL of a small rendition of ``source`` (public catalogue media only; snapshots go through views)."""
    if not source:
        return ""
    name = thumbnail_make(source=source, size=size, key=key)
    return default_storage.url(name) if name else ""
