"""How to combine several photos of one item into one query: mean of unit vectors vs max-fusion of lists.

Imports the evaluation catalogue (bench/build_eval_set.py) into a throwaway database, makes two phone-like
composites of each of ``--items`` catalogue garments (different backgrounds, warps and light), and reports
recall@1/@5 for: the first photo alone, the mean of both photos' unit vectors (``match_image``), and
max-fusion (search each photo, keep each product's best score).

Usage: ``.venv/bin/python bench/measure_fusion.py [--eval var/eval --items 100 --no-segmentation]``
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warehouse.settings")


def main() -> None:
    from segmentation import METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=REPO / "var" / "eval")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-segmentation", action="store_true")
    parser.add_argument("--segmentation-method", default="auto", choices=METHODS)
    args = parser.parse_args()

    import django

    django.setup()
    import numpy as np

    from bench.build_eval_set import DATA, backgrounds, composite
    from matching import evaluation, search, services
    from matching.embedders.base import l2_normalise
    from matching.throwaway import throwaway_database

    rng = random.Random(args.seed)
    with open(args.eval / "catalog.csv", newline="") as handle:
        skus = sorted({row["sku"] for row in csv.DictReader(handle)})
    chosen = rng.sample(skus, min(args.items, len(skus)))
    plates = backgrounds(rng, 2 * len(chosen))
    pairs = [
        (sku, [composite(DATA / "catalog-photos" / "images" / f"{sku[3:]}.jpg", plates[2 * n + i], rng) for i in (0, 1)])  # noqa: E501
        for n, sku in enumerate(chosen)
    ]
    segment = False if args.no_segmentation else args.segmentation_method
    ranks: dict[str, list[int | None]] = {"single": [], "mean": [], "max": []}
    with throwaway_database("fusion"):
        evaluation.catalogue_import(args.eval / "catalog.csv")
        model = services.embedding_model_active()
        embedder = services.embedder_for(model)
        for sku, photos in pairs:
            views = [services._view_of(p, services._cut(p, None, segment)) for p in photos]
            vectors = embedder.embed(views)
            lists = {
                "single": search.nearest_products(vectors[0], model_id=model.pk, k=10),
                "mean": search.nearest_products(l2_normalise(vectors.mean(axis=0)), model_id=model.pk, k=10),
            }
            best: dict[int, search.ProductHit] = {}
            for vector in vectors:
                for hit in search.nearest_products(vector, model_id=model.pk, k=10):
                    if hit.product_id not in best or hit.score > best[hit.product_id].score:
                        best[hit.product_id] = hit
            lists["max"] = sorted(best.values(), key=lambda hit: -hit.score)[:10]
            for name, hits in lists.items():
                found = [c.sku for c in services.candidates_for(hits)]
                ranks[name].append(found.index(sku) + 1 if sku in found else None)
    report = {
        name: {
            "recall@1": round(float(np.mean([r == 1 for r in values])), 4),
            "recall@5": round(float(np.mean([bool(r and r <= 5) for r in values])), 4),
        }
        for name, values in ranks.items()
    }
    report["items"] = len(pairs)
    report["segmentation"] = segment
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
