"""Mirror recommendation latency for one 1080p camera frame, through the real API, on a throwaway database.

    python bench/mirror_latency.py [--frames 20] [--catalogue-pairs 300] [--others 200] [--heads] [--json OUT.json]

Builds a throwaway catalogue (held-out shop photos of tops, studio photos of bottoms, shoes and dresses),
creates a mirror device key, then POSTs portrait 1080x1920 JPEG frames of people wearing tops (held-out
VITON worn photos, scaled up and edge-padded) to /api/v1/mirror/recommendations as a kiosk would. The clock
covers the whole request: upload parsing, validation and decoding, face detection, segmentation, matching
per garment, classification, complete-the-look and the shopper-safe response. The first request (model
loading) is reported apart. ``--heads`` trains and activates classification heads on the throwaway catalogue
first, as a production install has them (they read the appearance vector too: one more embedding per garment);
without it, kNN votes. Prints one JSON object. Targets (DESIGN §6): p50 ≤ 500 ms, p95 ≤ 1000 ms.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

from mirror_common import PAIRS_DIR, build_catalogue, emit, held_out_pairs, mirror_frame, percentile, setup_django


def run(*, frames: int, catalogue_pairs: int, others: int, heads: bool = False) -> dict:
    from django.conf import settings
    from rest_framework.test import APIClient

    from matching.mirror import services
    from matching.mirror.models import MirrorKey
    from matching.throwaway import throwaway_database

    pairs = held_out_pairs(catalogue_pairs)
    with throwaway_database("mirrorbench"):
        build_catalogue(pairs, others=others)
        if heads:
            import tempfile

            from matching.heads import heads_train
            from matching.services import embedding_model_active

            settings.STOCKMATCH_HEADS_DIR = tempfile.mkdtemp(prefix="mirrorbench-heads-")  # removed below
            heads_train(model=embedding_model_active(), force=True)
        _, key = MirrorKey.objects.create_key(name="bench")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        stages: dict[str, list[float]] = {}
        original = services.mirror_recommend

        def recorded(**kwargs):
            answer = original(**kwargs)
            for stage, ms in answer.timings.items():
                stages.setdefault(stage, []).append(ms)
            return answer

        services.mirror_recommend = recorded
        settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["mirror"] = None  # the bench is one fast device
        measured, statuses, garments = [], {}, []
        try:
            for n, row in enumerate(pairs[: frames + 1]):
                buffer = io.BytesIO()
                mirror_frame(PAIRS_DIR / row["worn"]).save(buffer, format="JPEG", quality=88)
                buffer.seek(0)
                buffer.name = "frame.jpg"
                started = time.perf_counter()
                response = client.post("/api/v1/mirror/recommendations", {"frame": buffer}, format="multipart")
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{row['worn']}: {response.status_code} {response.content[:300]!r}")
                body = response.json()
                if n == 0:
                    cold, stages = elapsed, {}
                    continue
                measured.append(elapsed)
                statuses[body["status"]] = statuses.get(body["status"], 0) + 1
                garments.append(len(body["garments"]))
        finally:
            services.mirror_recommend = original
            if heads:
                import shutil

                shutil.rmtree(settings.STOCKMATCH_HEADS_DIR, ignore_errors=True)
        frame_bytes = buffer.getbuffer().nbytes
    return {
        "what": "POST /api/v1/mirror/recommendations, one 1080x1920 JPEG frame, end to end (Django test client)",
        "n_frames": len(measured),
        "recommend_ms_p50": percentile(measured, 0.5),
        "recommend_ms_p95": percentile(measured, 0.95),
        "recommend_ms_mean": round(statistics.fmean(measured), 1),
        "cold_start_ms": round(cold, 1),
        "stage_ms_p50": {stage: percentile(values, 0.5) for stage, values in sorted(stages.items())},
        "statuses": statuses,
        "garments_per_frame_mean": round(statistics.fmean(garments), 2),
        "frame_bytes_last": frame_bytes,
        "catalogue_products": len(pairs) + others,
        "torch_threads": settings.STOCKMATCH_TORCH_THREADS,
        "classifier": "heads" if heads else "knn",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--catalogue-pairs", type=int, default=300)
    parser.add_argument("--others", type=int, default=200)
    parser.add_argument("--heads", action="store_true", help="Train classification heads first (as in production).")
    parser.add_argument("--json", type=str, default="")
    args = parser.parse_args()
    setup_django()
    result = run(frames=args.frames, catalogue_pairs=args.catalogue_pairs, others=args.others, heads=args.heads)
    emit(result, args.json)


if __name__ == "__main__":
    main()
