"""How often the mirror's similar products for a worn photo contain the right top, on a throwaway database.

    python bench/mirror_recall.py [--pairs 300] [--others 200] [--k 10] [--baseline] [--json OUT.json]

Catalogue: the flat shop photos of held-out VITON pairs (pair number ≥ 2100; the lead trains embedders on
the others) as women's tops in stock, plus ``--others`` studio photos of bottoms, shoes and dresses. Queries:
each pair's worn photo (a model wearing the top), as a portrait 1080x1920 mirror frame, through
``mirror_recommend`` exactly as the API runs it, with ``k`` similar products per garment. A query counts
as found when the right top is among the ``k`` similar products of the garment the mirror calls a top
(``top_garment``), or of any garment it found (``any_garment``). Frames answered "no person" / "no garment"
count as misses. ``--baseline`` also scores ``match_image`` on the whole frame (the intake's single
cut-out), for comparison. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import time

from mirror_common import PAIRS_DIR, build_catalogue, emit, held_out_pairs, mirror_frame, percentile, setup_django


def run(*, pairs: int, others: int, k: int, baseline: bool) -> dict:
    from django.conf import settings
    from django.test.utils import override_settings

    from catalog.models import Product
    from matching.mirror.services import SHOPPABLE, mirror_recommend
    from matching.services import embedding_model_active, match_image
    from matching.throwaway import throwaway_database

    rows = held_out_pairs(pairs)
    with throwaway_database("mirrorrecall"), override_settings(MIRROR={**settings.MIRROR, "SIMILAR": k}):
        skus = build_catalogue(rows, others=others)
        sku_of = dict(Product.objects.values_list("pk", "sku"))
        statuses: dict[str, int] = {}
        top_hits = any_hits = top1 = 0
        kind_seen: dict[str, int] = {}
        times = []
        plain_hits = 0
        for row in rows:
            frame = mirror_frame(PAIRS_DIR / row["worn"])
            if baseline:  # the intake's way: one cut-out of the whole frame, no person or garment logic
                plain = match_image(frame, filters=SHOPPABLE, k=k)
                plain_hits += skus[row["pair"]] in [c.sku for c in plain.candidates]
            started = time.perf_counter()
            answer = mirror_recommend(image=frame)
            times.append((time.perf_counter() - started) * 1000)
            statuses[answer.status] = statuses.get(answer.status, 0) + 1
            target = skus[row["pair"]]
            found = [[sku_of[pid] for pid in garment.similar[:k]] for garment in answer.garments]
            tops = [g for g, garment in zip(found, answer.garments, strict=True)
                    if garment.kind is not None and garment.kind.label == "topwear"]
            for garment in answer.garments:
                label = garment.kind.label if garment.kind else "none"
                kind_seen[label] = kind_seen.get(label, 0) + 1
            if tops and target in tops[0]:
                top_hits += 1
                top1 += tops[0][0] == target
            any_hits += any(target in skus_found for skus_found in found)
        model = embedding_model_active().name
    n = len(rows)
    return {
        "what": f"right top among the mirror's first {k} similar products for a worn photo (held-out VITON pairs)",
        "n_queries": n,
        f"top_garment_recall@{k}": round(top_hits / n, 4),
        "top_garment_recall@1": round(top1 / n, 4),
        f"any_garment_recall@{k}": round(any_hits / n, 4),
        **({f"baseline_match_image_whole_frame_recall@{k}": round(plain_hits / n, 4)} if baseline else {}),
        "statuses": statuses,
        "garment_kinds": kind_seen,
        "catalogue": {"tops": n, "others": others},
        "recommend_ms_p50": percentile(times, 0.5),
        "embedding_model": model,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--others", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--baseline", action="store_true", help="also score match_image on the whole frame")
    parser.add_argument("--json", type=str, default="")
    args = parser.parse_args()
    setup_django()
    result = run(pairs=args.pairs, others=args.others, k=args.k, baseline=args.baseline)
    emit(result, args.json)


if __name__ == "__main__":
    main()
