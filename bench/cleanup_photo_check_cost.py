"""Cost of the photo-level check behind cropped-copy detection (ORB features, then matching a pair).

Decodes N real studio photos from ../shared/data/catalog-photos, times ``features_of`` per photo and
``content_match`` per pair (each photo against the next), and prints one JSON object. Multiply by the
``visual_pairs_to_check_on_photos`` that ``bench/cleanup_scale.py`` prints to estimate a full scan.

Usage: ``nice -n 10 .venv/bin/python bench/cleanup_photo_check_cost.py [--photos 60]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from catalog.cleanup.duplicates import (  # noqa: E402  (no Django needed)
    FEATURE_COUNT,
    FEATURE_SIZE,
    content_match,
    features_of,
)

DATA = next((p / "shared" / "data" / "catalog-photos" for p in REPO.parents
             if (p / "shared" / "data" / "catalog-photos").is_dir()),
            REPO.parent / "shared" / "data" / "catalog-photos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--size", type=int, default=FEATURE_SIZE, help="longer side the features are computed at")
    parser.add_argument("--count", type=int, default=FEATURE_COUNT, help="ORB keypoints")
    args = parser.parse_args()
    paths = sorted((DATA / "images").glob("*.jpg"))[: args.photos]
    decode_ms, feature_ms, match_ms = [], [], []
    features = []
    for path in paths:
        started = time.perf_counter()
        image = Image.open(path).convert("RGB")
        image.load()
        decode_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        features.append(features_of(image, size=args.size, count=args.count))
        feature_ms.append((time.perf_counter() - started) * 1000)
    for a, b in zip(features, features[1:], strict=False):
        started = time.perf_counter()
        content_match(a, b)
        match_ms.append((time.perf_counter() - started) * 1000)
    print(json.dumps({
        "photos": len(paths), "photo_size": list(Image.open(paths[0]).size), "size": args.size, "count": args.count,
        "decode_ms_p50": round(float(np.median(decode_ms)), 2),
        "features_ms_p50": round(float(np.median(feature_ms)), 2),
        "match_ms_p50": round(float(np.median(match_ms)), 2),
        "match_ms_p95": round(float(np.percentile(match_ms, 95)), 2),
    }, indent=2))


if __name__ == "__main__":
    main()
