"""Writes for warehouse intake: snapshots, their processing and the arrivals they become.

Every function here owns its transaction; work outside the database (Celery, deleting replaced
files) is scheduled with ``transaction.on_commit`` so it only happens for changes that were kept.
Status changes go through ``_transition``, which refuses moves not in ``SNAPSHOT_TRANSITIONS`` and
appends the move to ``Snapshot.events``.
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from collections import Counter
from dataclasses import asdict, is_dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from catalog.imaging import ImageRejected, encode_jpeg, encode_png, load_image, read_bytes, sha256_of
from catalog.models import Category, ImageRole, Product, ProductStatus, Variant
from catalog.services import (
    category_for_text,
    category_get_or_create,
    gender_for_text,
    product_create,
    product_image_add,
    variant_adjust_stock,
)
from segmentation.examples import segmentation_example_from_snapshot

from .models import (
    DECIDED_STATUSES,
    Arrival,
    PhotoRole,
    Snapshot,
    SnapshotStatus,
)

logger = logging.getLogger(__name__)

# Errors worth another try later: storage or network hiccups, a database that went away.
# A missing original is not one of them (handled before these are re-raised).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, OperationalError, InterfaceError)

PREVIEW_LONG_SIDE = 1600
IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_.:\-]{8,100}$")
MAX_STROKES = 60
MAX_STROKE_POINTS = 2000
BROWSER_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}
_SUFFIX = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "HEIF": ".heic", "HEIC": ".heic",
           "AVIF": ".avif", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif"}


class IntakeError(Exception):
    """A request the worker can act on; ``message`` is shown to them as is."""

    status_code = 400

    def __init__(self, message: str, code: str = "invalid", status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        if status_code is not None:
            self.status_code = status_code


class TransitionError(IntakeError):
    """The snapshot is not in a state that allows this (usually: someone or something got there first)."""

    status_code = 409

    def __init__(self, snapshot: Snapshot, target: str, action: str) -> None:
        label = SnapshotStatus(snapshot.status).label.lower()
        super().__init__(f"Cannot {action}: this photo is {label}.", code="invalid_state")
        self.target = target


# --- settings ---------------------------------------------------------------------------------------------


def undo_window() -> timedelta:
    return timedelta(minutes=float(getattr(settings, "STOCKMATCH_ARRIVAL_UNDO_MINUTES", 10)))


def stale_after() -> timedelta:
    return timedelta(minutes=float(getattr(settings, "STOCKMATCH_SNAPSHOT_STALE_MINUTES", 15)))


def max_attempts() -> int:
    return int(getattr(settings, "STOCKMATCH_SNAPSHOT_MAX_ATTEMPTS", 5))


def max_arrival_quantity() -> int:
    return int(getattr(settings, "STOCKMATCH_ARRIVAL_MAX_QUANTITY", 10_000))


def match_k() -> int:
    return int(getattr(settings, "STOCKMATCH_INTAKE_CANDIDATES", 10))


# --- status bookkeeping -----------------------------------------------------------------------------------


def _transition(snapshot: Snapshot, target: str, *, by: AbstractBaseUser | None, action: str, **note: Any) -> None:
    """Move ``snapshot`` (locked by the caller) to ``target`` and record it; the caller saves."""
    if not snapshot.can_become(target):
        raise TransitionError(snapshot, target, action)
    event = {"from": snapshot.status, "to": str(target), "at": timezone.now().isoformat(), "action": action}
    if by is not None:
        event["by"] = by.pk
    event.update({key: value for key, value in note.items() if value not in (None, "")})
    snapshot.events = [*snapshot.events, event]
    snapshot.status = target


def _save(snapshot: Snapshot, *fields: str) -> None:
    """Save ``fields`` of a group head and give its other photos the head's status."""
    snapshot.save(update_fields=[*fields, "status", "events", "updated_at"])
    if snapshot.is_group_head:
        Snapshot.objects.filter(group_head=snapshot).exclude(status=snapshot.status).update(
            status=snapshot.status, updated_at=timezone.now()
        )


def _locked(snapshot_id: int) -> Snapshot:
    return Snapshot.objects.select_for_update().get(pk=snapshot_id)


def _locked_head(snapshot: Snapshot) -> Snapshot:
    return _locked(snapshot.group_head_id or snapshot.pk)


def _enqueue(snapshot_id: int) -> None:
    """Queue processing once the current transaction commits.

    ``robust``: when the broker is unreachable the snapshot simply stays ``received`` and the stale
    sweep (or the worker's retry button) queues it again; the upload itself is never lost.
    """
    from .tasks import process_snapshot

    transaction.on_commit(lambda: process_snapshot.delay(snapshot_id), robust=True)


def _delete_files_on_commit(names: list[str]) -> None:
    names = [name for name in names if name]
    if names:
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names], robust=True)


def is_stale(snapshot: Snapshot, now=None) -> bool:
    now = now or timezone.now()
    since = snapshot.processing_started_at if snapshot.status == SnapshotStatus.PROCESSING else snapshot.updated_at
    return since is None or since < now - stale_after()


# --- uploads ----------------------------------------------------------------------------------------------


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

    loaded = load_image(data)  # raises ImageRejected: nothing is written for a bad photo
    width, height = loaded.image.size
    preview = loaded.image.copy()
    preview.thumbnail((PREVIEW_LONG_SIDE, PREVIEW_LONG_SIDE))
    snapshot = Snapshot(
        uploaded_by=uploaded_by, idempotency_key=key, original_sha256=sha256, original_format=loaded.format,
        original_bytes=len(data), width=width, height=height, photo_role=photo_role,
        group_head=(group_head.group_head or group_head) if group_head else None,
    )
    snapshot.original.save(f"photo{_SUFFIX.get(loaded.format, '.img')}", ContentFile(data), save=False)
    snapshot.preview.save("preview.jpg", ContentFile(encode_jpeg(preview, quality=85)), save=False)
    try:
        with transaction.atomic():
            snapshot.events = [{"to": SnapshotStatus.RECEIVED, "at": timezone.now().isoformat(), "action": "upload",
                                "by": uploaded_by.pk}]
            snapshot.save()
            head = snapshot
            if snapshot.group_head_id:
                head = _locked(snapshot.group_head_id)
                _check_can_add_photo(head, uploaded_by)
                _requeue(head, by=uploaded_by, action="add photo", photo=snapshot.pk)
            else:
                _enqueue(snapshot.pk)
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


def _requeue(head: Snapshot, *, by: AbstractBaseUser | None, action: str, **note: Any) -> None:
    """Send a locked group head back to the queue (a running match is superseded: see ``_store_result``)."""
    if head.status != SnapshotStatus.RECEIVED:
        _transition(head, SnapshotStatus.RECEIVED, by=by, action=action, **note)
    head.error = ""
    head.decided_at = None  # a restored (discarded) item is undecided again
    _save(head, "error", "hints", "decided_at")
    _enqueue(head.pk)


# --- processing -------------------------------------------------------------------------------------------


def snapshot_process(*, snapshot_id: int) -> Snapshot | None:
    """Segment and match a snapshot's item (all its photos). Safe to call any number of times.

    Returns the snapshot, or ``None`` when there was nothing to do (already done, being processed
    elsewhere, gone). Transient errors (``TRANSIENT_ERRORS``) put the snapshot back to ``received``
    and propagate, so the task retries; anything else marks it ``failed`` with a readable error.
    """
    claimed = _claim(snapshot_id)
    if claimed is None:
        return None
    head, run = claimed
    started = time.perf_counter()
    try:
        from matching.services import match_image

        photos = [head, *head.group_photos.order_by("created_at", "id")]
        images = [_open_original(photo) for photo in photos]
        loaded_ms = (time.perf_counter() - started) * 1000
        result = match_image(images, hints=head.hints or None, k=match_k())
        return _store_result(head_id=head.pk, run=run, photos=photos, result=result, load_ms=loaded_ms,
                             started=started)
    except FileNotFoundError as exc:
        return snapshot_fail(snapshot_id=head.pk, run=run, error=f"The original photo is missing from storage ({exc}).")
    except TRANSIENT_ERRORS as exc:
        _release(head_id=head.pk, run=run, error=f"Temporary problem, trying again: {exc}")
        raise
    except Exception as exc:  # noqa: BLE001 - the worker sees the error and can retry or fix it
        logger.exception("Snapshot %s failed", head.pk)
        return snapshot_fail(snapshot_id=head.pk, run=run, error=_describe(exc))


def _describe(exc: BaseException) -> str:
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        return "Matching took too long and was stopped. Retry, or fix the cut-out to help it."
    if isinstance(exc, ImportError):
        return f"Matching is not available on this server yet ({exc})."
    if isinstance(exc, ImageRejected):
        return exc.reason
    return f"{type(exc).__name__}: {exc}"


def _claim(snapshot_id: int) -> tuple[Snapshot, datetime] | None:
    """Take the item for one run. The run is known by its start time, which later writes must still match."""
    with transaction.atomic():
        snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            return None
        head = _locked_head(snapshot)
        if head.status == SnapshotStatus.PROCESSING and not is_stale(head):
            return None  # another worker has it
        if head.status not in (SnapshotStatus.RECEIVED, SnapshotStatus.PROCESSING):
            return None  # done, failed (retry is explicit) or decided
        if head.status == SnapshotStatus.PROCESSING:  # a stale run, its worker died
            _transition(head, SnapshotStatus.RECEIVED, by=None, action="stale run")
        if head.attempts >= max_attempts():
            _transition(head, SnapshotStatus.FAILED, by=None, action="give up")
            head.error = f"Gave up after {head.attempts} attempts. Press retry to try once more."
            _save(head, "error")
            return None
        _transition(head, SnapshotStatus.PROCESSING, by=None, action="process")
        head.attempts += 1
        head.processing_started_at = timezone.now()
        head.error = ""
        _save(head, "attempts", "processing_started_at", "error")
        return head, head.processing_started_at


def _open_original(snapshot: Snapshot):
    with snapshot.original.open("rb") as handle:
        return load_image(handle.read(), limit_bytes=max(snapshot.original_bytes, 1)).image


def _as_dict(value: Any) -> dict:
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, dict):
        return dict(value)
    return dict(vars(value))


def _json_safe(value: Any) -> Any:
    """Round floats and turn numpy scalars and tuples into plain JSON values."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float):
        return round(value, 4)
    return value


def _store_result(*, head_id: int, run: datetime, photos: list[Snapshot], result: Any, load_ms: float,
                  started: float) -> Snapshot | None:
    store_started = time.perf_counter()
    files: dict[int, dict[str, str]] = {}
    versions: dict[int, str] = {}  # the segmenter version that made each mask
    for photo, cut in zip(photos, result.cutouts or [], strict=False):
        photo.cutout.save("cutout.jpg", ContentFile(encode_jpeg(cut.cutout, quality=88)), save=False)
        photo.mask.save("mask.png", ContentFile(encode_png(cut.mask)), save=False)
        files[photo.pk] = {"cutout": photo.cutout.name, "mask": photo.mask.name}
        versions[photo.pk] = (cut.model_version or "")[:120]
    new_files = [name for entry in files.values() for name in entry.values()]
    candidates = [_json_safe(_as_dict(candidate)) for candidate in result.candidates]
    for rank, candidate in enumerate(candidates, start=1):
        candidate["rank"] = rank
    with transaction.atomic():
        head = _locked(head_id)
        if head.status != SnapshotStatus.PROCESSING or head.processing_started_at != run:
            # New hints or photos arrived while this ran: a newer run owns the snapshot now.
            transaction.on_commit(lambda: [default_storage.delete(name) for name in new_files], robust=True)
            return None
        now = timezone.now()
        replaced: list[str] = []
        for photo in Snapshot.objects.select_for_update().filter(pk__in=files):
            replaced += [photo.cutout.name, photo.mask.name]
            photo.cutout.name, photo.mask.name = files[photo.pk]["cutout"], files[photo.pk]["mask"]
            photo.processed_at = now
            photo.segmenter_version = versions.get(photo.pk, "")
            photo.save(update_fields=["cutout", "mask", "processed_at", "segmenter_version", "updated_at"])
            if photo.pk == head.pk:
                head.cutout.name, head.mask.name = photo.cutout.name, photo.mask.name
        timings = {**_json_safe(dict(result.timings or {})), "load_ms": round(load_ms, 1)}
        timings["queue_ms"] = round((head.processing_started_at - head.created_at).total_seconds() * 1000, 1)
        timings["store_ms"] = round((time.perf_counter() - store_started) * 1000, 1)
        timings["run_ms"] = round((time.perf_counter() - started) * 1000, 1)
        if "upload_to_candidates_ms" not in head.timings:
            timings["upload_to_candidates_ms"] = round((now - head.created_at).total_seconds() * 1000, 1)
        else:
            timings["upload_to_candidates_ms"] = head.timings["upload_to_candidates_ms"]
        head.candidates = candidates
        head.decision = _json_safe(_as_dict(result.decision))
        head.timings = timings
        head.model_version = str(getattr(result, "model_version", "") or "")[:100]
        head.processed_at = now
        head.error = ""
        top = candidates[0] if candidates else {}
        _transition(head, SnapshotStatus.MATCHED, by=None, action="matched", sku=top.get("sku"), run=head.attempts)
        _save(head, "candidates", "decision", "timings", "model_version", "processed_at", "error")
        _delete_files_on_commit([name for name in replaced if name not in new_files])
    return head


def snapshot_fail(*, snapshot_id: int, error: str, run: datetime | None = None) -> Snapshot | None:
    """Mark a snapshot failed with ``error``, unless a newer run has taken it over (``run`` given)."""
    with transaction.atomic():
        snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            return None
        head = _locked_head(snapshot)
        if run is not None and head.processing_started_at != run:
            return None
        if not head.can_become(SnapshotStatus.FAILED):
            return head
        _transition(head, SnapshotStatus.FAILED, by=None, action="fail")
        head.error = error[:2000]
        _save(head, "error")
        return head


def _release(*, head_id: int, run: datetime, error: str) -> None:
    """After a transient error: back to ``received`` so that the retry (or the sweep) can claim it."""
    try:
        with transaction.atomic():
            head = _locked(head_id)
            if head.status == SnapshotStatus.PROCESSING and head.processing_started_at == run:
                _transition(head, SnapshotStatus.RECEIVED, by=None, action="transient error")
                head.error = error[:2000]
                _save(head, "error")
    except TRANSIENT_ERRORS:
        logger.warning("Could not release snapshot %s; the stale sweep will pick it up", head_id)


def snapshots_requeue_stale(*, now=None) -> list[int]:
    """Queue again what a dead worker or an unreachable broker left behind. Returns the snapshot ids."""
    now = now or timezone.now()
    cutoff = now - stale_after()
    stale = Snapshot.objects.filter(group_head__isnull=True).filter(
        Q(status=SnapshotStatus.PROCESSING, processing_started_at__lt=cutoff)
        | Q(status=SnapshotStatus.RECEIVED, updated_at__lt=cutoff)
    )
    requeued = []
    for snapshot_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            head = _locked(snapshot_id)
            if head.status == SnapshotStatus.PROCESSING and is_stale(head, now):
                _transition(head, SnapshotStatus.RECEIVED, by=None, action="stale sweep")
                _save(head)
            elif head.status == SnapshotStatus.RECEIVED and is_stale(head, now):
                head.save(update_fields=["updated_at"])  # the next sweep waits a full period again
            else:
                continue
            _enqueue(head.pk)
            requeued.append(head.pk)
    return requeued


# --- worker actions ---------------------------------------------------------------------------------------


def snapshot_retry(*, snapshot: Snapshot, user: AbstractBaseUser) -> Snapshot:
    """Queue a failed snapshot again, or one whose processing got stuck."""
    with transaction.atomic():
        head = _locked_head(snapshot)
        if head.status == SnapshotStatus.PROCESSING and not is_stale(head):
            raise IntakeError("This photo is being matched right now; give it a moment.", code="busy")
        if head.status not in (SnapshotStatus.FAILED, SnapshotStatus.RECEIVED, SnapshotStatus.PROCESSING):
            raise TransitionError(head, SnapshotStatus.RECEIVED, "retry")
        if head.status == SnapshotStatus.FAILED:
            head.attempts = 0  # a person asked: give it the full number of attempts again
            head.save(update_fields=["attempts"])
        _requeue(head, by=user, action="retry")
        return head


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
        head = _locked_head(snapshot)
        head.hints = clean_hints(hints, width=head.width, height=head.height)
        if head.status in DECIDED_STATUSES:
            raise TransitionError(head, SnapshotStatus.RECEIVED, "fix the cut-out")
        _requeue(head, by=user, action="fix", hints=",".join(sorted(head.hints)))
        return head


def snapshot_discard(*, snapshot: Snapshot, user: AbstractBaseUser) -> Snapshot:
    with transaction.atomic():
        head = _locked_head(snapshot)
        _transition(head, SnapshotStatus.DISCARDED, by=user, action="discard")
        head.decided_at = timezone.now()
        _save(head, "decided_at")
        return head


def snapshot_reopen(*, snapshot: Snapshot, user: AbstractBaseUser) -> Snapshot:
    """Take back "not in catalogue" (the untouched draft is retired) or restore a discarded photo."""
    with transaction.atomic():
        head = _locked_head(snapshot)
        if head.status == SnapshotStatus.DISCARDED:
            _requeue(head, by=user, action="restore")
            return head
        if head.status != SnapshotStatus.NEW:
            raise TransitionError(head, SnapshotStatus.MATCHED, "reopen")
        if head.arrivals.filter(undone_at__isnull=True).exists():
            raise IntakeError("Undo the arrival booked on the draft product first.", code="has_arrivals")
        draft = head.product
        _transition(head, SnapshotStatus.MATCHED, by=user, action="reopen", product=draft.pk if draft else None)
        head.product = None
        head.decided_at = None
        _save(head, "product", "decided_at")
        if draft is not None and draft.status == ProductStatus.DRAFT:
            Product.objects.filter(pk=draft.pk).update(status=ProductStatus.RETIRED, updated_at=timezone.now())
        return head


# --- arrivals ---------------------------------------------------------------------------------------------


def clean_size(size: str) -> str:
    size = " ".join((size or "").split()).upper()
    if not size:
        raise IntakeError("Choose a size.", code="size_required")
    if len(size) > 20:
        raise IntakeError("A size has at most 20 characters.", code="invalid_size")
    return size


def clean_bin(bin_location: str) -> str:
    value = " ".join((bin_location or "").split()).upper()
    if len(value) > 50:
        raise IntakeError("A bin name has at most 50 characters.", code="invalid_bin")
    return value


def _usable_product(product: Product) -> Product:
    if product.status == ProductStatus.MERGED and product.merged_into_id:
        product = product.merged_into
    if product.status not in (ProductStatus.ACTIVE, ProductStatus.DRAFT):
        state = product.get_status_display().lower()
        raise IntakeError(f"{product.sku} is {state}; pick another.", code="product_gone")
    return product


def _variant_for(*, product: Product, size: str) -> Variant:
    size = clean_size(size)
    variant = Variant.objects.filter(product=product, size__iexact=size).first()
    if variant is not None:
        return variant
    try:
        with transaction.atomic():
            return Variant.objects.create(product=product, size=size, stock_quantity=0)
    except IntegrityError:
        return Variant.objects.get(product=product, size=size)


def _arrival_create(*, variant: Variant, quantity: int, bin_location: str, user: AbstractBaseUser,
                    snapshot: Snapshot | None, idempotency_key: str = "") -> Arrival:
    if not isinstance(quantity, int) or quantity < 1:
        raise IntakeError("The quantity must be at least 1.", code="invalid_quantity")
    if quantity > max_arrival_quantity():
        raise IntakeError(f"At most {max_arrival_quantity()} pieces in one arrival.", code="invalid_quantity")
    arrival = Arrival.objects.create(
        variant=variant, quantity=quantity, bin_location=clean_bin(bin_location), user=user, snapshot=snapshot,
        idempotency_key=idempotency_key,
    )
    variant_adjust_stock(variant_id=variant.pk, delta=quantity)
    return arrival


def snapshot_confirm(
    *, snapshot: Snapshot, user: AbstractBaseUser, quantity: int, variant: Variant | None = None,
    product: Product | None = None, size: str = "", bin_location: str = "", idempotency_key: str = "",
) -> Arrival:
    """Book ``quantity`` pieces of the confirmed product (``variant``, or ``product`` + ``size``) as arrived.

    The snapshot keeps the product as its confirmed match. Confirming again adds another size of the
    same item; a different product needs the earlier arrivals undone first. A resent request with the
    same ``idempotency_key`` returns the first arrival instead of booking the pieces twice.
    """
    if variant is None and product is None:
        raise IntakeError("Pick the product and size.", code="product_required")
    key = (idempotency_key or "").strip()
    if key and not IDEMPOTENCY_KEY_RE.match(key):
        raise IntakeError("The idempotency key must be 8–100 letters, digits or . _ : -.", code="invalid_key")
    try:
        return _confirm(snapshot=snapshot, user=user, quantity=quantity, variant=variant, product=product,
                        size=size, bin_location=bin_location, key=key)
    except IntegrityError:
        existing = _existing_arrival(user=user, key=key, snapshot=snapshot)
        if existing is None:
            raise
        return existing


def _existing_arrival(*, user: AbstractBaseUser, key: str, snapshot: Snapshot) -> Arrival | None:
    if not key:
        return None
    existing = Arrival.objects.filter(user=user, idempotency_key=key).first()
    if existing is not None and existing.snapshot_id != (snapshot.group_head_id or snapshot.pk):
        raise IntakeError("This idempotency key was already used for another item.", code="key_reused", status_code=409)
    return existing


def _confirm(*, snapshot: Snapshot, user: AbstractBaseUser, quantity: int, variant: Variant | None,
             product: Product | None, size: str, bin_location: str, key: str) -> Arrival:
    existing = _existing_arrival(user=user, key=key, snapshot=snapshot)
    if existing is not None:
        return existing
    with transaction.atomic():
        head = _locked_head(snapshot)
        if head.uploaded_by_id != user.pk and not user.is_superuser:
            raise IntakeError("Only the person who took the photo can confirm it.", code="not_yours")
        if variant is not None:
            variant = Variant.objects.select_related("product").get(pk=variant.pk)
            chosen = _usable_product(variant.product)
            if chosen.pk != variant.product_id:
                variant = _variant_for(product=chosen, size=variant.size)
        else:
            chosen = _usable_product(product)
            variant = _variant_for(product=chosen, size=size)
        if head.status == SnapshotStatus.CONFIRMED and head.product_id != chosen.pk:
            raise IntakeError(
                f"This item is already confirmed as {head.product.sku}. Undo that arrival to choose another product.",
                code="already_confirmed",
            )
        rank = next((c.get("rank") for c in head.candidates if c.get("product_id") == chosen.pk), None)
        _transition(head, SnapshotStatus.CONFIRMED, by=user, action="confirm", product=chosen.pk, rank=rank,
                    size=variant.size, quantity=quantity)
        head.product = chosen
        head.decided_at = timezone.now()
        _save(head, "product", "decided_at")
        transaction.on_commit(partial(segmentation_example_from_snapshot, snapshot_id=head.pk), robust=True)
        return _arrival_create(variant=variant, quantity=quantity, bin_location=bin_location, user=user,
                               snapshot=head, idempotency_key=key)


def arrival_undo(*, arrival: Arrival, user: AbstractBaseUser) -> Arrival:
    """Take back an arrival within the undo window (its author only), restoring the stock exactly."""
    with transaction.atomic():
        arrival = Arrival.objects.select_for_update().select_related("variant__product").get(pk=arrival.pk)
        if arrival.user_id != user.pk:
            raise IntakeError("Only the person who booked this arrival can undo it.", code="not_yours")
        if arrival.undone_at is not None:
            raise IntakeError("This arrival was already undone.", code="already_undone")
        if timezone.now() - arrival.created_at > undo_window():
            minutes = int(undo_window().total_seconds() // 60)
            raise IntakeError(
                f"Arrivals can be undone for {minutes} minutes only. Ask the stock team to correct it.",
                code="undo_expired",
            )
        try:
            variant_adjust_stock(variant_id=arrival.variant_id, delta=-arrival.quantity)
        except IntegrityError as exc:
            raise IntakeError(
                f"Cannot undo: some of these {arrival.variant} pieces already left the stock.", code="stock_moved"
            ) from exc
        arrival.undone_at = timezone.now()
        arrival.save(update_fields=["undone_at"])
        if arrival.snapshot_id:
            head = _locked(arrival.snapshot_id)
            still_booked = head.arrivals.filter(undone_at__isnull=True).exists()
            if head.status == SnapshotStatus.CONFIRMED and not still_booked:
                _transition(head, SnapshotStatus.MATCHED, by=user, action="undo arrival", arrival=arrival.pk)
                head.product = None
                head.decided_at = None
                _save(head, "product", "decided_at")
        return arrival


# --- not in the catalogue ---------------------------------------------------------------------------------


def draft_sku(now=None) -> str:
    return f"NEW-{(now or timezone.localdate()):%Y%m%d}-{secrets.token_hex(2).upper()}"


def guess_category_and_gender(candidates: list[dict], *, top: int = 5) -> tuple[Category | None, str | None]:
    """The most common category and gender among the top candidates (ties go to the better ranked)."""
    ids = [c["product_id"] for c in candidates[:top] if c.get("product_id")]
    rows = {row["pk"]: row for row in Product.objects.filter(pk__in=ids).values("pk", "category_id", "gender")}
    ranked = [rows[i] for i in ids if i in rows]
    if not ranked:
        return None, None
    category_id = Counter(row["category_id"] for row in ranked).most_common(1)[0][0]
    gender = Counter(row["gender"] for row in ranked).most_common(1)[0][0]
    return Category.objects.get(pk=category_id), gender


def _catalogue_bytes(snapshot: Snapshot) -> tuple[bytes, str]:
    """The photo for the catalogue team: the original when browsers show it, else an upright JPEG."""
    with snapshot.original.open("rb") as handle:
        data = handle.read()
    if snapshot.original_format in BROWSER_FORMATS:
        return data, f"snapshot-{snapshot.pk}{_SUFFIX[snapshot.original_format]}"
    return encode_jpeg(load_image(data).image, quality=92), f"snapshot-{snapshot.pk}.jpg"


def snapshot_mark_new(
    *, snapshot: Snapshot, user: AbstractBaseUser, name: str = "", category: str = "", gender: str = "",
    size: str = "", quantity: int | None = None, bin_location: str = "",
) -> Product:
    """"Not in catalogue": a draft product for the catalogue team, made from the item's photos.

    Category and gender are the worker's words when given, else the majority of the top candidates.
    With a ``quantity`` (and ``size``) the pieces are booked as arrived on the draft at once.
    """
    with transaction.atomic():
        head = _locked_head(snapshot)
        if head.uploaded_by_id != user.pk and not user.is_superuser:
            raise IntakeError("Only the person who took the photo can decide about it.", code="not_yours")
        if not head.can_become(SnapshotStatus.NEW):
            raise TransitionError(head, SnapshotStatus.NEW, "mark as not in catalogue")
        guessed_category, guessed_gender = guess_category_and_gender(head.candidates)
        chosen_category = category_for_text(category) if category else None
        if category and chosen_category is None:
            raise IntakeError(f"Unknown category {category!r}.", code="invalid_category")
        chosen_category = chosen_category or guessed_category or category_get_or_create(
            name="Unsorted intake", kind="topwear", parent_name=None
        )
        chosen_gender = (gender_for_text(gender) if gender else None) or guessed_gender or "unisex"
        today = timezone.localdate()
        name = name.strip()[:200] or f"New {chosen_category.name} (intake #{head.pk})"
        for _ in range(20):
            try:
                with transaction.atomic():
                    product = product_create(
                        sku=draft_sku(today), name=name,
                        category=chosen_category, gender=chosen_gender, status=ProductStatus.DRAFT,
                    )
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - 20 collisions among 65,536 codes a day
            raise IntakeError("Could not find a free draft SKU; try again.", code="sku_exhausted")
        for photo in [head, *head.group_photos.order_by("created_at", "id")]:
            data, filename = _catalogue_bytes(photo)
            product_image_add(product=product, data=data, filename=filename, role=ImageRole.SNAPSHOT)
        _transition(head, SnapshotStatus.NEW, by=user, action="mark new", product=product.pk, sku=product.sku)
        head.product = product
        head.decided_at = timezone.now()
        _save(head, "product", "decided_at")
        if quantity:
            variant = _variant_for(product=product, size=size or "ONE SIZE")
            _arrival_create(variant=variant, quantity=quantity, bin_location=bin_location, user=user, snapshot=head)
        return product
