"""Processing is idempotent, survives dead workers and transient errors, and never loses an upload."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import Retry
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from warehouse import conf, services
from warehouse.models import Snapshot, SnapshotStatus
from warehouse.services import processing
from warehouse.tasks import process_snapshot, sweep_stale_snapshots

from .test_intake_fixtures import (  # noqa: F401
    SNAPSHOTS_URL,
    api,
    phone_photo,
    upload,
    worker,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def received(upload, shared_data) -> Snapshot:
    """An uploaded photo whose processing has not run (as if the broker was down at upload time)."""
    return Snapshot.objects.get(pk=upload(phone_photo(shared_data, 0), process=False).json()["id"])


def test_processing_twice_does_the_work_once(received):
    assert process_snapshot.delay(received.pk).get()["status"] == SnapshotStatus.MATCHED
    assert process_snapshot.delay(received.pk).get() == {"snapshot_id": received.pk, "skipped": True}
    received.refresh_from_db()
    assert received.status == SnapshotStatus.MATCHED and received.attempts == 1
    assert received.cutout and received.mask and received.timings["total"] > 0


def test_a_snapshot_being_processed_is_left_alone_while_its_lease_lives(
    api, received, django_capture_on_commit_callbacks
):
    # given a worker started on it a minute ago and renewed its lease a moment ago
    now = timezone.now()
    Snapshot.objects.filter(pk=received.pk).update(
        status=SnapshotStatus.PROCESSING, processing_started_at=now - timedelta(minutes=1),
        lease_expires_at=now + timedelta(seconds=20), attempts=1,
    )
    # then a redelivered task, the sweep and the retry button leave it alone
    assert process_snapshot.delay(received.pk).get()["skipped"]
    assert sweep_stale_snapshots.delay().get() == {"requeued": []}
    response = api.post(f"{SNAPSHOTS_URL}{received.pk}/retry/")
    assert response.status_code == 409 and response.json()["code"] == "busy"
    # when its worker died and stopped renewing the lease
    Snapshot.objects.filter(pk=received.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        requeued = sweep_stale_snapshots.delay().get()
    # then the sweep queues it again and it is matched
    assert requeued == {"requeued": [received.pk]}
    received.refresh_from_db()
    assert received.status == SnapshotStatus.MATCHED and received.attempts == 2
    assert [e["action"] for e in received.events][-3:] == ["stale sweep", "process", "matched"]
    assert received.lease_expires_at is None


def test_an_upload_whose_task_was_never_queued_is_picked_up_by_the_sweep(received, django_capture_on_commit_callbacks):
    Snapshot.objects.filter(pk=received.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.snapshots_requeue_stale() == [received.pk]
    received.refresh_from_db()
    assert received.status == SnapshotStatus.MATCHED


def test_a_snapshot_that_keeps_killing_workers_is_given_up_with_a_message(received, settings):
    settings.STOCKMATCH_SNAPSHOT_MAX_ATTEMPTS = 3
    Snapshot.objects.filter(pk=received.pk).update(
        status=SnapshotStatus.PROCESSING, processing_started_at=timezone.now() - timedelta(hours=1), attempts=3
    )
    assert process_snapshot.delay(received.pk).get()["skipped"]
    received.refresh_from_db()
    assert received.status == SnapshotStatus.FAILED and "Gave up after 3 attempts" in received.error


def test_a_transient_storage_error_is_retried_then_left_failed_and_retryable(
    api, received, shared_data, django_capture_on_commit_callbacks
):
    # given storage that cannot read the original (an OSError that is not "file not found")
    path = Path(default_storage.path(received.original.name))
    path.unlink()
    path.mkdir()
    # when the task runs, it asks Celery to try again later and leaves the snapshot queued
    with pytest.raises(Retry):
        process_snapshot.delay(received.pk)
    received.refresh_from_db()
    assert received.status == SnapshotStatus.RECEIVED and "Temporary problem" in received.error
    # when the last retry fails too (run as a worker would: the error is recorded, not raised)
    result = process_snapshot.apply(args=[received.pk], retries=process_snapshot.max_retries, throw=False)
    assert isinstance(result.result, IsADirectoryError)
    # then the snapshot is failed, says why, and is not lost
    received.refresh_from_db()
    assert received.status == SnapshotStatus.FAILED
    assert "Is a directory" in received.error and received.attempts == 2
    actions = [e["action"] for e in received.events]
    assert actions.count("transient error") == 2 and actions[-1] == "fail"
    # when storage is healthy again, one tap on retry matches it
    path.rmdir()
    path.write_bytes(phone_photo(shared_data, 0))
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"{SNAPSHOTS_URL}{received.pk}/retry/").status_code == 202
    received.refresh_from_db()
    assert received.status == SnapshotStatus.MATCHED


def test_status_changes_follow_the_allowed_transitions(api, received):
    # a photo that is not matched yet cannot be booked or marked new
    assert api.post(f"{SNAPSHOTS_URL}{received.pk}/new/").status_code == 409
    services.snapshot_discard(snapshot=received, user=received.uploaded_by)
    with pytest.raises(services.TransitionError):
        services.snapshot_discard(snapshot=received, user=received.uploaded_by)
    received.refresh_from_db()
    assert [(e.get("from"), e["to"]) for e in received.events] == [(None, "received"), ("received", "discarded")]


def test_settings_have_safe_defaults():
    assert conf.undo_window() == timedelta(minutes=getattr(settings, "STOCKMATCH_ARRIVAL_UNDO_MINUTES", 10))
    assert process_snapshot.soft_time_limit < process_snapshot.time_limit
    assert process_snapshot.acks_late


def test_a_run_overtaken_by_new_hints_throws_its_result_away(api, received, django_capture_on_commit_callbacks):
    from matching.services import match_image

    # given a run that started, then the worker drew a rectangle while it was matching
    head, run = processing.claim(received.pk)
    result = match_image([processing.open_original(head)], k=3)
    services.snapshot_fix(snapshot=head, user=head.uploaded_by, hints={"rect": [0, 0, 100, 100]})
    # when the old run tries to store its result, it is refused
    stored = processing.store_result(head_id=head.pk, run=run, photos=[head], result=result, load_ms=0.0,
                                     started=0.0)
    assert stored is None
    head.refresh_from_db()
    assert head.status == SnapshotStatus.RECEIVED and head.candidates == [] and not head.cutout
    # and the new run (queued by the fix) stores its own
    with django_capture_on_commit_callbacks(execute=True):
        services.snapshots_requeue_stale(now=timezone.now() + timedelta(hours=1))
    head.refresh_from_db()
    assert head.status == SnapshotStatus.MATCHED and head.hints == {"rect": [0, 0, 100, 100]}
