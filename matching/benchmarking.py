"""The pieces of ``manage.py benchmark`` (DESIGN §5), run inside a throwaway database."""
from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.db import connection
from PIL import Image

from catalog.imaging import load_image
from catalog.models import Category, CategoryKind, Product, ProductImage

from . import conf, search, services

FILTER_KIND = CategoryKind.FOOTWEAR
FILTER_SHARE = 20  # every 20th product is footwear: the filter keeps 5% of rows


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 2)


def synthetic_vectors(n: int, *, seed: int, clusters: int = 200, latent: int = 48,
                      dimension: int = search.EMBEDDING_DIMENSION) -> np.ndarray:
    """Unit vectors shaped like image embeddings: cluster centres (product types), variation along a
    shared low-dimensional subspace (colour, shape, pose) and a little isotropic noise. Pure isotropic
    noise in 1280-d makes every neighbour nearly equidistant, which no real embedding does.
    """
    dim = dimension
    basis_rng = np.random.default_rng(12345)  # one "embedding space" shared by catalogue and queries
    centres = basis_rng.normal(size=(clusters, dim)).astype(np.float32)
    basis = (0.12 * basis_rng.normal(size=(latent, dim))).astype(np.float32)
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, clusters, n)]
    vectors += rng.normal(size=(n, latent)).astype(np.float32) @ basis
    vectors += 0.1 * rng.normal(size=vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def synthetic_catalogue(n: int, *, model_id: int, seed: int = 0, chunk: int = 20_000,
                        progress: Callable[[str], None] | None = None, dimension: int = search.EMBEDDING_DIMENSION,
                        build_index: bool = True) -> dict:
    """``n`` synthetic products with one image and one vector each; 5% footwear. Returns timings.

    ``build_index=False`` leaves the HNSW indexes dropped (a benchmark of exact passes needs none)."""
    top = Category.objects.create(name="Bench tops", slug="bench-tops", kind=CategoryKind.TOPWEAR)
    shoes = Category.objects.create(name="Bench shoes", slug="bench-shoes", kind=FILTER_KIND)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Product._meta.db_table} (sku, name, brand, category_id, gender, colour, status,"
            f" is_synthetic, created_at, updated_at)"
            f" SELECT 'BENCH-' || g, 'Synthetic ' || g, '', CASE WHEN g %% {FILTER_SHARE} = 0 THEN %s ELSE %s END,"
            f" 'unisex', '', 'active', true, now(), now() FROM generate_series(1, %s) AS g",
            [shoes.pk, top.pk, n],
        )
        cursor.execute(
            f"INSERT INTO {ProductImage._meta.db_table} (product_id, file, role, width, height, sha256,"
            f" quality_flags, is_synthetic, created_at)"
            f" SELECT id, 'bench/' || id || '.jpg', 'primary', 224, 224, md5(id::text) || md5(id::text), '[]', true,"
            f" now() FROM {Product._meta.db_table} WHERE is_synthetic ORDER BY id"
        )
        cursor.execute(f"SELECT id FROM {ProductImage._meta.db_table} WHERE is_synthetic ORDER BY id")
        image_ids = [row[0] for row in cursor.fetchall()]
    search.vector_index_drop()
    for start in range(0, n, chunk):
        vectors = synthetic_vectors(min(chunk, n - start), seed=seed + start, dimension=dimension)
        if dimension < search.EMBEDDING_DIMENSION:  # stored zero-padded (cosine unchanged)
            vectors = np.pad(vectors, ((0, 0), (0, search.EMBEDDING_DIMENSION - dimension)))
        search.embeddings_bulk_load(model_id=model_id, image_ids=image_ids[start : start + chunk], vectors=vectors)
        if progress:
            progress(f"loaded {min(n, start + chunk)} vectors")
    loaded = time.perf_counter() - started
    if not build_index:
        return {"load_s": round(loaded, 1), "index_build_s": None}
    started = time.perf_counter()
    per_index = search.vector_index_build()
    return {"load_s": round(loaded, 1), "index_build_s": round(time.perf_counter() - started, 1),
            "index_build_s_per_index": per_index}


def search_figures(*, model_id: int, queries: int, seed: int) -> dict:
    """Latency and recall@10 (against exact search) without and with the 5% filter."""
    vectors = synthetic_vectors(queries, seed=seed + 10_000_000)
    figures: dict = {}
    footwear = {"category_kind": FILTER_KIND}
    runs = (("search", None, "auto"), ("filtered_search", footwear, "auto"),
            ("filtered_exact", footwear, "exact"), ("filtered_hnsw_iterative", footwear, "hnsw"))
    for label, filters, strategy in runs:
        for vector in vectors[:3]:  # warm caches and the connection
            search.nearest_products(vector, model_id=model_id, k=10, filters=filters, strategy=strategy)
        times, recalls, counts = [], [], []
        for vector in vectors:
            started = time.perf_counter()
            hits = search.nearest_products(vector, model_id=model_id, k=10, filters=filters, strategy=strategy)
            times.append((time.perf_counter() - started) * 1000)
            truth = search.nearest_products(vector, model_id=model_id, k=10, filters=filters, strategy="exact")
            recalls.append(len({h.product_id for h in hits} & {h.product_id for h in truth}) / max(1, len(truth)))
            counts.append(len(hits))
        figures[f"{label}_ms_p50"] = percentile(times, 50)
        figures[f"{label}_ms_p95"] = percentile(times, 95)
        figures[f"{label}_recall@10"] = round(float(np.mean(recalls)), 4)
        figures[f"{label}_rows_min"] = int(min(counts))
    return figures


def ef_search_sweep(*, model_id: int, queries: int, seed: int, values=(40, 80, 120, 200)) -> dict:  # noqa: ANN001
    """Unfiltered top-10 latency and recall for several ``hnsw.ef_search`` values on the same index."""
    vectors = synthetic_vectors(queries, seed=seed + 20_000_000)
    truths = [{h.product_id for h in search.nearest_products(v, model_id=model_id, k=10, strategy="exact")}
              for v in vectors]
    sweep = {}
    for ef in values:
        times, recalls = [], []
        for vector, truth in zip(vectors, truths, strict=True):
            started = time.perf_counter()
            hits = search.nearest_products(vector, model_id=model_id, k=10, strategy="hnsw", ef_search=ef)
            times.append((time.perf_counter() - started) * 1000)
            recalls.append(len({h.product_id for h in hits} & truth) / 10)
        sweep[str(ef)] = {"ms_p50": percentile(times, 50), "ms_p95": percentile(times, 95),
                          "recall@10": round(float(np.mean(recalls)), 4)}
    return sweep


def studio_photos(data_dir: Path, count: int) -> list[bytes]:
    paths = sorted((data_dir / "catalog-photos" / "images").glob("*.jpg"))[:count]
    return [path.read_bytes() for path in paths]


def embed_figures(photos: list[bytes]) -> dict:
    """Embedding alone, and ingestion as the catalogue does it: decode, white-background mask, embed."""
    model = services.embedding_model_active()
    embedder = services.embedder_for(model)
    decoded = [load_image(data).image for data in photos]
    embedder.embed(decoded[:8])  # load the session
    started = time.perf_counter()
    embedder.embed(decoded)
    embed_rate = len(decoded) / (time.perf_counter() - started)
    started = time.perf_counter()
    views = [services.catalog_view(load_image(data).image) for data in photos]
    embedder.embed(views)
    ingest_rate = len(photos) / (time.perf_counter() - started)
    return {"embed_images_per_s": round(embed_rate, 1), "ingest_images_per_s": round(ingest_rate, 1)}


def phone_jpeg_12mp(data_dir: Path) -> bytes:
    """A 4000×3000 JPEG made from a real phone photo (upscaled), as a phone would send it."""
    path = sorted((data_dir / "phone-photos" / "images").glob("*.jpg"))[0]
    image = Image.open(path).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def match_figures(jpeg: bytes, *, runs: int, segment: bool | str = True) -> dict:
    services.match_image(jpeg, segment=segment)  # warm up
    times = []
    stages: dict[str, list[float]] = {}
    for _ in range(runs):
        started = time.perf_counter()
        loaded = load_image(jpeg, max_side=conf.working_size())  # what the intake worker and the API do
        load_ms = (time.perf_counter() - started) * 1000
        result = services.match_image(loaded, segment=segment)
        times.append((time.perf_counter() - started) * 1000)
        stages.setdefault("load_image", []).append(load_ms)
        for stage, ms in result.timings.items():
            stages.setdefault(stage, []).append(ms)
    return {
        "match_ms_p50": percentile(times, 50), "match_ms_p95": percentile(times, 95),
        "match_stage_ms_p50": {stage: percentile(values, 50) for stage, values in stages.items()},
        "match_segmentation": (f"cut_out ({segment if isinstance(segment, str) else 'auto'})"
                               if segment else "none (whole photo)"),
        "match_cutout_methods": sorted({f"{c.method}/{c.status}" for c in result.cutouts}),
    }


def segment_figures(data_dir: Path, count: int = 8) -> dict:
    """``segmentation.benchmark.segment_ms_p50`` when the segmentation app provides it."""
    try:
        from segmentation.benchmark import segment_ms_p50
    except ImportError:
        return {"segment_ms_p50": None}
    paths = sorted((data_dir / "phone-photos" / "images").glob("*.jpg"))[:count]
    images = [load_image(path.read_bytes()).image for path in paths]
    try:
        return {"segment_ms_p50": segment_ms_p50(images, ["grabcut", "tiramisu", "auto"])}
    except Exception as exc:  # noqa: BLE001 - the segmentation app's failure is reported, the benchmark goes on
        return {"segment_ms_p50": {"error": f"{type(exc).__name__}: {exc}"}}
