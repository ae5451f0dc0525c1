"""Time from upload to candidates for warehouse intake, through the real API, on the demo catalogue.

Each photo is POSTed to /api/v1/intake/snapshots/ as a phone would (multipart, Idempotency-Key), then
the snapshot is polled until it has candidates. The clock runs from the start of the upload to the
first response that shows them, so it includes upload handling, validation, storing the original,
queueing, segmentation, embedding, search and the status read. Prints one JSON object.

    python manage.py migrate && python manage.py demo_data      # the demo catalogue, once
    python bench/intake_latency.py [--photos 20] [--source demo|shared] [--json OUT.json]

Runs in-process through Django's test client against the configured database (``STOCKMATCH_DB_NAME`` /
``DATABASE_URL``). Matching runs in-process when no broker is configured, or on real Celery workers
when ``CELERY_BROKER_URL`` is set (start ``celery -A warehouse worker`` first). The bench user's
snapshots are deleted afterwards unless ``--keep``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_PHONE_PHOTOS = REPO_ROOT.parent / "shared" / "data" / "phone-photos"
BENCH_USER = "bench-intake"


def setup_django() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warehouse.settings")
    import django

    django.setup()


def photo_paths(source: str, n: int) -> list[Path]:
    """Phone-like photos: the demo catalogue's snapshots (photos of its own items), or the shared phone photos."""
    if source == "demo":
        from catalog.demo.build import default_snapshot_dir

        folder = Path(default_snapshot_dir())
        listing = folder / "snapshots.csv"
        if listing.exists():
            with open(listing) as handle:
                rows = list(csv.DictReader(handle))
            paths = [folder / row["image"] for row in rows]
        else:
            paths = sorted(folder.glob("*.jpg"))
        if not paths:
            raise SystemExit(f"No demo snapshots in {folder}: run `python manage.py demo_data` first.")
    else:
        paths = sorted((SHARED_PHONE_PHOTOS / "images").glob("*.jpg"))
    if len(paths) < n + 1:
        raise SystemExit(f"Need {n + 1} photos, found {len(paths)}.")
    return paths[: n + 1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 1)


def run(*, photos: int, source: str, keep: bool, poll_s: float, timeout_s: float) -> dict:
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from catalog.models import Product, ProductImage
    from warehouse.models import Snapshot
    from warehouse.roles import WAREHOUSE

    products = Product.objects.count()
    if products == 0:
        raise SystemExit("The catalogue is empty: run `python manage.py demo_data` (the demo catalogue) first.")
    user, _ = User.objects.get_or_create(username=BENCH_USER)
    user.groups.add(Group.objects.get(name=WAREHOUSE))
    client = Client()
    client.force_login(user)
    started_ids: list[int] = []

    def one(path: Path) -> tuple[float, dict]:
        data = path.read_bytes()
        t0 = time.perf_counter()
        response = client.post(
            "/api/v1/intake/snapshots/", {"photo": _named(data, path.name)}, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
        )
        if response.status_code != 202:
            raise SystemExit(f"Upload of {path} failed: {response.status_code} {response.content[:300]!r}")
        snapshot_id = response.json()["id"]
        started_ids.append(snapshot_id)
        body = response.json()
        while body["status"] in ("received", "processing"):
            if time.perf_counter() - t0 > timeout_s:
                raise SystemExit(f"Snapshot {snapshot_id} still {body['status']} after {timeout_s}s; is a worker up?")
            time.sleep(poll_s)
            body = client.get(f"/api/v1/intake/snapshots/{snapshot_id}/").json()
        elapsed = (time.perf_counter() - t0) * 1000
        if body["status"] != "matched":
            raise SystemExit(f"Snapshot {snapshot_id} {body['status']}: {body['error']}")
        return elapsed, body

    try:
        paths = photo_paths(source, photos)
        cold_ms, _ = one(paths[0])  # loads the models; reported apart
        measured, stages = [], {}
        for path in paths[1:]:
            elapsed, body = one(path)
            measured.append(elapsed)
            for stage, ms in body["timings"].items():
                stages.setdefault(stage, []).append(float(ms))
    finally:
        if not keep:
            for snapshot in Snapshot.objects.filter(uploaded_by=user, pk__in=started_ids):
                for field in (snapshot.original, snapshot.preview, snapshot.cutout, snapshot.mask):
                    if field:
                        field.delete(save=False)
                snapshot.delete()
    return {
        "what": "intake upload -> candidates through the API (POST, then GET until matched)",
        "n_photos": len(measured),
        "upload_to_candidates_ms_p50": percentile(measured, 0.5),
        "upload_to_candidates_ms_p95": percentile(measured, 0.95),
        "upload_to_candidates_ms_mean": round(statistics.fmean(measured), 1),
        "cold_start_ms": round(cold_ms, 1),
        "server_stage_ms_p50": {stage: percentile(values, 0.5) for stage, values in sorted(stages.items())},
        "mode": "eager (in-process)" if settings.CELERY_TASK_ALWAYS_EAGER else "celery workers",
        "photo_source": source,
        "catalog_products": products,
        "catalog_images": ProductImage.objects.count(),
        "database": settings.DATABASES["default"]["NAME"],
    }


def _named(data: bytes, name: str):
    import io

    handle = io.BytesIO(data)
    handle.name = name
    return handle


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20, help="Photos measured (one more is the warm-up).")
    parser.add_argument("--source", choices=["demo", "shared"], default="demo",
                        help="demo: the demo catalogue's own phone-like snapshots; shared: ../shared phone photos")
    parser.add_argument("--poll", type=float, default=0.05, help="Seconds between status reads.")
    parser.add_argument("--timeout", type=float, default=300.0, help="Give up on one photo after this many seconds.")
    parser.add_argument("--keep", action="store_true", help="Keep the bench snapshots.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the result here.")
    args = parser.parse_args(argv)
    setup_django()
    result = run(photos=args.photos, source=args.source, keep=args.keep, poll_s=args.poll, timeout_s=args.timeout)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
