"""The one place that sends intake work to Celery.

Services call these; they never import ``warehouse.tasks`` (the tasks import the services). Tasks are
looked up by name in the Celery app's registry, where ``WarehouseConfig.ready`` registers them, so
in-process (eager) mode runs them right here and a broker gets a message.
"""
from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)

PROCESS_SNAPSHOT = "warehouse.process_snapshot"


def snapshot_enqueue(snapshot_id: int) -> None:
    """Queue processing once the current transaction commits.

    ``robust``: when the broker is unreachable the snapshot simply stays ``received`` and the stale
    sweep (or the worker's retry button) queues it again; the upload itself is never lost.
    """
    transaction.on_commit(lambda: current_app.tasks[PROCESS_SNAPSHOT].delay(snapshot_id), robust=True)
