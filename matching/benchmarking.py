"""The pieces of ``manage.py benchmark`` (DESIGN §5), run inside a throwaway database."""
from __future__ import annotations

import io
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.db import connection
from PIL import Image

from catalog.imaging import load_image
from catalog.models import Category, CategoryKind, Product, ProductImage

from . import conf, search, services
from .models import EmbeddingModel, ModelState

FILTER_KIND = CategoryKind.FOOTWEAR
FILTER_SHARE = 20  # every 20th product is footwear: the filter keeps 5% of rows


def machine() -> dict:
    """What the figures were measured on: the same commands read 1.5-2 times apart on the CPUs this project has run
    on (docs/matching.md, "Figures by machine"), so every benchmark records its CPU."""
    import onnxruntime
    import openvino
    import torch

    from .embedders import get_embedder
    from .embedders.runtimes import openvino_precision
    from .training.network import native_bfloat16

    model = ""
    try:
        with open("/proc/cpuinfo") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "native_bfloat16": native_bfloat16(),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "openvino": openvino.__version__, "openvino_precision": openvino_precision(),
            "embed_runtime": get_embedder().runtime}


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 2)


def synthetic_vectors(n: int, *, seed: int, dimension: int, clusters: int = 200, latent: int = 48) -> np.ndarray:
    """Unit vectors shaped like image embeddings: cluster centres (product types), variation along a
    shared low-dimensional subspace (colour, shape, pose) and a little isotropic noise. Pure isotropic
    noise in 1280-d makes every neighbour nearly equidistant, which no real embedding does.

    Every part's spread is per coordinate, so centre, subspace and noise keep the same shares of a vector's
    length at any ``dimension`` (the 48-d subspace is a larger part of a 256-d space than of a 1280-d one).
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


def stand_in_model(dimension: int) -> EmbeddingModel:
    """A version row for synthetic vectors of a size no configured embedder makes (search figures only)."""
    return EmbeddingModel.objects.create(
        name=f"synthetic-{dimension}d", backbone="synthetic", weights_checksum="", dimension=dimension,
        state=ModelState.READY,
    )


def synthetic_catalogue(n: int, *, model_id: int, dimension: int | None = None, seed: int = 0, chunk: int = 20_000,
                        progress: Callable[[str], None] | None = None, build_index: bool = True,
                        **index_options: int) -> dict:
    """``n`` synthetic products with one image and one vector each; 5% footwear. Returns timings.

    ``dimension``: the vectors' size, the model's by default (a model's vectors all have its dimension).
    ``index_options``: ``m``, ``ef_construction`` for ``search.vector_index_build``.
    ``build_index=False`` leaves the HNSW indexes dropped (a benchmark of exact passes needs none).
    """
    dimension = dimension or EmbeddingModel.objects.get(pk=model_id).dimension
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
        search.embeddings_bulk_load(model_id=model_id, image_ids=image_ids[start : start + chunk], vectors=vectors)
        if progress:
            progress(f"loaded {min(n, start + chunk)} vectors")
    loaded = time.perf_counter() - started
    if not build_index:
        return {"load_s": round(loaded, 1), "index_build_s": None}
    started = time.perf_counter()
    per_index = search.vector_index_build(**index_options)
    return {"load_s": round(loaded, 1), "index_build_s": round(time.perf_counter() - started, 1),
            "index_build_s_per_index": per_index, "index_mb": search.vector_index_sizes()}


class SearchClock:
    """Times one search three ways: wall clock; CPU actually spent on it (this thread plus the database
    backend serving the connection); and the backend's wait for a core.

    On a shared 2-core machine the wall clock is mostly waiting: the CPU figure is what the search costs
    (close to its latency on an idle machine, minus the local socket's hand-overs). The backend's figures come
    from Linux's ``/proc/<pid>/schedstat`` (nanoseconds on a CPU, waiting on the run queue) and are ``None``
    when the database server is on another machine.
    """

    def __init__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.path = Path(f"/proc/{cursor.fetchone()[0]}/schedstat")
        self.local = self.path.exists()
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.wait: list[float] = []

    def _backend(self) -> tuple[int, int]:
        if not self.local:
            return 0, 0
        on_cpu, waiting, _ = self.path.read_text().split()
        return int(on_cpu), int(waiting)

    def time(self, call: Callable[[], object]) -> object:
        backend, thread, started = self._backend(), time.thread_time_ns(), time.perf_counter_ns()
        value = call()
        wall, thread = time.perf_counter_ns() - started, time.thread_time_ns() - thread
        on_cpu, waiting = (after - before for after, before in zip(self._backend(), backend, strict=True))
        self.wall.append(wall / 1e6)
        self.cpu.append((thread + on_cpu) / 1e6)
        self.wait.append(waiting / 1e6)
        return value

    def figures(self, label: str) -> dict:
        figures = {f"{label}_ms_p50": percentile(self.wall, 50), f"{label}_ms_p95": percentile(self.wall, 95)}
        if self.local:
            figures |= {f"{label}_cpu_ms_p50": percentile(self.cpu, 50),
                        f"{label}_cpu_ms_p95": percentile(self.cpu, 95),
                        f"{label}_backend_wait_ms_p95": percentile(self.wait, 95)}
        return figures


def search_figures(*, model_id: int, dimension: int, queries: int, seed: int) -> dict:
    """Latency and recall@10 (against exact search) without and with the 5% filter, and the graphs the
    planner picks for each."""
    vectors = synthetic_vectors(queries, seed=seed + 10_000_000, dimension=dimension)
    footwear = {"category_kind": FILTER_KIND}
    figures: dict = {"search_plan": search.search_plan(vectors[0], model_id=model_id),
                     "filtered_search_plan": search.search_plan(vectors[0], model_id=model_id, filters=footwear)}
    runs = (("search", None, "auto"), ("filtered_search", footwear, "auto"),
            ("filtered_exact", footwear, "exact"), ("filtered_hnsw_iterative", footwear, "hnsw"))
    for label, filters, strategy in runs:
        # Exact answers first: an exact scan between two timed searches would push the graph out of the
        # caches, which no search-serving workload does (measured: CPU per search ~1.7x, wall p95 ~3x).
        truths = [{h.product_id for h in search.nearest_products(v, model_id=model_id, k=10, filters=filters,
                                                                 strategy="exact")} for v in vectors]
        for vector in vectors[:3]:  # warm caches and the connection
            search.nearest_products(vector, model_id=model_id, k=10, filters=filters, strategy=strategy)
        clock, recalls, counts = SearchClock(), [], []
        for vector, truth in zip(vectors, truths, strict=True):
            hits = clock.time(lambda v=vector, f=filters, s=strategy: search.nearest_products(
                v, model_id=model_id, k=10, filters=f, strategy=s))
            recalls.append(len({h.product_id for h in hits} & truth) / max(1, len(truth)))
            counts.append(len(hits))
        figures |= clock.figures(label)
        figures[f"{label}_recall@10"] = round(float(np.mean(recalls)), 4)
        figures[f"{label}_rows_min"] = int(min(counts))
    return figures


def ef_search_sweep(*, model_id: int, dimension: int, queries: int, seed: int,
                    values: tuple[int, ...] = (40, 80, 120, 200)) -> dict:
    """Unfiltered top-10 latency and recall for several ``hnsw.ef_search`` values on the same index."""
    vectors = synthetic_vectors(queries, seed=seed + 20_000_000, dimension=dimension)
    truths = [{h.product_id for h in search.nearest_products(v, model_id=model_id, k=10, strategy="exact")}
              for v in vectors]
    sweep = {}
    for ef in values:
        clock, recalls = SearchClock(), []
        for vector, truth in zip(vectors, truths, strict=True):
            hits = clock.time(lambda v=vector, e=ef: search.nearest_products(
                v, model_id=model_id, k=10, strategy="hnsw", ef_search=e))
            recalls.append(len({h.product_id for h in hits} & truth) / 10)
        sweep[str(ef)] = {key.removeprefix("s_"): value for key, value in clock.figures("s").items()}
        sweep[str(ef)]["recall@10"] = round(float(np.mean(recalls)), 4)
    return sweep


def studio_photos(data_dir: Path, count: int) -> list[bytes]:
    paths = sorted((data_dir / "catalog-photos" / "images").glob("*.jpg"))[:count]
    return [path.read_bytes() for path in paths]


def embed_figures(photos: list[bytes]) -> dict:
    """Embedding alone, and ingestion as the catalogue does it: decode, white-background mask, embed."""
    model = services.embedding_model_active()
    embedder = services.embedder_for(model)
    decoded = [load_image(data).image for data in photos]
    embedder.embed(decoded[: embedder.batch_size])  # load the session and meet a whole batch once, as a served one has
    started = time.perf_counter()
    embedder.embed(decoded)
    embed_rate = len(decoded) / (time.perf_counter() - started)
    started = time.perf_counter()
    views = [services.catalog_views(load_image(data).image, context=embedder.context_view,
                                    rule=embedder.studio_mask_rule) for data in photos]
    embedder.embed_groups(views)
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
