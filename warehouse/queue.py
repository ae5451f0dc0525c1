"""The one place that sends intake work to Celery.

Services call these; they never import ``warehouse.tasks`` (the tasks import the services). Tasks are
looked up by name in the Celery app's registry, where ``WarehouseConfig.ready`` registers them, so
in-process (eager) mode runs them right here and a broker gets a message.
"""
from __future__ import annotations

from django.db import transaction

from .celery import app

PROCESS_SNAPSHOT = "warehouse.process_snapshot"
SWEEP_STALE_SNAPSHOTS = "warehouse.sweep_stale_snapshots"


def snapshot_enqueue(snapshot_id: int) -> None:
    """Queue processing once the current transaction commits.

    ``robust``: when the broker is unreachable the snapshot simply stays ``received`` and the stale
    sweep (or the worker's retry button) queues it again; the upload itself is never lost.
    """
    transaction.on_commit(lambda: send(PROCESS_SNAPSHOT, snapshot_id), robust=True)


def send(task_name: str, *args: object, countdown: float | None = None) -> None:
    """Publish once, without retrying: a request never waits for a broker that is down.

    The caller's state already says what is left to do (a ``received`` photo), and the sweep sends it
    again later. Our tasks ignore results, so no result backend is contacted either.
    """
    app.tasks[task_name].apply_async(args=args, countdown=countdown, retry=False)
