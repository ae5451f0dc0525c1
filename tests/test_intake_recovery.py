"""Crash recovery: a run holds a lease it renews while working; a dead run's item is taken over, never run twice."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from warehouse.models import Snapshot, SnapshotStatus
from warehouse.services import processing
from warehouse.tasks import process_snapshot

from .test_intake_fixtures import (  # noqa: F401
    SNAPSHOTS_URL,
    api,
    make_worker,
    phone_photo,
    run_at_once,
    upload,
    worker,
)


@pytest.fixture
def received(upload, shared_data) -> Snapshot:
    """An uploaded photo waiting for processing (in transactional tests the upload ran it: undo that)."""
    snapshot_id = upload(phone_photo(shared_data, 0), process=False).json()["id"]
    Snapshot.objects.filter(pk=snapshot_id).update(status=SnapshotStatus.RECEIVED, attempts=0)
    return Snapshot.objects.get(pk=snapshot_id)


def died_mid_run(snapshot: Snapshot, *, lease_left_s: float = -1.0) -> None:
    """As a worker that claimed the item and was killed leaves it: processing, renewals stopped."""
    now = timezone.now()
    Snapshot.objects.filter(pk=snapshot.pk).update(
        status=SnapshotStatus.PROCESSING, processing_started_at=now - timedelta(seconds=40),
        lease_expires_at=now + timedelta(seconds=lease_left_s), attempts=1,
    )


@pytest.mark.django_db
def test_a_redelivered_task_takes_over_a_dead_run(received):
    died_mid_run(received)
    assert process_snapshot.delay(received.pk).get()["status"] == SnapshotStatus.MATCHED
    received.refresh_from_db()
    assert received.attempts == 2 and received.lease_expires_at is None
    assert [e["action"] for e in received.events][-3:] == ["lease expired", "process", "matched"]


@pytest.mark.django_db
def test_the_retry_button_breaks_a_dead_claim(api, received, django_capture_on_commit_callbacks):
    died_mid_run(received)
    body = api.get(f"{SNAPSHOTS_URL}{received.pk}/").json()
    assert body["actions"]["retry"]
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"{SNAPSHOTS_URL}{received.pk}/retry/").status_code == 202
    received.refresh_from_db()
    assert received.status == SnapshotStatus.MATCHED and received.attempts == 2


@pytest.mark.django_db
def test_in_process_mode_recovers_a_dead_run_on_the_next_request(api, received, django_capture_on_commit_callbacks):
    # given the web process died while matching the photo in-process, and a new one started
    died_mid_run(received)
    cache.delete(processing.SWEEP_CACHE_KEY)
    # when the phone polls the item
    with django_capture_on_commit_callbacks(execute=True):
        assert api.get(f"{SNAPSHOTS_URL}{received.pk}/").status_code == 200
    # then the dead run was taken over and the item matched
    received.refresh_from_db()
    assert received.status == SnapshotStatus.MATCHED
    assert "stale sweep" in [e["action"] for e in received.events]
    # and the next requests do not sweep again within the interval
    died_mid_run(received)
    assert processing.snapshots_sweep_if_due() == []


@pytest.mark.django_db(transaction=True)
def test_a_live_run_keeps_its_lease_and_a_lost_run_cannot(settings, received):
    settings.STOCKMATCH_SNAPSHOT_LEASE_SECONDS = 30
    head, run = processing.claim(received.pk)
    Snapshot.objects.filter(pk=head.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=1))
    # the running worker renews its lease
    assert processing.lease_renew(snapshot_id=head.pk, run=run)
    head.refresh_from_db()
    assert head.lease_expires_at > timezone.now() + timedelta(seconds=25)
    # a run that was taken over cannot renew (or store) anything any more
    Snapshot.objects.filter(pk=head.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    new_head, new_run = processing.claim(received.pk)
    assert new_run != run
    assert not processing.lease_renew(snapshot_id=head.pk, run=run)
    assert processing.snapshot_fail(snapshot_id=head.pk, run=run, error="old run") is None
    assert Snapshot.objects.get(pk=head.pk).status == SnapshotStatus.PROCESSING


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_the_lease_while_the_run_works(settings, received):
    settings.STOCKMATCH_SNAPSHOT_LEASE_SECONDS = 3  # beats every second
    head, run = processing.claim(received.pk)
    first = Snapshot.objects.get(pk=head.pk).lease_expires_at
    renewed = threading.Event()

    def watch() -> None:
        for _ in range(100):
            if Snapshot.objects.get(pk=head.pk).lease_expires_at > first:
                renewed.set()
                break
            renewed.wait(0.1)
        connection.close()

    with processing.LeaseKeeper(snapshot_id=head.pk, run=run):
        watcher = threading.Thread(target=watch)
        watcher.start()
        watcher.join()
    assert renewed.is_set()


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_a_dead_run_have_one_winner(received):
    died_mid_run(received)
    claims = run_at_once(lambda: processing.claim(received.pk), 6)
    wins = [claimed for claimed in claims if claimed is not None]
    assert len(wins) == 1
    received.refresh_from_db()
    assert received.status == SnapshotStatus.PROCESSING and received.attempts == 2
    assert [e["action"] for e in received.events][-2:] == ["lease expired", "process"]
