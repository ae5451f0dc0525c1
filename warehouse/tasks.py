"""Celery tasks for intake. They take ids, call a service and stay thin.

``process_snapshot`` is safe to run twice or after a worker died mid-task: the service claims the
snapshot under a row lock with a lease it renews while working, returns early when the item is done
or a live run has it, takes over a run whose lease ran out, and a run that was overtaken (new hints,
another photo) throws its result away. ``acks_late`` (project setting) gives a killed worker's message
to another worker; ``sweep_stale_snapshots`` (beat, and each worker when it starts) catches the rest.
"""
from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready

from . import conf, selectors, services
from .queue import PROCESS_SNAPSHOT, SWEEP_STALE_SNAPSHOTS, send


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
    ignore_result=True,  # nobody reads it; a publish then never waits for the result store
    soft_time_limit=conf.soft_time_limit(),
    time_limit=conf.hard_time_limit(),
)
def process_snapshot(self: Task, snapshot_id: int) -> dict:
    snapshot = services.snapshot_process(snapshot_id=snapshot_id)
    if snapshot is None:
        left = selectors.snapshot_lease_left(snapshot_id=snapshot_id)
        if left is not None and (self.request.delivery_info or {}).get("redelivered"):
            # Given back by a worker that died (or by Redis): the run that seems alive may be that dead
            # one, whose lease has not run out yet. Look again when it has; a live run will have renewed it.
            send(PROCESS_SNAPSHOT, snapshot_id, countdown=left + 1)
        return {"snapshot_id": snapshot_id, "skipped": True}
    return {"snapshot_id": snapshot_id, "status": snapshot.status}


@shared_task(name=SWEEP_STALE_SNAPSHOTS, ignore_result=True)
def sweep_stale_snapshots() -> dict:
    """Periodic (Celery beat): queue again snapshots whose run died or whose message was lost."""
    return {"requeued": services.snapshots_requeue_stale()}


@worker_ready.connect
def sweep_when_a_worker_starts(**kwargs: Any) -> None:
    """A (re)started worker takes over what a dead one left: now, and as each claim held now runs out.

    Claims of live workers are renewed meanwhile, so those later sweeps leave them alone.
    """
    send(SWEEP_STALE_SNAPSHOTS)
    for seconds in selectors.snapshot_leases_left():
        send(SWEEP_STALE_SNAPSHOTS, countdown=seconds + 1)
