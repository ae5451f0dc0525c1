"""How long the full duplicate scan takes over a large catalogue (default 100k images), stage by stage.

Builds a throwaway database with synthetic data: 64-bit perceptual hashes drawn around a few thousand
"look" centres (catalogue photos on white backgrounds share much of their hash) with a known share of
near-copies; clustered synthetic vectors of the chosen dimension (``matching.benchmarking.synthetic_vectors``;
256 is the shipped trained embedder, 1280 the ImageNet one). With ``--photos`` every image row gets a real
studio photo from ``../shared/data/catalog-photos`` (the 2,500 files shared round-robin), so the photo checks
of the visual candidates really decode photos and run ORB.

Times each stage as a full scan runs it (``catalog.cleanup.scans``): same file (SQL), hash bands, the exact
neighbour pass (read the vectors, blocked matrix products), the choice of visual candidates, the photo checks
(all of them, or the first ``--photo-checks`` in scan order with the rest extrapolated from their rate), the
label vote on the same neighbours, union-find. ``--hnsw N`` also builds the HNSW index and times the old
per-image index pass on N sampled products, with its recall against the exact pass.

Usage: ``STOCKMATCH_TORCH_THREADS=1 nice -n 10 .venv/bin/python bench/cleanup_scale.py --images 100000
--dimension 256 --photos``
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
DATA = next((p / "shared" / "data" / "catalog-photos" for p in REPO.parents
             if (p / "shared" / "data" / "catalog-photos").is_dir()),
            REPO.parent / "shared" / "data" / "catalog-photos")
BACKBONE = {256: "efficientnet-lite0-ft256", 1280: "efficientnet-lite0"}  # whose visual gate applies


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


def photos_behind_rows() -> int:
    """Copy the real studio photos into media storage and point every image row at one of them."""
    from django.core.files.storage import default_storage
    from django.db import connection

    from catalog.models import ProductImage

    paths = sorted((DATA / "images").glob("*.jpg"))
    for n, path in enumerate(paths):
        default_storage.save(f"bench-photos/{n}.jpg", path.open("rb"))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {ProductImage._meta.db_table} SET file = 'bench-photos/' || (id %% %s) || '.jpg'",
                       [len(paths)])
    return len(paths)


def timed(timings: dict, name: str, call):  # noqa: ANN001, ANN202
    """Wall seconds in ``timings[name]``; CPU seconds of this process (all its threads) in ``timings["cpu"]``,
    which a loaded machine inflates much less."""
    started, cpu = time.perf_counter(), time.process_time()
    value = call()
    timings[name] = round(time.perf_counter() - started, 2)
    timings.setdefault("cpu", {})[name] = round(time.process_time() - cpu, 2)
    print(name, timings[name], "cpu", timings["cpu"][name], file=sys.stderr)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--dimension", type=int, default=256, choices=sorted(BACKBONE))
    parser.add_argument("--copies", type=float, default=0.01, help="share of images that are near-copies")
    parser.add_argument("--photos", action="store_true", help="real photo files behind the rows: run the ORB checks")
    parser.add_argument("--photo-checks", type=int, default=0,
                        help="run only this many photo checks and extrapolate the rest (0: all)")
    parser.add_argument("--hnsw", type=int, default=0, help="also time the HNSW pass on this many sampled products")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import django

    django.setup()
    from catalog.cleanup import duplicates, scans
    from catalog.cleanup.conf import cleanup_setting, visual_gate
    from catalog.cleanup.models import ImageSignature
    from catalog.models import ProductImage
    from matching import benchmarking, search, services
    from matching.models import EmbeddingModel
    from matching.neighbours import neighbour_table
    from matching.throwaway import throwaway_database

    result: dict = {"images": args.images, "dimension": args.dimension, "load_average": os.getloadavg()}
    with throwaway_database("cleanbench"):
        model = services.embedding_model_active()
        EmbeddingModel.objects.filter(pk=model.pk).update(dimension=args.dimension, backbone=BACKBONE[args.dimension])
        started = time.perf_counter()
        result["build"] = benchmarking.synthetic_catalogue(
            args.images, model_id=model.pk, seed=args.seed, dimension=args.dimension, build_index=bool(args.hnsw),
            progress=lambda m: print(m, file=sys.stderr))
        image_ids = list(ProductImage.objects.order_by("id").values_list("id", flat=True))
        rows, truth = synthetic_signatures(image_ids, seed=args.seed, copies=args.copies)
        ImageSignature.objects.bulk_create(rows, batch_size=10_000)
        if args.photos:
            result["build"]["photo_files"] = photos_behind_rows()
        result["build"]["seconds"] = round(time.perf_counter() - started, 1)
        print("built", result["build"], file=sys.stderr)

        timings, stats = {}, {}
        by_file = timed(timings, "same_file_s", scans.pairs_by_file)
        by_hash, hash_stats = timed(timings, "hash_s", scans.pairs_by_hash)
        stats.update(hash_stats)
        found = {(min(e.image_a, e.image_b), max(e.image_a, e.image_b)) for e in by_hash}
        stats["hash_recall_of_injected_copies"] = round(len(found & truth) / max(1, len(truth)), 4)
        stats["hash_false_pairs"] = len(found - truth)

        k = max(int(cleanup_setting("VISUAL_NEIGHBOURS")), int(cleanup_setting("LABEL_NEIGHBOURS")))
        data = timed(timings, "neighbours_read_s",
                     lambda: search.embeddings_searchable(model_id=model.pk, dimension=args.dimension))
        table = timed(timings, "neighbours_exact_s",
                      lambda: neighbour_table(data.image_ids, data.product_ids, data.vectors, k=k))
        neighbours = timed(timings, "neighbours_as_rows_s", table.neighbours)

        known = {(min(e.product_a, e.product_b), max(e.product_a, e.product_b)) for e in by_file + by_hash}
        floor, margin = visual_gate(BACKBONE[args.dimension])
        sure_pairs, checks = timed(timings, "visual_candidates_s", lambda: scans.look_candidates(
            neighbours, known=known, floor=floor, margin=margin, sure=float(cleanup_setting("VISUAL_SURE"))))
        stats.update(visual_floor=floor, visual_margin=margin, visual_sure_pairs=len(sure_pairs),
                     photo_checks=len(checks), images_in_photo_checks=len({i for c in checks
                                                                           for i in (c.image_a, c.image_b)}))
        # what the former gate (each image's 3 nearest at or above the floor) would have sent to the checks
        former = {(min(n.product_id, n.neighbour_product_id), max(n.product_id, n.neighbour_product_id))
                  for n in table.neighbours(k=3, min_similarity=floor)}
        stats["photo_checks_former_gate"] = len(former - known)

        confirmed = []
        if args.photos and checks:
            ordered = duplicates.in_connected_order(checks, key=lambda c: (c.image_a, c.image_b))
            sample = ordered[: args.photo_checks] if args.photo_checks else ordered
            cache = scans.feature_cache()
            confirmed = timed(timings, "photo_checks_run_s", lambda: scans.photo_checks_run(sample, cache=cache))
            stats.update(photo_checks_run=len(sample), photo_features_computed=cache.misses,
                         photo_checks_confirmed=len(confirmed))
            share = len(checks) / len(sample)
            timings["photo_checks_s"] = round(timings["photo_checks_run_s"] * share, 1)
            timings["cpu"]["photo_checks_s"] = round(timings["cpu"]["photo_checks_run_s"] * share, 1)
            stats["photo_checks_extrapolated"] = len(sample) < len(checks)

        label_neighbours = table.neighbours(k=int(cleanup_setting("LABEL_NEIGHBOURS")))
        labels = timed(timings, "labels_s",
                       lambda: scans.label_findings(model_id=model.pk, neighbours=label_neighbours))
        stats["label_findings"] = len(labels)
        pairs = [(e.product_a, e.product_b) for e in by_file + by_hash + sure_pairs + confirmed]
        clusters = timed(timings, "union_find_s", lambda: duplicates.clusters_of(pairs))
        stats["clusters"] = len(clusters)
        stages = ("same_file_s", "hash_s", "neighbours_read_s", "neighbours_exact_s", "neighbours_as_rows_s",
                  "visual_candidates_s", "photo_checks_s", "union_find_s")
        timings["duplicate_scan_s"] = round(sum(timings.get(s, 0.0) for s in stages), 1)
        timings["cpu"]["duplicate_scan_s"] = round(sum(timings["cpu"].get(s, 0.0) for s in stages), 1)
        timings["duplicate_and_label_scan_s"] = round(timings["duplicate_scan_s"] + timings["labels_s"], 1)

        if args.hnsw:
            rng = np.random.default_rng(args.seed)
            sample = rng.choice(np.unique(data.product_ids), min(args.hnsw, len(np.unique(data.product_ids))),
                                replace=False).tolist()
            indexed = timed(timings, "hnsw_sample_s", lambda: search.image_neighbours(
                model_id=model.pk, k=k, product_ids=sample))
            exact = {(n.image_id, n.neighbour_image_id) for n in table.neighbours(product_ids=set(sample))}
            stats["hnsw_sample_products"] = len(sample)
            stats["hnsw_recall_vs_exact"] = round(len(exact & {(n.image_id, n.neighbour_image_id)
                                                               for n in indexed}) / max(1, len(exact)), 4)
            per_image = timings["hnsw_sample_s"] / max(1, len(table.rows_of(set(sample))))
            timings["hnsw_pass_estimate_s"] = round(per_image * len(table), 1)
        result.update(timings=timings, stats=stats, settings={
            k: cleanup_setting(k) for k in ("PHASH_MAX_DISTANCE", "THUMB_MAX_DIFFERENCE", "VISUAL_NEIGHBOURS",
                                            "VISUAL_SURE", "ORB_FEATURE_SIZE", "ORB_FEATURE_COUNT")})
        result["load_average_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
