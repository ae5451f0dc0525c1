"""Peak memory of one upload, above the process's idle level, in the web process and in the worker.

    python bench/upload_memory.py [--json OUT.json]

Photos: a 12 MP phone JPEG (4032x3024), the 56 MP PNG of issue 8 (7000x8000, a small file), and the
largest PNG the pixel cap lets through (5000x5000, 25 MP, with detail). Each measurement runs in a fresh
process that first handles one small photo (code, models and database connections loaded: that is "idle"),
then the photo under test. Peak is the kernel's resident high-water mark (``VmHWM``), reset just before
the upload (``/proc/self/clear_refs``), so nothing between two samples is missed.

- ``web``: POST /api/v1/intake/snapshots/ through Django's test client, with a broker configured (the
  upload only: validate, store, queue);
- ``web_in_process``: the same with no broker, the default: the web process also matches the photo;
- ``worker``: ``process_snapshot`` on the stored upload, as a Celery worker runs it.

Runs in a throwaway database on the configured server; prints one JSON object (MB above idle).
"""
from __future__ import annotations

import argparse
import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_PHONE_PHOTOS = REPO_ROOT.parent / "shared" / "data" / "phone-photos" / "images"
BENCH_USER = "bench-memory"
MB = 1024 * 1024


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warehouse.settings")
    import django

    django.setup()


# -- photos --------------------------------------------------------------------------------------------

def phone_jpeg() -> bytes:
    """A 12 MP JPEG: a real phone photo when the shared data is there, else a textured synthetic one."""
    photos = sorted(SHARED_PHONE_PHOTOS.glob("*.jpg"))[:1]
    if photos:
        image = Image.open(photos[0]).convert("RGB").resize((4032, 3024), Image.Resampling.BICUBIC)
    else:
        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 255, (3024, 4032, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def flat_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 190, 180)).save(buffer, format="PNG")
    return buffer.getvalue()


def detailed_png(width: int, height: int) -> bytes:
    rng = np.random.default_rng(1)
    small = rng.integers(0, 255, (height // 50, width // 50, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def small_jpeg() -> bytes:
    buffer = io.BytesIO()
    array = np.full((480, 640, 3), 210, np.uint8)
    array[120:360, 200:440] = (40, 60, 160)
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# -- measuring -----------------------------------------------------------------------------------------

def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(action) -> dict:  # noqa: ANN001 - a callable returning a result dict
    gc.collect()
    idle = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset the resident high-water mark to the current RSS
    result = action()
    peak = _status("VmHWM")
    return {**result, "idle_mb": round(idle / MB, 1), "peak_mb": round(peak / MB, 1),
            "above_idle_mb": round((peak - idle) / MB, 1)}


def _client():  # noqa: ANN202
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(User.objects.get(username=BENCH_USER))
    return client


def _upload(client, data: bytes, name: str) -> dict:  # noqa: ANN001
    response = client.post(
        "/api/v1/intake/snapshots/", {"photo": _named(data, name)},
        format="multipart", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )
    body = response.json() if response.get("Content-Type", "").startswith("application/json") else {}
    return {"status_code": response.status_code, "snapshot_id": body.get("id"), "snapshot_status": body.get("status"),
            **({"refused": body.get("code") or body} if response.status_code >= 400 else {})}


def _named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def child(mode: str, photo_path: str, warm_id: int | None, snapshot_id: int | None) -> dict:
    setup_django()
    from django.conf import settings

    settings.MEDIA_ROOT = os.environ["BENCH_MEDIA_ROOT"]
    if mode in ("web", "web_in_process"):
        client = _client()
        _upload(client, small_jpeg(), "warm.jpg")  # code paths, models (in-process), connections
        data = Path(photo_path).read_bytes()
        name = Path(photo_path).name
        return measure(lambda: _upload(client, data, name))
    from warehouse.models import Snapshot
    from warehouse.tasks import process_snapshot

    process_snapshot(warm_id)  # loads the segmenter and the embedder
    result = measure(lambda: {"result": process_snapshot(snapshot_id)})
    result["snapshot_status"] = Snapshot.objects.get(pk=snapshot_id).status
    return result


def run_child(mode: str, photo: Path, env: dict, warm_id: int | None = None, snapshot_id: int | None = None) -> dict:
    args = [sys.executable, __file__, "--child", mode, "--photo", str(photo),
            "--warm-id", str(warm_id or 0), "--snapshot-id", str(snapshot_id or 0)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child")
    parser.add_argument("--photo")
    parser.add_argument("--warm-id", type=int, default=0)
    parser.add_argument("--snapshot-id", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.photo, args.warm_id, args.snapshot_id)))
        return

    setup_django()
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from matching.throwaway import throwaway_database
    from warehouse.roles import WAREHOUSE

    photos = {"jpeg_12mp": ("phone.jpg", phone_jpeg()), "png_56mp": ("big.png", flat_png(7000, 8000)),
              "png_25mp": ("cap.png", detailed_png(5000, 5000))}
    report: dict = {"photos": {key: {"bytes": len(data), "file": name} for key, (name, data) in photos.items()}}
    with tempfile.TemporaryDirectory(prefix="upload-memory-") as folder, throwaway_database("memory") as db_name:
        user = User.objects.create_user(BENCH_USER)
        user.groups.add(Group.objects.get(name=WAREHOUSE))
        media = Path(folder) / "media"
        env = {**os.environ, "STOCKMATCH_DB_NAME": db_name, "BENCH_MEDIA_ROOT": str(media),
               "STOCKMATCH_TORCH_THREADS": os.environ.get("STOCKMATCH_TORCH_THREADS", "2")}
        broker_env = {**env, "CELERY_BROKER_URL": "memory://", "CELERY_RESULT_BACKEND": "cache+memory://"}
        connection.close()
        small = Path(folder) / "small.jpg"
        small.write_bytes(small_jpeg())
        for key, (name, data) in photos.items():
            path = Path(folder) / name
            path.write_bytes(data)
            entry = report.setdefault(key, {})
            entry["web"] = run_child("web", path, broker_env)
            entry["web_in_process"] = run_child("web_in_process", path, env)
            if entry["web"].get("snapshot_id"):
                warm = run_child("web", small, broker_env)  # a small photo for the worker to warm up on
                entry["worker"] = run_child("worker", path, broker_env, warm_id=warm["snapshot_id"],
                                            snapshot_id=entry["web"]["snapshot_id"])
    report["targets_mb"] = {"jpeg_12mp": 300, "png_56mp": 400}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
