"""A real Celery worker process on Redis matches an uploaded photo end to end (no eager mode)."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

import time

import pytest
from django.core.files.storage import default_storage

from tests import celery_worker
from warehouse.celery import app as celery_app
from warehouse.models import Snapshot, SnapshotStatus
from warehouse.settings.env import DATA_DIR

from .test_intake_fixtures import (  # noqa: F401
    SNAPSHOTS_URL,
    api,
    build_catalogue,
    phone_photo,
    worker,
)

REDIS_URL = celery_worker.REDIS_URL  # STOCKMATCH_TEST_REDIS_URL, one Redis database per checkout


@pytest.fixture
def broker(monkeypatch, settings):
    """This process publishes to Redis, and shares its media folder with the worker process."""
    settings.MEDIA_ROOT = DATA_DIR / "media"
    saved = {key: celery_app.conf[key] for key in ("broker_url", "result_backend", "task_always_eager")}
    celery_app.conf.update(broker_url=REDIS_URL, result_backend=REDIS_URL, task_always_eager=False)
    try:
        yield
    finally:
        celery_app.conf.update(saved)
        celery_app.pool.force_close_all()
        celery_app._pool = None


@pytest.mark.celery_worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_an_upload_end_to_end(broker, api, shared_data, tmp_path):
    # given a small embedded catalogue and a worker process on Redis, on this test database
    build_catalogue(shared_data, n=4)
    log = tmp_path / "worker.log"
    snapshot_id = None
    try:
        with celery_worker.running_worker(log):
            # when a photo is uploaded through the API (the task goes through Redis)
            response = upload_photo(api, phone_photo(shared_data, 0))
            assert response.status_code == 202, response.content
            snapshot_id = response.json()["id"]
            # then the worker matches it; the phone would poll like this
            body = poll_until_done(api, snapshot_id, deadline_s=180)
        assert body["status"] == SnapshotStatus.MATCHED, (body["error"], log.read_text()[-3000:])
        assert body["candidates"] and body["cutout_url"]
        assert "warehouse.process_snapshot[" in log.read_text()
        assert Snapshot.objects.get(pk=snapshot_id).attempts == 1
    finally:
        for snapshot in Snapshot.objects.all():
            for field in (snapshot.original, snapshot.preview, snapshot.cutout, snapshot.mask):
                if field:
                    default_storage.delete(field.name)


def upload_photo(client, data: bytes):
    import io

    handle = io.BytesIO(data)
    handle.name = "photo.jpg"
    return client.post(SNAPSHOTS_URL, {"photo": handle}, format="multipart")


def poll_until_done(client, snapshot_id: int, *, deadline_s: float) -> dict:
    """Wait for the worker (a deadline for waiting, not an assertion on speed)."""
    stop = time.monotonic() + deadline_s
    while True:
        body = client.get(f"{SNAPSHOTS_URL}{snapshot_id}/").json()
        if body["status"] not in (SnapshotStatus.RECEIVED, SnapshotStatus.PROCESSING) or time.monotonic() > stop:
            return body
        time.sleep(0.5)
