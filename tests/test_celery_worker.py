"""A real Celery worker on Redis runs a task end to end against the test database."""
import pytest
from django.conf import settings

from tests.celery_worker import running_worker


@pytest.mark.django_db
def test_tasks_run_in_process_when_no_broker_is_configured():
    from warehouse.celery import ping

    assert settings.CELERY_TASK_ALWAYS_EAGER
    assert ping.delay(41).get(timeout=5)["value"] == 42


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_real_worker_runs_a_task_end_to_end(tmp_path):
    import os

    with running_worker(tmp_path / "worker.log") as (app, process):
        result = app.send_task("stockmatch.ping", args=[41]).get(timeout=60)
    assert result["value"] == 42
    assert result["pid"] == process.pid and result["pid"] != os.getpid()
