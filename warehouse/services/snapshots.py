"""Uploads and the worker's actions on a photographed item: add a photo, fix the cut-out, discard, reopen.

Every function owns its transaction; work outside the database (queueing, deleting replaced files)
is scheduled with ``transaction.on_commit`` so it only happens for changes that were kept.
"""
from __future__ import annotations

import re
from typing import Any, BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.imaging import ImageRejected, encode_jpeg, load_image, read_bytes, sha256_of
from catalog.models import Product, ProductStatus

from .. import conf
from ..models import DECIDED_STATUSES, PhotoRole, Snapshot, SnapshotStatus
from ..queue import snapshot_enqueue
from .errors import IntakeError, TransitionError
from .state import locked, locked_head, requeue, save_head, transition

PREVIEW_LONG_SIDE = 1600
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]{8,100}$")
MAX_STROKES = 60
MAX_STROKE_POINTS = 2000
SUFFIX = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "HEIF": ".heic", "HEIC": ".heic",
          "AVIF": ".avif", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif"}


def clean_idempotency_key(key: str | None, *, sha256: str) -> str:
    """The client's key, or one derived from the photo so that sending the same file twice is one upload."""
    key = (key or "").strip()
    if not key:
        return f"sha256:{sha256}"
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise IntakeError(
            "The Idempotency-Key must be 8–100 letters, digits or . _ : - (a UUID is ideal).", code="invalid_key"
        )
    return key


def _existing_upload(*, user: AbstractBaseUser, key: str, sha256: str) -> Snapshot | None:
    existing = Snapshot.objects.filter(uploaded_by=user, idempotency_key=key).first()
    if existing is not None and existing.original_sha256 != sha256:
        raise IntakeError(
            "This Idempotency-Key was already used for a different photo. Use a new key for a new photo.",
            code="key_reused", status_code=409,
        )
    return existing


def snapshot_create(
    *,
    uploaded_by: AbstractBaseUser,
    photo: BinaryIO | bytes,
    idempotency_key: str | None = None,
    group_head: Snapshot | None = None,
    photo_role: str = PhotoRole.FRONT,
) -> tuple[Snapshot, bool]:
    """Store an uploaded photo and queue it for matching. Returns ``(snapshot, created)``.

    The same ``idempotency_key`` (per user) always returns the first snapshot made with it, so a
    phone may resend after a lost response. The photo is validated completely before any file or row
    is written (``ImageRejected`` otherwise), and the original bytes are stored before processing.
    """
    data = read_bytes(photo)
    sha256 = sha256_of(data)
    key = clean_idempotency_key(idempotency_key, sha256=sha256)
    if photo_role not in PhotoRole.values:
        raise IntakeError(f"Unknown photo role {photo_role!r}; use one of {', '.join(PhotoRole.values)}.")
    existing = _existing_upload(user=uploaded_by, key=key, sha256=sha256)
    if existing is not None:
        return existing, False
    if group_head is not None:
        _check_can_add_photo(group_head, uploaded_by)

    # Raises ImageRejected: nothing is written for a bad photo. Decoded at preview size (JPEG draft mode):
    # the full-resolution photo is never held in memory; width/height are the photo's own.
    loaded = load_image(data, max_side=PREVIEW_LONG_SIDE)
    width, height = loaded.size
    check_photo_shape(width=width, height=height)
    preview = loaded.image
    snapshot = Snapshot(
        uploaded_by=uploaded_by, idempotency_key=key, original_sha256=sha256, original_format=loaded.format,
        original_bytes=len(data), width=width, height=height, photo_role=photo_role,
        group_head=(group_head.group_head or group_head) if group_head else None,
    )
    snapshot.original.save(f"photo{SUFFIX.get(loaded.format, '.img')}", ContentFile(data), save=False)
    snapshot.preview.save("preview.jpg", ContentFile(encode_jpeg(preview, quality=85)), save=False)
    try:
        with transaction.atomic():
            snapshot.events = [{"to": SnapshotStatus.RECEIVED, "at": timezone.now().isoformat(), "action": "upload",
                                "by": uploaded_by.pk}]
            snapshot.save()
            head = snapshot
            if snapshot.group_head_id:
                head = locked(snapshot.group_head_id)
                _check_can_add_photo(head, uploaded_by)
                requeue(head, by=uploaded_by, action="add photo", photo=snapshot.pk)
            else:
                snapshot_enqueue(snapshot.pk)
    except Exception as exc:
        # A concurrent request with the same key won the race, or the group changed under us.
        default_storage.delete(snapshot.original.name)
        default_storage.delete(snapshot.preview.name)
        if isinstance(exc, IntegrityError):
            existing = _existing_upload(user=uploaded_by, key=key, sha256=sha256)
            if existing is not None:
                return existing, False
        raise
    if head is not snapshot:
        snapshot.status = head.status
    return snapshot, True


def check_photo_shape(*, width: int, height: int) -> None:
    """Refuse what cannot show a garment (1×1, a 59000×1 strip): it would only fail later, beyond any retry."""
    short, long = sorted((width, height))
    if short < conf.min_image_side():
        raise ImageRejected(
            f"The photo is {width}×{height} pixels: too small to show a garment (at least {conf.min_image_side()} "
            "pixels each way). Take it again.", code="too_small",
        )
    if long > short * conf.max_image_aspect():
        raise ImageRejected(
            f"The photo is {width}×{height} pixels: far too narrow to show a garment. Take it again.",
            code="bad_shape",
        )


def _check_can_add_photo(head: Snapshot, user: AbstractBaseUser) -> None:
    if head.uploaded_by_id != user.pk:
        raise IntakeError("Only the person who took the first photo can add more photos to it.", code="not_yours")
    if head.status in DECIDED_STATUSES:
        label = SnapshotStatus(head.status).label.lower()
        raise IntakeError(f"This item is already {label}; take a new photo instead.", code="invalid_state")


def snapshot_add_photo(
    *, snapshot: Snapshot, uploaded_by: AbstractBaseUser, photo: BinaryIO | bytes,
    idempotency_key: str | None = None, photo_role: str = PhotoRole.BACK,
) -> tuple[Snapshot, bool]:
    """Add another photo (back, label) of the same item; the item is matched again with all its photos."""
    return snapshot_create(
        uploaded_by=uploaded_by, photo=photo, idempotency_key=idempotency_key,
        group_head=snapshot.group_head or snapshot, photo_role=photo_role,
    )



def clean_hints(hints: dict, *, width: int, height: int) -> dict:
    """Validate and clamp segmentation hints to the photo: ``rect`` and ``fg``/``bg`` polylines."""
    if not isinstance(hints, dict):
        raise IntakeError("Hints must be an object with rect, fg or bg.", code="invalid_hints")
    unknown = set(hints) - {"rect", "fg", "bg"}
    if unknown:
        raise IntakeError(f"Unknown hints: {', '.join(sorted(unknown))}.", code="invalid_hints")

    def point(value: Any) -> list[int]:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise IntakeError("A point is [x, y].", code="invalid_hints")
        try:
            x, y = (round(float(v)) for v in value)
        except (TypeError, ValueError) as exc:
            raise IntakeError("Point coordinates must be numbers.", code="invalid_hints") from exc
        return [min(max(x, 0), width - 1), min(max(y, 0), height - 1)]

    cleaned: dict[str, Any] = {}
    rect = hints.get("rect")
    if rect:
        if not isinstance(rect, list | tuple) or len(rect) != 4:
            raise IntakeError("The rectangle is [x0, y0, x1, y1].", code="invalid_hints")
        (x0, y0), (x1, y1) = point(rect[:2]), point(rect[2:])
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        if x1 - x0 < 8 or y1 - y0 < 8:
            raise IntakeError("The rectangle is too small: draw it around the whole garment.", code="invalid_hints")
        cleaned["rect"] = [x0, y0, x1, y1]
    for name in ("fg", "bg"):
        strokes = hints.get(name) or []
        if not isinstance(strokes, list) or len(strokes) > MAX_STROKES:
            raise IntakeError(f"'{name}' is a list of at most {MAX_STROKES} strokes.", code="invalid_hints")
        lines = []
        for stroke in strokes:
            if not isinstance(stroke, list) or not stroke or len(stroke) > MAX_STROKE_POINTS:
                raise IntakeError(f"Each stroke is a list of 1–{MAX_STROKE_POINTS} points.", code="invalid_hints")
            lines.append([point(p) for p in stroke])
        if lines:
            cleaned[name] = lines
    if not cleaned:
        raise IntakeError("Draw a rectangle around the garment or mark what to keep and remove.", code="invalid_hints")
    return cleaned


def snapshot_fix(*, snapshot: Snapshot, user: AbstractBaseUser, hints: dict) -> Snapshot:
    """Segment and match again with the worker's rectangle or strokes (in upright photo pixels)."""
    with transaction.atomic():
        head = locked_head(snapshot)
        head.hints = clean_hints(hints, width=head.width, height=head.height)
        if head.status in DECIDED_STATUSES:
            raise TransitionError(head, SnapshotStatus.RECEIVED, "fix the cut-out")
        requeue(head, by=user, action="fix", hints=",".join(sorted(head.hints)))
        return head


def snapshot_discard(*, snapshot: Snapshot, user: AbstractBaseUser) -> Snapshot:
    with transaction.atomic():
        head = locked_head(snapshot)
        transition(head, SnapshotStatus.DISCARDED, by=user, action="discard")
        head.decided_at = timezone.now()
        save_head(head, "decided_at")
        return head


def snapshot_reopen(*, snapshot: Snapshot, user: AbstractBaseUser) -> Snapshot:
    """Take back "not in catalogue" (the untouched draft is retired) or restore a discarded photo."""
    with transaction.atomic():
        head = locked_head(snapshot)
        if head.status == SnapshotStatus.DISCARDED:
            requeue(head, by=user, action="restore")
            return head
        if head.status != SnapshotStatus.NEW:
            raise TransitionError(head, SnapshotStatus.MATCHED, "reopen")
        if head.arrivals.filter(undone_at__isnull=True).exists():
            raise IntakeError("Undo the arrival booked on the draft product first.", code="has_arrivals")
        draft = head.product
        transition(head, SnapshotStatus.MATCHED, by=user, action="reopen", product=draft.pk if draft else None)
        head.product = None
        head.decided_at = None
        save_head(head, "product", "decided_at")
        if draft is not None and draft.status == ProductStatus.DRAFT:
            Product.objects.filter(pk=draft.pk).update(status=ProductStatus.RETIRED, updated_at=timezone.now())
        return head

