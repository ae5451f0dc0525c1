"""Status bookkeeping and row locking shared by the intake services.

Status changes go through ``transition``, which refuses moves not in ``SNAPSHOT_TRANSITIONS`` and
appends the move to ``Snapshot.events``.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from .. import conf
from ..models import Snapshot, SnapshotStatus
from ..queue import snapshot_enqueue
from .errors import TransitionError


def transition(snapshot: Snapshot, target: str, *, by: AbstractBaseUser | None, action: str, **note: Any) -> None:
    """Move ``snapshot`` (locked by the caller) to ``target`` and record it; the caller saves."""
    if not snapshot.can_become(target):
        raise TransitionError(snapshot, target, action)
    event = {"from": snapshot.status, "to": str(target), "at": timezone.now().isoformat(), "action": action}
    if by is not None:
        event["by"] = by.pk
    event.update({key: value for key, value in note.items() if value not in (None, "")})
    snapshot.events = [*snapshot.events, event]
    snapshot.status = target


def save_head(snapshot: Snapshot, *fields: str) -> None:
    """Save ``fields`` of a group head and give its other photos the head's status."""
    snapshot.save(update_fields=[*fields, "status", "events", "updated_at"])
    if snapshot.is_group_head:
        Snapshot.objects.filter(group_head=snapshot).exclude(status=snapshot.status).update(
            status=snapshot.status, updated_at=timezone.now()
        )


def locked(snapshot_id: int) -> Snapshot:
    return Snapshot.objects.select_for_update().get(pk=snapshot_id)


def locked_head(snapshot: Snapshot) -> Snapshot:
    return locked(snapshot.group_head_id or snapshot.pk)


def delete_files_on_commit(names: list[str]) -> None:
    names = [name for name in names if name]
    if names:
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names], robust=True)


def is_stale(snapshot: Snapshot, now: datetime | None = None) -> bool:
    """Waiting for nobody: processing by a worker that died (lease run out), or received but never started."""
    now = now or timezone.now()
    if snapshot.status == SnapshotStatus.PROCESSING:
        return snapshot.lease_expired(now)
    return snapshot.updated_at < now - conf.stale_after()


def requeue(head: Snapshot, *, by: AbstractBaseUser | None, action: str, **note: Any) -> None:
    """Send a locked group head back to the queue (a running match is superseded: see ``store_result``)."""
    if head.status != SnapshotStatus.RECEIVED:
        transition(head, SnapshotStatus.RECEIVED, by=by, action=action, **note)
    head.error = ""
    head.decided_at = None  # a restored (discarded) item is undecided again
    save_head(head, "error", "hints", "decided_at")
    snapshot_enqueue(head.pk)

