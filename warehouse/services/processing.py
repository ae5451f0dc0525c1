"""Processing: claim a snapshot, segment and match it, store the result or the failure; the stale sweep
and the retry button.

``snapshot_process`` is safe to call any number of times: it claims the item under a row lock and a
run only stores its result while it still owns the claim (``processing_started_at`` is the run's id),
and keeps the claim alive with a lease it renews while it works, so a dead worker's item is taken over
within ``STOCKMATCH_SNAPSHOT_LEASE_SECONDS`` (by a redelivered task, the sweep or the retry button).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from catalog.imaging import ImageRejected, LoadedImage, encode_jpeg, encode_png, load_image
from matching.conf import working_size as match_working_size
from matching.services import match_image

from .. import conf
from ..models import Snapshot, SnapshotStatus
from ..queue import snapshot_enqueue
from .errors import TRANSIENT_ERRORS, IntakeError, TransitionError
from .state import (
    delete_files_on_commit,
    is_stale,
    locked,
    locked_head,
    requeue,
    save_head,
    transition,
)

logger = logging.getLogger(__name__)


def snapshot_process(*, snapshot_id: int) -> Snapshot | None:
    """Segment and match a snapshot's item (all its photos). Safe to call any number of times.

    Returns the snapshot, or ``None`` when there was nothing to do (already done, being processed
    elsewhere, gone). Transient errors (``TRANSIENT_ERRORS``) put the snapshot back to ``received``
    and propagate, so the task retries; anything else marks it ``failed`` with a readable error.
    """
    claimed = claim(snapshot_id)
    if claimed is None:
        return None
    head, run = claimed
    started = time.perf_counter()
    try:
        with LeaseKeeper(snapshot_id=head.pk, run=run):
            photos = [head, *head.group_photos.order_by("created_at", "id")]
            images = [open_original(photo) for photo in photos]
            loaded_ms = (time.perf_counter() - started) * 1000
            result = match_image(images, hints=head.hints or None, k=conf.match_k())
            return store_result(head_id=head.pk, run=run, photos=photos, result=result, load_ms=loaded_ms,
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
    if isinstance(exc, SoftTimeLimitExceeded):
        return "Matching took too long and was stopped. Retry, or fix the cut-out to help it."
    if isinstance(exc, ImageRejected):
        return exc.reason
    return f"{type(exc).__name__}: {exc}"


def claim(snapshot_id: int) -> tuple[Snapshot, datetime] | None:
    """Take the item for one run: a compare-and-set under the row lock.

    Free to take: ``received``, or ``processing`` whose lease ran out (its worker died). The run is
    known by its start time, which later writes must still match, and holds a lease that
    ``LeaseKeeper`` renews while it works.
    """
    with transaction.atomic():
        snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            return None
        head = locked_head(snapshot)
        now = timezone.now()
        if head.status == SnapshotStatus.PROCESSING and not head.lease_expired(now):
            return None  # another worker has it and is alive
        if head.status not in (SnapshotStatus.RECEIVED, SnapshotStatus.PROCESSING):
            return None  # done, failed (retry is explicit) or decided
        if head.status == SnapshotStatus.PROCESSING:
            transition(head, SnapshotStatus.RECEIVED, by=None, action="lease expired", run=head.attempts)
        if head.attempts >= conf.max_attempts():
            transition(head, SnapshotStatus.FAILED, by=None, action="give up")
            head.error = f"Gave up after {head.attempts} attempts. Press retry to try once more."
            head.lease_expires_at = None
            save_head(head, "error", "lease_expires_at")
            return None
        transition(head, SnapshotStatus.PROCESSING, by=None, action="process")
        head.attempts += 1
        head.processing_started_at = now
        head.lease_expires_at = now + conf.lease_duration()
        head.error = ""
        save_head(head, "attempts", "processing_started_at", "lease_expires_at", "error")
        return head, head.processing_started_at


def lease_renew(*, snapshot_id: int, run: datetime) -> bool:
    """Extend run ``run``'s claim. False when the run lost it, or the row is locked right now (try later)."""
    with transaction.atomic():
        owned = (
            Snapshot.objects.select_for_update(skip_locked=True)
            .filter(pk=snapshot_id, status=SnapshotStatus.PROCESSING, processing_started_at=run)
            .values_list("pk", flat=True)
            .first()
        )
        if owned is None:
            return False
        Snapshot.objects.filter(pk=owned).update(lease_expires_at=timezone.now() + conf.lease_duration())
        return True


class LeaseKeeper:
    """Renews a run's lease from a background thread while the run works (a heartbeat).

    When the process dies, the renewals stop and the lease runs out within ``STOCKMATCH_SNAPSHOT_LEASE_SECONDS``:
    the next claim (a redelivered task, the sweep, the retry button) takes the item over.
    """

    def __init__(self, *, snapshot_id: int, run: datetime) -> None:
        self.snapshot_id, self.run = snapshot_id, run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{snapshot_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = conf.lease_duration().total_seconds() / 3
        try:
            while not self._stop.wait(interval):
                try:
                    lease_renew(snapshot_id=self.snapshot_id, run=self.run)
                except TRANSIENT_ERRORS:
                    logger.warning("Could not renew the lease of snapshot %s", self.snapshot_id)
        finally:
            connection.close()  # this thread's own database connection


def open_original(snapshot: Snapshot) -> LoadedImage:
    """The photo decoded at matching's working size; hints stay in the full photo's coordinates."""
    with snapshot.original.open("rb") as handle:
        return load_image(handle.read(), limit_bytes=max(snapshot.original_bytes, 1), max_side=match_working_size())


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


def store_result(*, head_id: int, run: datetime, photos: list[Snapshot], result: Any, load_ms: float,
                  started: float) -> Snapshot | None:
    store_started = time.perf_counter()
    versions: dict[int, str] = {}
    files: dict[int, dict[str, str]] = {}
    for photo, cut in zip(photos, result.cutouts or [], strict=False):
        photo.cutout.save("cutout.jpg", ContentFile(encode_jpeg(cut.cutout, quality=88)), save=False)
        photo.mask.save("mask.png", ContentFile(encode_png(cut.mask)), save=False)
        files[photo.pk] = {"cutout": photo.cutout.name, "mask": photo.mask.name}
        versions[photo.pk] = (cut.model_version or "")[:120]  # the segmenter version that made this mask
    new_files = [name for entry in files.values() for name in entry.values()]
    candidates = [_json_safe(_as_dict(candidate)) for candidate in result.candidates]
    for rank, candidate in enumerate(candidates, start=1):
        candidate["rank"] = rank
    with transaction.atomic():
        head = locked(head_id)
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
        head.lease_expires_at = None
        head.error = ""
        top = candidates[0] if candidates else {}
        transition(head, SnapshotStatus.MATCHED, by=None, action="matched", sku=top.get("sku"), run=head.attempts)
        save_head(head, "candidates", "decision", "timings", "model_version", "processed_at", "lease_expires_at",
                  "error")
        delete_files_on_commit([name for name in replaced if name not in new_files])
    return head


def snapshot_fail(*, snapshot_id: int, error: str, run: datetime | None = None) -> Snapshot | None:
    """Mark a snapshot failed with ``error``, unless a newer run has taken it over (``run`` given)."""
    with transaction.atomic():
        snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            return None
        head = locked_head(snapshot)
        if run is not None and head.processing_started_at != run:
            return None
        if not head.can_become(SnapshotStatus.FAILED):
            return head
        transition(head, SnapshotStatus.FAILED, by=None, action="fail")
        head.error = error[:2000]
        head.lease_expires_at = None
        save_head(head, "error", "lease_expires_at")
        return head


def _release(*, head_id: int, run: datetime, error: str) -> None:
    """After a transient error: back to ``received`` so that the retry (or the sweep) can claim it."""
    try:
        with transaction.atomic():
            head = locked(head_id)
            if head.status == SnapshotStatus.PROCESSING and head.processing_started_at == run:
                transition(head, SnapshotStatus.RECEIVED, by=None, action="transient error")
                head.error = error[:2000]
                head.lease_expires_at = None
                save_head(head, "error", "lease_expires_at")
    except TRANSIENT_ERRORS:
        logger.warning("Could not release snapshot %s; the stale sweep will pick it up", head_id)


def snapshots_requeue_stale(*, now: datetime | None = None, limit: int | None = None) -> list[int]:
    """Queue again what a dead worker or an unreachable broker left behind. Returns the snapshot ids.

    ``processing`` whose lease ran out (the worker died mid-run), and ``received`` for longer than
    ``STOCKMATCH_SNAPSHOT_STALE_MINUTES`` (the message never arrived). Oldest first, at most ``limit``.
    """
    now = now or timezone.now()
    stale = Snapshot.objects.filter(group_head__isnull=True).filter(
        Q(status=SnapshotStatus.PROCESSING) & (Q(lease_expires_at__lte=now) | Q(lease_expires_at__isnull=True))
        | Q(status=SnapshotStatus.RECEIVED, updated_at__lt=now - conf.stale_after())
    ).order_by("updated_at")
    requeued = []
    for snapshot_id in stale.values_list("pk", flat=True)[:limit]:
        with transaction.atomic():
            head = locked(snapshot_id)
            if head.lease_expired(now):
                transition(head, SnapshotStatus.RECEIVED, by=None, action="stale sweep", run=head.attempts)
                head.lease_expires_at = None
                save_head(head, "lease_expires_at")
            elif head.status == SnapshotStatus.RECEIVED and is_stale(head, now):
                head.save(update_fields=["updated_at"])  # the next sweep waits a full period again
            else:
                continue
            snapshot_enqueue(head.pk)
            requeued.append(head.pk)
    return requeued


SWEEP_CACHE_KEY = "warehouse:snapshot-sweep"


def snapshots_sweep_if_due(*, limit: int = 3) -> list[int]:
    """The sweep, at most once per ``STOCKMATCH_SNAPSHOT_SWEEP_SECONDS`` across processes sharing the cache.

    Called by the intake pages and API reads, so that in-process mode (no worker, no beat) recovers
    an item whose web process died mid-run on the next request after its lease ran out. ``limit``
    keeps such a request short (in-process, the items are matched right here).
    """
    if not cache.add(SWEEP_CACHE_KEY, True, timeout=conf.sweep_interval()):
        return []
    return snapshots_requeue_stale(limit=limit)


def snapshot_retry(*, snapshot: Snapshot, user: AbstractBaseUser) -> Snapshot:
    """Queue a failed snapshot again, or one whose processing got stuck."""
    with transaction.atomic():
        head = locked_head(snapshot)
        if head.status == SnapshotStatus.PROCESSING and not head.lease_expired(timezone.now()):
            raise IntakeError("This photo is being matched right now; give it a moment.", code="busy",
                              status_code=409)
        if head.status not in (SnapshotStatus.FAILED, SnapshotStatus.RECEIVED, SnapshotStatus.PROCESSING):
            raise TransitionError(head, SnapshotStatus.RECEIVED, "retry")
        if head.status == SnapshotStatus.FAILED:
            head.attempts = 0  # a person asked: give it the full number of attempts again
            head.save(update_fields=["attempts"])
        requeue(head, by=user, action="retry")
        return head

