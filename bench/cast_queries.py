"""Copy an ``evaluate_matching`` query set with strong light casts, to measure colour constancy.

Each query photo is re-lit by one of three casts in turn (warm tungsten-red, cold blue, green fluorescent:
per-channel gains of up to 1.35 / 0.7) and saved beside a new queries.csv whose paths are relative to it; the
catalogue CSV is copied with its paths rewritten. Compare ``evaluate_matching`` on both sets.

Usage: ``.venv/bin/python bench/cast_queries.py --queries var/pair-eval/queries.csv --out var/pair-eval-cast``
"""
from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image

CASTS = {"red": (1.35, 0.85, 0.7), "blue": (0.75, 0.9, 1.3), "green": (0.85, 1.25, 0.8)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--catalog", type=Path, default=None, help="default: catalog.csv beside --queries")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out = args.out.resolve()
    (out / "images").mkdir(parents=True, exist_ok=True)
    source = args.queries.resolve().parent
    with open(args.queries, newline="") as handle:
        rows = list(csv.DictReader(handle))
    names = list(CASTS)
    written = []
    for n, row in enumerate(rows):
        cast = names[n % len(names)]
        image = np.asarray(Image.open(source / row["image"]).convert("RGB"), dtype=np.float32)
        lit = np.clip(image * np.float32(CASTS[cast]), 0, 255).astype(np.uint8)
        target = out / "images" / f"{n:04d}-{cast}.jpg"
        Image.fromarray(lit).save(target, quality=90)
        written.append({"image": os.path.relpath(target, out), "sku": row["sku"]})
    with open(out / "queries.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "sku"])
        writer.writeheader()
        writer.writerows(written)
    catalog = (args.catalog or source / "catalog.csv").resolve()
    with open(catalog, newline="") as handle:
        reader = csv.DictReader(handle)
        fields, catalogue = reader.fieldnames, list(reader)
    for row in catalogue:
        row["image"] = os.path.relpath((catalog.parent / row["image"]).resolve(), out)
    with open(out / "catalog.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(catalogue)
    print(f"{len(written)} cast queries and {len(catalogue)} catalogue rows -> {out}")


if __name__ == "__main__":
    main()
