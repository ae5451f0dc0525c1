"""Training examples from people's corrections: ``SegmentationExample`` rows that ``train_segmenter`` reads.

Two ways in: an intake item whose cut-out a worker fixed (hints) and then confirmed
(``segmentation_example_from_snapshot``, called after the confirmation commits), and any other caller with a
corrected mask, such as the review queue (``segmentation_example_create``). One example per origin: a second
correction of the same item replaces the first.
"""

from __future__ import annotations

import hashlib
import io
import logging

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image

from .classes import GARMENT_KINDS
from .models import ExampleSource, SegmentationExample

log = logging.getLogger(__name__)
STORE_LONG_SIDE = 768  # training reads examples at 224 px; this keeps room for larger working sizes


class ExampleError(ValueError):
    """A mask or photo that cannot be a training example, with the reason."""


def segmentation_example_create(
    *, image: Image.Image, mask: np.ndarray | Image.Image, source: str = ExampleSource.CORRECTION, kind: str = "",
    origin: str = "",
) -> SegmentationExample:
    """Store a photo and its corrected garment mask (255 = garment) as a training example.

    ``image``: the photo (any mode); ``mask``: HxW at the photo's size or any size of the same aspect (resized
    to the photo), bool, 0/1 or 0/255; ``kind``: the garment kind when known (topwear, bottomwear, full-body,
    footwear; anything else is stored as unknown); ``origin``: a key like ``snapshot:42`` (one example each).
    The split (train/val) follows a stable hash of the origin, or of the pixels when there is none."""
    if source not in ExampleSource.values:
        raise ExampleError(f"Unknown example source {source!r}; valid: {', '.join(ExampleSource.values)}")
    photo = _rgb(image)
    binary = _binary_mask(mask, photo.size)
    if not binary.any():
        raise ExampleError("The mask marks no garment.")
    if binary.all():
        raise ExampleError("The mask marks the whole photo: nothing tells the garment from the background.")
    scale = min(1.0, STORE_LONG_SIDE / max(photo.size))
    if scale < 1.0:
        size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
        photo = photo.resize(size, Image.Resampling.LANCZOS)
        binary = np.asarray(Image.fromarray(binary.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0
    from .data import split_of  # OpenCV: loaded only when an example is written

    key = origin or "pixels:" + hashlib.sha1(np.packbits(binary).tobytes()).hexdigest()[:16]
    image_file = ContentFile(_encode(photo, "JPEG", quality=92), name="photo.jpg")
    mask_file = ContentFile(_encode(Image.fromarray(binary.astype(np.uint8) * 255), "PNG"), name="mask.png")
    with transaction.atomic():
        example = SegmentationExample.objects.select_for_update().filter(origin=origin).first() if origin else None
        old_files = [example.image.name, example.mask.name] if example is not None else []
        example = example or SegmentationExample(origin=origin)
        example.source = source
        example.kind = kind if kind in GARMENT_KINDS else ""
        example.split = split_of(f"example:{key}")
        example.image.save(image_file.name, image_file, save=False)
        example.mask.save(mask_file.name, mask_file, save=False)
        example.save()
        if old_files:
            storage = example.image.storage
            transaction.on_commit(lambda: [storage.delete(name) for name in old_files if name], robust=True)
    return example


def segmentation_example_from_snapshot(*, snapshot_id: int) -> SegmentationExample | None:
    """A confirmed intake item whose cut-out a worker fixed becomes a training example (its final mask, the
    confirmed product's kind). Items nobody fixed are skipped: an unchecked automatic mask would only teach the
    network its own mistakes. Never raises: it runs after the confirmation has committed."""
    from warehouse.models import Snapshot, SnapshotStatus

    snapshot = Snapshot.objects.select_related("product__category").filter(pk=snapshot_id).first()
    if snapshot is None or snapshot.status != SnapshotStatus.CONFIRMED or not snapshot.hints or not snapshot.mask:
        return None
    category = getattr(snapshot.product, "category", None)
    try:
        with snapshot.original.open("rb") as fh:
            from catalog.imaging import load_image

            photo = load_image(fh.read()).image
        with snapshot.mask.open("rb") as fh:
            mask = np.asarray(Image.open(fh).convert("L")) >= 128
        return segmentation_example_create(
            image=photo,
            mask=mask,
            source=ExampleSource.CORRECTION,
            kind=getattr(category, "kind", "") or "",
            origin=f"snapshot:{snapshot.pk}",
        )
    except (OSError, ValueError) as exc:
        log.warning("snapshot %s: correction not kept as a training example: %s", snapshot_id, exc)
        return None


def _rgb(image: Image.Image) -> Image.Image:
    from catalog.imaging import to_rgb

    if not isinstance(image, Image.Image):
        raise ExampleError(f"Expected a PIL image, got {type(image).__name__}.")
    return to_rgb(image)


def _binary_mask(mask: np.ndarray | Image.Image, size: tuple[int, int]) -> np.ndarray:
    array = np.asarray(mask.convert("L")) if isinstance(mask, Image.Image) else np.asarray(mask)
    if array.ndim != 2:
        raise ExampleError(f"The mask must be one channel (HxW), got shape {array.shape}.")
    binary = array > (0 if array.dtype == np.bool_ or array.max(initial=0) <= 1 else 127)
    width, height = size
    if binary.shape != (height, width):
        if abs(binary.shape[1] / binary.shape[0] - width / height) > 0.02:
            raise ExampleError(
                f"The mask ({binary.shape[1]}x{binary.shape[0]}) does not fit the {width}x{height} photo."
            )
        binary = np.asarray(Image.fromarray(binary.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0
    return binary


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
