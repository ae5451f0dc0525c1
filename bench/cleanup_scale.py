"""How long the duplicate scan takes over a large catalogue (default 100k images), in a throwaway database.

Synthetic data (no photo files): 64-bit perceptual hashes drawn around a few thousand "look" centres
(catalogue photos on white backgrounds share much of their hash), with a known share of near-copies
(a few bits flipped, thumbnail nudged); clustered synthetic vectors for the visual pass
(``matching.benchmarking.synthetic_vectors``). Times each stage of ``catalog.cleanup.scans`` as the
full scan runs it: the same-file pass (SQL), the hash pass (band LSH + vectorised Hamming + thumbnail
check), the visual pass (each image's nearest neighbours through the HNSW index), and union-find.

The visual candidates below ``VISUAL_SURE`` are confirmed on the photos themselves (ORB); with no files
here that step is counted, not timed: multiply by the per-pair cost printed by
``bench/cleanup_quality.py``'s run (``scan_seconds_by_step``) or measured in docs/cleanup.md.

Usage: ``STOCKMATCH_TORCH_THREADS=1 nice -n 10 .venv/bin/python bench/cleanup_scale.py [--images 100000]``
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warehouse.settings")


def synthetic_signatures(image_ids: list[int], *, seed: int, copies: float, centres: int = 3000) -> tuple[list, set]:
    """Hash rows and the set of (image, image) pairs that are injected near-copies."""
    from catalog.cleanup import duplicates
    from catalog.cleanup.models import ImageSignature
    from catalog.cleanup.photos import signed64

    rng = np.random.default_rng(seed)
    n = len(image_ids)
    centre_hashes = rng.integers(0, 2**63, size=centres, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    which = rng.integers(0, centres, n)
    hashes = centre_hashes[which].copy()
    for _ in range(10):  # ~10 random bit flips away from the centre: neighbours, not copies
        hashes ^= np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)
    thumbs = rng.integers(0, 256, size=(n, 192), dtype=np.uint8)
    truth = set()
    n_copies = int(n * copies)
    originals = rng.choice(n // 2, n_copies, replace=False)
    targets = rng.choice(np.arange(n // 2, n), n_copies, replace=False)
    for original, target in zip(originals, targets, strict=True):
        flipped = hashes[original]
        for bit in rng.choice(64, rng.integers(0, 5), replace=False):
            flipped ^= np.uint64(1) << np.uint64(bit)
        hashes[target] = flipped
        thumbs[target] = np.clip(thumbs[original].astype(np.int16) + rng.integers(-2, 3, 192), 0, 255)
        truth.add((min(image_ids[original], image_ids[target]), max(image_ids[original], image_ids[target])))
    rows = []
    for image_id, value, thumb in zip(image_ids, hashes.tolist(), thumbs, strict=True):
        phash = signed64(int(value))
        bands = duplicates.bands_of(phash)
        rows.append(ImageSignature(image_id=image_id, sha256="bench", phash=phash, band0=bands[0], band1=bands[1],
                                   band2=bands[2], band3=bands[3], thumb=thumb.tobytes(), flags=[]))
    return rows, truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--copies", type=float, default=0.01, help="share of images that are near-copies")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import django

    django.setup()
    from catalog.cleanup import duplicates, scans
    from catalog.cleanup.conf import cleanup_setting
    from catalog.cleanup.models import ImageSignature
    from catalog.models import ProductImage
    from matching import benchmarking, search, services
    from matching.throwaway import throwaway_database

    result: dict = {"images": args.images}
    with throwaway_database("cleanbench"):
        model = services.embedding_model_active()
        started = time.perf_counter()
        result["build"] = benchmarking.synthetic_catalogue(args.images, model_id=model.pk, seed=args.seed,
                                                           progress=lambda m: print(m, file=sys.stderr))
        image_ids = list(ProductImage.objects.order_by("id").values_list("id", flat=True))
        rows, truth = synthetic_signatures(image_ids, seed=args.seed, copies=args.copies)
        ImageSignature.objects.bulk_create(rows, batch_size=10_000)
        result["build"]["seconds"] = round(time.perf_counter() - started, 1)
        print("built", result["build"], file=sys.stderr)

        timings, stats = {}, {}
        started = time.perf_counter()
        by_file = scans.pairs_by_file()
        timings["same_file_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        by_hash, hash_stats = scans.pairs_by_hash()
        timings["hash_s"] = round(time.perf_counter() - started, 2)
        stats.update(hash_stats)
        found = {(min(e.image_a, e.image_b), max(e.image_a, e.image_b)) for e in by_hash}
        stats["hash_recall_of_injected_copies"] = round(len(found & truth) / max(1, len(truth)), 4)
        stats["hash_false_pairs"] = len(found - truth)
        print("hash pass", timings, stats, file=sys.stderr)
        started = time.perf_counter()
        neighbours = search.image_neighbours(model_id=model.pk, k=int(cleanup_setting("VISUAL_NEIGHBOURS")),
                                             min_similarity=float(cleanup_setting("VISUAL_FLOOR")))
        timings["visual_neighbours_s"] = round(time.perf_counter() - started, 2)
        product_pairs: dict[tuple[int, int], float] = {}
        for n in neighbours:
            pair = (min(n.product_id, n.neighbour_product_id), max(n.product_id, n.neighbour_product_id))
            product_pairs[pair] = max(product_pairs.get(pair, -1.0), n.similarity)
        sure = float(cleanup_setting("VISUAL_SURE"))
        stats["visual_image_pairs"] = len(neighbours)
        stats["visual_product_pairs"] = len(product_pairs)
        stats["visual_pairs_sure"] = sum(s >= sure for s in product_pairs.values())
        stats["visual_pairs_to_check_on_photos"] = sum(s < sure for s in product_pairs.values())
        started = time.perf_counter()
        pairs = [(e.product_a, e.product_b) for e in by_file + by_hash]
        pairs += [p for p, s in product_pairs.items() if s >= sure]
        clusters = duplicates.clusters_of(pairs)
        timings["union_find_s"] = round(time.perf_counter() - started, 2)
        stats["clusters"] = len(clusters)
        timings["duplicate_scan_s_without_photo_checks"] = round(
            timings["same_file_s"] + timings["hash_s"] + timings["visual_neighbours_s"] + timings["union_find_s"], 2)
        result.update(timings=timings, stats=stats, settings={
            k: cleanup_setting(k) for k in ("PHASH_MAX_DISTANCE", "THUMB_MAX_DIFFERENCE", "VISUAL_NEIGHBOURS",
                                            "VISUAL_FLOOR", "VISUAL_SURE")})
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
