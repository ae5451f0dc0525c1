"""Celery tasks for intake. They take ids, call a service and stay thin.

``process_snapshot`` is safe to run twice or after a worker died mid-task: the service claims the
snapshot under a row lock, returns early when it is done or being worked on, and a run that was
overtaken (new hints, another photo) throws its result away. ``acks_late`` (project setting) gives a
killed worker's message to another worker; ``sweep_stale_snapshots`` catches the rest.
"""
from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from . import conf, services
from .queue import PROCESS_SNAPSHOT


class SnapshotTask(Task):
    """Marks the snapshot failed, with the error, once the retries for transient errors are spent."""

    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        snapshot_id = kwargs.get("snapshot_id", args[0] if args else None)
        if snapshot_id is None:
            return
        try:
            services.snapshot_fail(snapshot_id=snapshot_id, error=f"Could not process the photo: {exc}")
        except services.TRANSIENT_ERRORS:
            pass  # the database is away too; the stale sweep picks the snapshot up later


@shared_task(
    bind=True,
    base=SnapshotTask,
    name=PROCESS_SNAPSHOT,
    autoretry_for=services.TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=4,
    acks_late=True,
    soft_time_limit=conf.soft_time_limit(),
    time_limit=conf.hard_time_limit(),
)
def process_snapshot(self: Task, snapshot_id: int) -> dict:
    snapshot = services.snapshot_process(snapshot_id=snapshot_id)
    if snapshot is None:
        return {"snapshot_id": snapshot_id, "skipped": True}
    return {"snapshot_id": snapshot_id, "status": snapshot.status}


@shared_task(name="warehouse.sweep_stale_snapshots")
def sweep_stale_snapshots() -> dict:
    """Periodic (Celery beat): queue again snapshots left ``received`` or ``processing`` for too long."""
    return {"requeued": services.snapshots_requeue_stale()}
