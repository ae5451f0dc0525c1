"""Crash recovery of intake: how long after a worker comes back is a photo whose worker was killed matched?

Uploads one phone photo through the API (the message waits in Redis), starts a Celery worker, kills it
with SIGKILL while it processes the photo, starts a new worker and prints one JSON object with
``recovery_s``: seconds from the new worker's start (process spawn) to the photo being matched. Target
(DESIGN §6): ≤ 60 s. Also ``worker_start_s`` (spawn to "ready"), the lease, and the events the item went
through.

    export CELERY_BROKER_URL=redis://127.0.0.1:6379/8      # a Redis database nobody else uses
    python bench/intake_recovery.py [--photo PATH] [--json OUT.json]

Runs against the configured database (``STOCKMATCH_DB_NAME`` / ``DATABASE_URL``) and catalogue (any,
even empty: recovery does not depend on its size); no other worker may consume that queue meanwhile.
The bench user's snapshots are deleted afterwards.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PHOTO = REPO_ROOT.parent / "shared" / "data" / "phone-photos" / "images"
BENCH_USER = "bench-recovery"


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warehouse.settings")
    import django

    django.setup()


def phone_jpeg(path: Path) -> bytes:
    """The photo at phone size (12 MP), as the slowest realistic upload."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    size = (3000, 4000) if image.height >= image.width else (4000, 3000)
    buffer = io.BytesIO()
    image.resize(size).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def start_worker(log) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "warehouse", "worker", "--pool=solo", "--concurrency=1",
               "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def wait_until(condition, deadline_s: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > deadline_s:
            raise SystemExit(f"Gave up waiting {deadline_s:.0f} s for {what}.")
        time.sleep(0.05)
    return time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", type=Path, help="a phone photo (default: the first shared phone photo)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not os.environ.get("CELERY_BROKER_URL"):
        raise SystemExit("Set CELERY_BROKER_URL to a Redis database (e.g. redis://127.0.0.1:6379/8).")
    setup_django()

    from django.contrib.auth.models import Group, User
    from rest_framework.test import APIClient

    from warehouse import conf
    from warehouse.celery import app
    from warehouse.models import Snapshot, SnapshotStatus
    from warehouse.roles import WAREHOUSE

    photo = args.photo or sorted(DEFAULT_PHOTO.glob("*.jpg"))[0]
    user, _ = User.objects.get_or_create(username=BENCH_USER)
    user.groups.add(Group.objects.get(name=WAREHOUSE))
    client = APIClient()
    client.force_login(user)
    app.control.purge()
    handle = io.BytesIO(phone_jpeg(photo))
    handle.name = "photo.jpg"
    response = client.post("/api/v1/intake/snapshots/", {"photo": handle}, format="multipart",
                           HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
    if response.status_code != 202:
        raise SystemExit(f"Upload refused: {response.status_code} {response.content[:300]!r}")
    snapshot_id = response.json()["id"]

    def status() -> str:
        return Snapshot.objects.values_list("status", flat=True).get(pk=snapshot_id)

    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "workers.log"
        with open(log_path, "w") as log:
            first = start_worker(log)
            try:
                wait_until(lambda: status() == SnapshotStatus.PROCESSING, 300, "the first worker to start")
                time.sleep(0.5)  # well inside the run: loading, cutting out or embedding
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait()
            killed_status = status()
            log.flush()
            offset = log_path.stat().st_size
            spawned = time.monotonic()
            second = start_worker(log)
            try:
                ready = wait_until(lambda: "ready." in log_path.read_text()[offset:], 300, "the new worker to be ready")
                matched = wait_until(lambda: status() not in (SnapshotStatus.RECEIVED, SnapshotStatus.PROCESSING),
                                     600, "the photo to be matched")
            finally:
                second.terminate()
                second.wait(timeout=60)
    snapshot = Snapshot.objects.get(pk=snapshot_id)
    report = {
        "recovery_s": round(matched - spawned, 1),
        "worker_start_s": round(ready - spawned, 1),
        "status_after_kill": killed_status,
        "final_status": snapshot.status,
        "attempts": snapshot.attempts,
        "lease_seconds": conf.lease_duration().total_seconds(),
        "run_ms": snapshot.timings.get("run_ms"),
        "timings_ms": snapshot.timings,
        "load_average": os.getloadavg()[0],
        "events": [event["action"] for event in snapshot.events],
        "photo": str(photo),
    }
    for item in Snapshot.objects.filter(uploaded_by=user):
        for field in (item.original, item.preview, item.cutout, item.mask):
            if field:
                field.storage.delete(field.name)
        item.delete()
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
