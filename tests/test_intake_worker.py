"""A real Celery worker process on Redis matches an uploaded photo end to end (no eager mode)."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import pytest
import redis
from django.core.files.storage import default_storage
from PIL import Image

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
    celery_worker.reset_connections(celery_app)
    try:
        yield
    finally:
        celery_app.conf.update(saved)
        celery_worker.reset_connections(celery_app)


@pytest.fixture
def worker_media(broker, db):
    """The broker, and the shared media folder cleaned of this test's photos afterwards (before the database is)."""
    yield
    redis.Redis.from_url(REDIS_URL).delete("unacked", "unacked_index")  # messages of killed workers
    for snapshot in Snapshot.objects.all():
        for field in (snapshot.original, snapshot.preview, snapshot.cutout, snapshot.mask):
            if field:
                default_storage.delete(field.name)


@pytest.mark.celery_worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_processes_an_upload_end_to_end(worker_media, api, shared_data, tmp_path):
    # given a small embedded catalogue and a worker process on Redis, on this test database
    build_catalogue(shared_data, n=4)
    log = tmp_path / "worker.log"
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


@pytest.mark.celery_worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_task_leaves_nothing_stuck(worker_media, api, shared_data, tmp_path):
    # given an item with four 12 MP photos, queued while no worker runs
    snapshot_id = queue_item(api, shared_data, photos=4)
    log = tmp_path / "worker.log"
    # when a worker starts on it and is killed (SIGKILL: no cleanup, message left unacknowledged)
    with celery_worker.running_worker(log, purge=False, wait=False, env=SHORT_LEASE) as (_, process):
        wait_until_processing(snapshot_id, log)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    killed = Snapshot.objects.get(pk=snapshot_id)
    assert killed.status == SnapshotStatus.PROCESSING and killed.attempts == 1, log.read_text()[-3000:]
    # then a new worker takes the dead run over and matches the item
    with celery_worker.running_worker(log, purge=False, env=SHORT_LEASE):
        body = poll_until_done(api, snapshot_id, deadline_s=180)
    assert body["status"] == SnapshotStatus.MATCHED, (body["error"], log.read_text()[-3000:])
    assert body["candidates"] and len(body["group_photos"]) == 3
    snapshot = Snapshot.objects.get(pk=snapshot_id)
    actions = [event["action"] for event in snapshot.events]
    assert snapshot.attempts == 2 and actions.count("matched") == 1
    assert {"lease expired", "stale sweep"} & set(actions)


@pytest.mark.celery_worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_pool_process_is_redelivered_and_takes_over_when_the_lease_ends(worker_media, api, shared_data,
                                                                                 tmp_path):
    # given a prefork worker (the pool process works, the main process supervises) and one queued photo
    snapshot_id = queue_item(api, shared_data, photos=1)
    log = tmp_path / "worker.log"
    with celery_worker.running_worker(log, purge=False, wait=False, pool="prefork", env=SHORT_LEASE) as (_, process):
        wait_until_processing(snapshot_id, log)
        # when the pool process dies mid-task (its lease is still alive for a few seconds)
        for child in children(process.pid):
            os.kill(child, signal.SIGKILL)
        # then the main process gives the message back (reject_on_worker_lost), the redelivered task finds
        # a live-looking claim, looks again once the lease has run out, and takes the item over
        body = poll_until_done(api, snapshot_id, deadline_s=180)
    assert body["status"] == SnapshotStatus.MATCHED, (body["error"], log.read_text()[-3000:])
    snapshot = Snapshot.objects.get(pk=snapshot_id)
    actions = [event["action"] for event in snapshot.events]
    assert snapshot.attempts == 2 and actions[-3:] == ["lease expired", "process", "matched"]
    assert "WorkerLostError" in log.read_text()


SHORT_LEASE = {"STOCKMATCH_SNAPSHOT_LEASE_SECONDS": "6"}


def queue_item(api, shared_data, *, photos: int) -> int:
    """A small embedded catalogue and an item of ``photos`` 12 MP photos, queued in Redis while no worker runs."""
    build_catalogue(shared_data, n=4)
    celery_worker.client_app().control.purge()
    snapshot_id = None
    for index in range(photos):
        url = f"{SNAPSHOTS_URL}{snapshot_id}/photos/" if snapshot_id else SNAPSHOTS_URL
        response = upload_photo(api, phone_sized(phone_photo(shared_data, index)), url=url)
        assert response.status_code == 202, response.content
        snapshot_id = snapshot_id or response.json()["id"]
    return snapshot_id


def wait_until_processing(snapshot_id: int, log: Path) -> None:
    def started() -> bool:
        return Snapshot.objects.get(pk=snapshot_id).status == SnapshotStatus.PROCESSING

    assert wait_for(started, 120), log.read_text()[-3000:]


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


def phone_sized(data: bytes) -> bytes:
    """The photo as a 12 MP phone camera sends it (decoding and cutting it out takes a while)."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    size = (3000, 4000) if image.height >= image.width else (4000, 3000)
    buffer = io.BytesIO()
    image.resize(size).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def wait_for(condition, deadline_s: float) -> bool:
    stop = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > stop:
            return False
        time.sleep(0.05)
    return True


def upload_photo(client, data: bytes, url: str = SNAPSHOTS_URL):
    handle = io.BytesIO(data)
    handle.name = "photo.jpg"
    return client.post(url, {"photo": handle}, format="multipart")


def poll_until_done(client, snapshot_id: int, *, deadline_s: float) -> dict:
    """Wait for the worker (a deadline for waiting, not an assertion on speed)."""
    stop = time.monotonic() + deadline_s
    while True:
        body = client.get(f"{SNAPSHOTS_URL}{snapshot_id}/").json()
        if body["status"] not in (SnapshotStatus.RECEIVED, SnapshotStatus.PROCESSING) or time.monotonic() > stop:
            return body
        time.sleep(0.5)
