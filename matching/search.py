"""The one module that speaks pgvector: vector columns, the HNSW index, nearest-neighbour SQL.

Searches return products, not images: image hits are aggregated to their product (best image wins).

Filtered search strategy (measured by ``manage.py benchmark``; see docs/matching.md): HNSW with a
post-filter returns too few rows when the filter keeps a small share of the catalogue, and pgvector's
iterative scans bring them back but slowly (62 ms p50 for a 5% filter at 100k rows). So:

- each category kind has its own partial HNSW index (``WHERE category_kind = ...``): a kind filter walks
  a graph of just that kind;
- a filter the planner estimates to keep at most ``MATCHING["EXACT_SEARCH_MAX_ROWS"]`` rows is answered
  by an exact scan of those rows through the B-tree indexes (HNSW index scans off for the statement),
  recall 1 by construction; vectors are stored PLAIN (in the row) to make that scan cheap;
- anything else: HNSW with ``hnsw.iterative_scan = relaxed_order``, over-fetching image hits and
  re-ranking them exactly, widening the fetch until ``k`` distinct products are found.
"""
from __future__ import annotations

import json
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import psycopg
from django.apps import apps
from django.contrib.postgres.indexes import OpClass
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Cast
from pgvector.django import HalfVectorField, HnswIndex, VectorField
from pgvector.psycopg import register_vector

from catalog.models import Category, CategoryKind, Gender, Product, ProductImage, ProductStatus, Variant

from . import conf

__all__ = [
    "INDEXED_DIMENSIONS", "HnswIndex", "ImageNeighbour", "LabelledHit", "LabelledVectors", "ProductHit",
    "SearchFilters", "SearchableVectors", "VectorField", "embeddings_follow_images", "embeddings_labelled",
    "embeddings_searchable", "embeddings_upsert", "hnsw_indexes", "image_neighbours", "nearest_labelled",
    "nearest_products", "search_plan", "similar_pairs", "similar_products", "query_expression", "vector_expression",
]

class Graph(NamedTuple):
    """How the HNSW graphs of one vector size are built."""

    type: str  # "vector" (float32) or "halfvec" (float16: half the graph; distances still re-ranked in float32)
    ef_construction: int
    m: int = 16


# Vectors are stored at their model's own dimension in an untyped ``vector`` column. Each size listed here
# has its own HNSW graphs (one main graph and one per category kind): expression indexes over
# ``vector::<type>(N)`` limited to ``dimensions = N``. A vector of any other size is stored and searched
# exactly (right answers, cost linear in the model's rows): list its size here, with a migration, to index it.
# Measured at 100k (docs/matching.md): 256-d with ef_construction 128 reaches recall@10 1.0 at ef_search 80
# (0.96 with 64); the 1280-d fallback's graph in halfvec is half the size and builds faster, same recall. 512-d:
# the shipped two-tail embedder (256-d: the single-tail one, still served until an installation has switched).
INDEXED_DIMENSIONS: dict[int, Graph] = {256: Graph("vector", ef_construction=128),
                                        512: Graph("vector", ef_construction=128),
                                        768: Graph("vector", ef_construction=128), 1280: Graph("halfvec", 64)}
MAX_DIMENSION = 2000  # the largest vector pgvector's HNSW can index
MAX_K = 50
SEARCHABLE_STATUSES = (ProductStatus.ACTIVE, ProductStatus.DRAFT)  # merged and retired never match
# Whose labels teach classification: drafts carry a worker's guess, merged and retired products real labels.
LABEL_STATUSES = (ProductStatus.ACTIVE, ProductStatus.MERGED, ProductStatus.RETIRED)
TABLE = "matching_productembedding"


class FilterError(ValueError):
    """A search filter that does not exist or has the wrong type."""


@dataclass(frozen=True)
class ProductHit:
    product_id: int
    image_id: int
    score: float  # cosine similarity, higher is better


@dataclass(frozen=True)
class SearchFilters:
    """A validated search filter: every value is checked on construction, so ``sql()`` can trust it."""

    category_kind: str | None = None
    category_id: int | None = None
    gender: str | None = None
    in_stock: bool = False
    statuses: tuple[str, ...] = SEARCHABLE_STATUSES

    def __post_init__(self) -> None:
        if self.category_kind is not None and self.category_kind not in CategoryKind.values:
            raise FilterError(
                f"Unknown category kind {self.category_kind!r}; use one of {', '.join(CategoryKind.values)}."
            )
        category_id = self.category_id
        if category_id is not None and (isinstance(category_id, bool) or not isinstance(category_id, int)):
            raise FilterError("category_id must be a number.")
        if self.gender is not None and self.gender not in Gender.values:
            raise FilterError(f"Unknown gender {self.gender!r}; use one of {', '.join(Gender.values)}.")
        if not isinstance(self.in_stock, bool):
            raise FilterError("in_stock must be true or false.")
        statuses = tuple(self.statuses) if isinstance(self.statuses, list | tuple) else (self.statuses,)
        unknown = [status for status in statuses if status not in ProductStatus.values]
        if unknown or not statuses:
            raise FilterError(f"Unknown product status(es) {unknown}; use any of {', '.join(ProductStatus.values)}.")
        object.__setattr__(self, "statuses", statuses)

    @classmethod
    def from_dict(cls, data: dict | None) -> SearchFilters:
        """Filters from request data: values may come as strings ("3", "true")."""
        data = data or {}
        if not isinstance(data, dict):
            raise FilterError("Filters must be an object.")
        unknown = set(data) - {"category_kind", "category_id", "gender", "in_stock", "status"}
        if unknown:
            raise FilterError(f"Unknown filter(s): {', '.join(sorted(unknown))}.")
        status = data.get("status")
        statuses = SEARCHABLE_STATUSES if not status else ((status,) if isinstance(status, str) else tuple(status))
        category_id = data.get("category_id")
        try:
            category_id = int(category_id) if category_id not in (None, "") else None
        except (TypeError, ValueError) as exc:
            raise FilterError("category_id must be a number.") from exc
        in_stock = data.get("in_stock", False)
        if isinstance(in_stock, str):
            in_stock = in_stock.strip().lower() in {"1", "true", "yes", "on"}
        return cls(
            category_kind=data.get("category_kind") or None,
            category_id=category_id,
            gender=data.get("gender") or None,
            in_stock=bool(in_stock),
            statuses=statuses,
        )

    @property
    def selective(self) -> bool:
        """Whether the filter may keep a small share of rows (worth counting before choosing a plan)."""
        return bool(self.category_kind or self.category_id or self.gender or self.in_stock)

    def sql(self, model_id: int, dimension: int, exclude_product_ids: Sequence[int] = ()) -> tuple[str, list]:
        # The dimension is a literal too: the planner matches a size's HNSW graphs by their predicate.
        clauses, params = ["model_id = %s", f"dimensions = {_checked_dimension(dimension)}"], [model_id]
        if self.category_kind:
            # A literal (checked in __post_init__), so the planner can match the kind's partial HNSW index.
            clauses.append(f"category_kind = '{self.category_kind}'")
        if self.category_id:
            clauses.append("category_id = %s")
            params.append(self.category_id)
        if self.gender:
            clauses.append("gender = %s")
            params.append(self.gender)
        if self.in_stock:
            clauses.append("in_stock")
        clauses.append("status = ANY(%s)")
        params.append(list(self.statuses))
        if exclude_product_ids:
            clauses.append("NOT (product_id = ANY(%s))")
            params.append(list(exclude_product_ids))
        return " AND ".join(clauses), params


def hnsw_indexes() -> list[HnswIndex]:
    """The HNSW graphs of ``ProductEmbedding``: for each size in ``INDEXED_DIMENSIONS`` one main graph and one
    per category kind (a kind filter, say footwear at 5 % of rows, walks its own small graph instead of
    post-filtering the big one). Expression indexes over ``vector_expression(N)``, limited to ``dimensions = N``.
    """
    def index(dimension: int, name: str, condition: Q) -> HnswIndex:
        graph = INDEXED_DIMENSIONS[dimension]
        field = HalfVectorField if graph.type == "halfvec" else VectorField
        return HnswIndex(
            OpClass(Cast("vector", field(dimensions=dimension)), name=f"{graph.type}_cosine_ops"),
            name=name, m=graph.m, ef_construction=graph.ef_construction, condition=Q(dimensions=dimension) & condition,
        )

    return [
        graph
        for dimension in INDEXED_DIMENSIONS
        for graph in (
            index(dimension, f"pe_hnsw_{dimension}", Q()),
            *(index(dimension, f"pe_hnsw_{dimension}_{kind.replace('-', '_')}", Q(category_kind=kind))
              for kind in CategoryKind.values),
        )
    ]


_registered: weakref.WeakSet = weakref.WeakSet()


def _cursor() -> psycopg.Cursor:
    """A server-side-binding cursor on Django's connection, with pgvector's binary dumpers.

    Django binds parameters on the client, as text; a 1280-d vector as text costs milliseconds to
    format and parse, twice per query. Binary (``%b``) costs microseconds. Same connection, same
    transaction as the ORM.
    """
    connection.ensure_connection()
    raw = connection.connection
    if raw not in _registered:
        register_vector(raw)
        _registered.add(raw)
    return psycopg.Cursor(raw)


def _checked_dimension(dimension: int) -> int:
    whole = isinstance(dimension, int | np.integer) and not isinstance(dimension, bool)
    if not whole or not 1 <= dimension <= MAX_DIMENSION:
        raise ValueError(f"A vector has 1 to {MAX_DIMENSION} dimensions, got {dimension!r}.")
    return int(dimension)


def as_query_vector(vector: np.ndarray | Sequence[float]) -> np.ndarray:
    """A float32 vector as stored: its own dimension (a model's vectors all have the model's dimension)."""
    array = np.asarray(vector, dtype=np.float32).ravel()
    _checked_dimension(array.shape[0])
    return array


def vector_expression(dimension: int, column: str = "vector") -> str:
    """``column`` as the HNSW graphs of ``dimension`` see it: every ordering by distance uses exactly this, with
    a literal ``dimensions = N`` predicate, so the planner can match the size's graphs."""
    return f"({column}::{_graph_type(dimension)}({_checked_dimension(dimension)}))"


def query_expression(dimension: int) -> str:
    """The bound query vector (``%b``, sent as float32) as ``vector_expression(dimension)`` is compared with."""
    graph_type = _graph_type(dimension)
    return "%b" if graph_type == "vector" else f"%b::{graph_type}({dimension})"


def _graph_type(dimension: int) -> str:
    graph = INDEXED_DIMENSIONS.get(dimension)
    return graph.type if graph else "vector"


def _numpy(value: object) -> np.ndarray:
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def vector_literal(vector: np.ndarray | Sequence[float]) -> str:
    """pgvector's text form (for array parameters, which cannot be sent in binary here)."""
    values = np.round(as_query_vector(vector).astype(np.float64), 7).tolist()
    return "[" + ",".join(map(repr, values)) + "]"


def _model_dimension(model_id: int) -> int:
    """The dimension of ``model_id``'s vectors (``EmbeddingModel.dimension``); every write checks it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT dimension FROM {_model_table()} WHERE id = %s", [model_id])
        row = cursor.fetchone()
    if row is None:
        raise ValueError(f"No embedding model {model_id}.")
    return int(row[0])


def _model_table() -> str:
    return apps.get_model("matching", "EmbeddingModel")._meta.db_table


def _check_model_dimension(model_id: int, dimension: int) -> None:
    expected = _model_dimension(model_id)
    if dimension != expected:
        raise ValueError(f"Embedding model {model_id} makes {expected}-d vectors, got {dimension}-d.")


def nearest_products(
    vector: np.ndarray, *, model_id: int, k: int = 10, filters: SearchFilters | dict | None = None,
    exclude_product_ids: Sequence[int] = (), strategy: str = "auto", ef_search: int | None = None,
) -> list[ProductHit]:
    """The ``k`` products nearest to ``vector`` under ``filters``, best first (one hit per product).

    ``strategy``: "auto" (see module docstring), "hnsw" or "exact" (ground truth for benchmarks).
    """
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}.")
    if not isinstance(filters, SearchFilters):
        filters = SearchFilters.from_dict(filters)
    query = as_query_vector(vector)
    dimension = query.shape[0]
    where, params = filters.sql(model_id, dimension, exclude_product_ids)
    if strategy == "auto":
        strategy = "hnsw"
        # A kind filter has its own partial index: no need to ask the planner. Other selective filters
        # (gender, category, in stock) are answered exactly when the planner expects few rows.
        wide = filters.category_kind is not None or not filters.selective
        if not wide and _estimated_rows(where, params) <= conf.exact_search_max_rows():
            strategy = "exact"
    if strategy == "exact":
        hits = _exact(query, where, params, k)
    elif strategy == "hnsw":
        hits = _hnsw(query, where, params, k, ef_search or conf.hnsw_ef_search())
    else:
        raise ValueError(f"Unknown search strategy {strategy!r}: use auto, hnsw or exact.")
    if not hits:
        # The model's rows all have its dimension: a query of another size finds nothing, so say why.
        _check_model_dimension(model_id, dimension)
    return hits


def _estimated_rows(where: str, params: list) -> int:
    """The planner's estimate of the rows a filter keeps (statistics only; a fraction of a millisecond)."""
    with _cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {TABLE} WHERE {where}", params, prepare=False)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def _fetch_with_settings(settings: dict[str, str], sql: str, params: list, *, prepare: bool | None = None) -> list:
    """The rows of ``sql`` run with ``settings`` local to its transaction, in one round trip.

    Pipelined: the ``set_config`` and the statement travel together and, outside a transaction, share the
    implicit transaction that ends at the pipeline's sync, so the settings end there too (inside one, they
    last until it ends, as SET LOCAL would). BEGIN, SET LOCAL, SELECT, COMMIT cost four round trips, and on a
    busy machine each is a wait for a core.
    """
    calls = ", ".join("set_config(%s, %s, true)" for _ in settings)
    with _cursor() as cursor:
        with cursor.connection.pipeline():
            cursor.execute(f"SELECT {calls}", [value for item in settings.items() for value in item])
            cursor.execute(sql, params, prepare=prepare)
        return cursor.fetchall()


def _exact(query: np.ndarray, where: str, params: list, k: int) -> list[ProductHit]:
    sql = (
        f"SELECT product_id, image_id, distance FROM ("
        f" SELECT DISTINCT ON (product_id) product_id, image_id, vector <=> %b AS distance"
        f" FROM {TABLE} WHERE {where} ORDER BY product_id, distance, image_id"
        f") AS best ORDER BY distance, product_id LIMIT %s"
    )
    # B-tree bitmap scans stay; HNSW ordering is off
    rows = _fetch_with_settings({"enable_indexscan": "off"}, sql, [query, *params, k])
    return [ProductHit(product_id=p, image_id=i, score=1.0 - float(d)) for p, i, d in rows]


def _hnsw(query: np.ndarray, where: str, params: list, k: int, ef_search: int) -> list[ProductHit]:
    rows = _hnsw_rows(query, where, params, k, ef_search, columns="product_id, image_id")
    return [ProductHit(product_id=p, image_id=i, score=1.0 - float(d)) for p, i, d in _best_per_product(rows, k)]


def _hnsw_rows(query: np.ndarray, where: str, params: list, k: int, ef_search: int, *, columns: str) -> list[tuple]:
    """Image hits ``(product_id, *other columns, distance)`` nearest first, over-fetched and widened until
    they cover ``k`` distinct products (or the filter has no more)."""
    fetch = max(k * 3, 20)
    limit = max(1000, k * 40)
    sql = _hnsw_sql(len(query), where, columns)
    while True:
        rows = _fetch_with_settings(
            {"hnsw.ef_search": str(max(ef_search, fetch)), "hnsw.iterative_scan": "relaxed_order"},
            sql, [query, *params, query, fetch], prepare=False,
        )
        if len(rows) < fetch or fetch >= limit or len(_best_per_product(rows, k)) >= k:
            return rows
        fetch = min(fetch * 4, limit)


def _hnsw_sql(dimension: int, where: str, columns: str) -> str:
    vector = vector_expression(dimension)
    return (
        f"WITH hits AS MATERIALIZED ("
        f" SELECT {columns}, image_id AS tie, vector <=> %b AS distance FROM {TABLE}"
        f" WHERE {where} ORDER BY {vector} <=> {query_expression(dimension)} LIMIT %s"
        f") SELECT {columns}, distance FROM hits ORDER BY distance, tie"
    )


def search_plan(vector: np.ndarray, *, model_id: int, filters: SearchFilters | dict | None = None) -> list[str]:
    """The indexes the planner picks for the HNSW statement ``nearest_products`` runs (benchmark, tests)."""
    query = as_query_vector(vector)
    if not isinstance(filters, SearchFilters):
        filters = SearchFilters.from_dict(filters)
    where, params = filters.sql(model_id, len(query))
    with _cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {_hnsw_sql(len(query), where, 'product_id')}",
                       [query, *params, query, 30], prepare=False)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)

    def names(node: dict) -> list[str]:
        own = [node["Index Name"]] if "Index Name" in node else []
        return own + [name for child in node.get("Plans", []) for name in names(child)]

    return names(plan[0]["Plan"])


def _best_per_product(rows: Iterable[tuple], k: int) -> list[tuple]:
    """The first row of each product (rows come nearest first), at most ``k``."""
    seen: dict[int, tuple] = {}
    for row in rows:
        if row[0] not in seen:
            seen[row[0]] = row
            if len(seen) == k:
                break
    return list(seen.values())


def similar_products(product_id: int, *, model_id: int, k: int = 10, filters: dict | None = None) -> list[ProductHit]:
    """The products nearest to any image of ``product_id`` (itself excluded), best first."""
    with _cursor() as cursor:
        cursor.execute(f"SELECT vector FROM {TABLE} WHERE model_id = %s AND product_id = %s", [model_id, product_id])
        vectors = [_numpy(vector) for (vector,) in cursor.fetchall()]
    best: dict[int, ProductHit] = {}
    for vector in vectors:
        for hit in nearest_products(vector, model_id=model_id, k=k, filters=filters, exclude_product_ids=[product_id]):
            if hit.product_id not in best or hit.score > best[hit.product_id].score:
                best[hit.product_id] = hit
    return sorted(best.values(), key=lambda hit: -hit.score)[:k]


def similar_pairs(*, model_id: int, min_similarity: float, neighbours: int = 10) -> list[tuple[int, int, float]]:
    """All product pairs whose best image pair is at least ``min_similarity`` alike, in one pass.

    Each image asks the HNSW index for its ``neighbours`` nearest images (a LATERAL join), so a pair is
    found when either side ranks the other among its neighbours. Returns (product_a, product_b, similarity)
    with a < b, most similar first. Duplicate-hunting for catalogue cleanup.
    """
    dimension = _model_dimension(model_id)
    a_vector, b_vector = vector_expression(dimension, "a.vector"), vector_expression(dimension, "b.vector")
    sql = (
        f"SELECT LEAST(a.product_id, n.product_id), GREATEST(a.product_id, n.product_id), max(1 - n.distance)"
        f" FROM {TABLE} AS a CROSS JOIN LATERAL ("
        f"  SELECT b.product_id, b.vector <=> a.vector AS distance FROM {TABLE} AS b"
        f"  WHERE b.model_id = a.model_id AND b.dimensions = {dimension} ORDER BY {b_vector} <=> {a_vector} LIMIT %s"
        f" ) AS n"
        f" WHERE a.model_id = %s AND a.dimensions = {dimension} AND n.product_id <> a.product_id AND n.distance <= %s"
        f" GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(40, neighbours * 2))])
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(sql, [neighbours + 1, model_id, 1.0 - float(min_similarity)])
        return [(int(a), int(b), float(s)) for a, b, s in cursor.fetchall()]


@dataclass(frozen=True)
class ImageNeighbour:
    image_id: int
    product_id: int
    neighbour_image_id: int
    neighbour_product_id: int
    similarity: float


def image_neighbours(
    *, model_id: int, k: int, min_similarity: float = -1.0, product_ids: Sequence[int] | None = None,
) -> list[ImageNeighbour]:
    """For each searchable image (of ``product_ids``, or all), its ``k`` nearest images of OTHER searchable
    products, in one pass (a LATERAL join over the HNSW index). Merged and retired products take no part.

    Catalogue cleanup uses it for duplicate candidates and for the neighbours' label vote.
    """
    fetch = k + 8  # the product's own other photos are dropped after the index hands back its top rows
    statuses = list(SEARCHABLE_STATUSES)
    scope, params = "", []
    if product_ids is not None:
        scope, params = " AND a.product_id = ANY(%s)", [[int(p) for p in product_ids]]
    # The inner query filters on nothing but the model, so each image's lookup is one walk of the HNSW
    # graph (a status filter there makes the planner fall back to exact scans: quadratic). Merged and
    # retired neighbours are dropped afterwards; they are few.
    dimension = _model_dimension(model_id)
    a_vector, b_vector = vector_expression(dimension, "a.vector"), vector_expression(dimension, "b.vector")
    sql = (
        f"SELECT a.image_id, a.product_id, n.image_id, n.product_id, 1 - n.distance FROM {TABLE} AS a"
        f" CROSS JOIN LATERAL ("
        f"  SELECT b.image_id, b.product_id, b.status, b.vector <=> a.vector AS distance FROM {TABLE} AS b"
        f"  WHERE b.model_id = a.model_id AND b.dimensions = {dimension} ORDER BY {b_vector} <=> {a_vector} LIMIT %s"
        f" ) AS n"
        f" WHERE a.model_id = %s AND a.dimensions = {dimension} AND a.status = ANY(%s){scope} AND n.status = ANY(%s)"
        f" AND n.product_id <> a.product_id AND n.distance <= %s"
        f" ORDER BY a.image_id, n.distance, n.image_id"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(40, fetch * 2))])
        cursor.execute(sql, [fetch, model_id, statuses, *params, statuses, 1.0 - float(min_similarity)])
        rows = cursor.fetchall()
    out: list[ImageNeighbour] = []
    per_image: dict[int, int] = {}
    for image_id, product_id, n_image, n_product, similarity in rows:
        if per_image.get(image_id, 0) >= k:
            continue
        per_image[image_id] = per_image.get(image_id, 0) + 1
        out.append(ImageNeighbour(int(image_id), int(product_id), int(n_image), int(n_product), float(similarity)))
    return out


def embeddings_follow_images(*, image_ids: Sequence[int]) -> int:
    """Re-attach the vectors of ``image_ids`` to the product each image now belongs to (after a merge or
    its undo moved photos), with that product's filter columns."""
    if not image_ids:
        return 0
    image_t, product_t = ProductImage._meta.db_table, Product._meta.db_table
    category_t, variant_t = Category._meta.db_table, Variant._meta.db_table
    sql = (
        f"UPDATE {TABLE} AS e SET product_id = p.id, category_id = p.category_id, category_kind = c.kind,"
        f" gender = p.gender, status = p.status,"
        f" in_stock = EXISTS (SELECT 1 FROM {variant_t} v WHERE v.product_id = p.id AND v.stock_quantity > 0)"
        f" FROM {image_t} i JOIN {product_t} p ON p.id = i.product_id JOIN {category_t} c ON c.id = p.category_id"
        f" WHERE e.image_id = i.id AND i.id = ANY(%s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[int(i) for i in image_ids]])
        return cursor.rowcount
# Both writers insert these columns; a replaced vector refreshes every one of them (created_at: when computed).
_UPSERT_COLUMNS = (
    "product_id", "image_sha256", "category_id", "category_kind", "gender", "status", "in_stock", "vector",
    "created_at",
)
_UPSERT_UPDATES = ", ".join(f"{column} = EXCLUDED.{column}" for column in _UPSERT_COLUMNS)


def _check_vectors(model_id: int, vectors: np.ndarray | Sequence) -> None:
    """Every vector must have the model's dimension: a model's search only sees rows of its size."""
    sizes = {len(vector) for vector in vectors}
    for size in sizes:
        _checked_dimension(size)
    if len(sizes) > 1:
        raise ValueError(f"Vectors of one model all have one dimension, got {sorted(sizes)}.")
    if sizes:
        _check_model_dimension(model_id, sizes.pop())


def embeddings_upsert(*, model_id: int, image_ids: Sequence[int], vectors: np.ndarray) -> int:
    """Store one vector per image for ``model_id`` (replacing an older one), with the filter columns."""
    if len(image_ids) != len(vectors):
        raise ValueError("one vector per image")
    if not len(image_ids):
        return 0
    _check_vectors(model_id, vectors)
    image_t, product_t = ProductImage._meta.db_table, Product._meta.db_table
    category_t, variant_t = Category._meta.db_table, Variant._meta.db_table
    sql = (
        f"INSERT INTO {TABLE} (image_id, model_id, product_id, image_sha256, category_id, category_kind, gender,"
        f" status, in_stock, vector, created_at)"
        f" SELECT i.id, %s, p.id, i.sha256, p.category_id, c.kind, p.gender, p.status,"
        f" EXISTS (SELECT 1 FROM {variant_t} v WHERE v.product_id = p.id AND v.stock_quantity > 0),"
        f" data.vector::vector, now()"
        f" FROM unnest(%s::bigint[], %s::text[]) AS data(image_id, vector)"
        f" JOIN {image_t} i ON i.id = data.image_id JOIN {product_t} p ON p.id = i.product_id"
        f" JOIN {category_t} c ON c.id = p.category_id"
        f" ON CONFLICT (image_id, model_id) DO UPDATE SET {_UPSERT_UPDATES}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [model_id, [int(i) for i in image_ids], [vector_literal(v) for v in vectors]])
        return cursor.rowcount


def embeddings_bulk_load(*, model_id: int, image_ids: Sequence[int], vectors: np.ndarray) -> int:
    """Fast path for large loads (benchmarks, migrations between servers): binary COPY, then the upsert join.

    Drop the HNSW index first (``vector_index_drop``) and rebuild it afterwards: building once is much
    faster than inserting 100k vectors into a live graph.
    """
    if len(image_ids) != len(vectors):
        raise ValueError("one vector per image")
    _check_vectors(model_id, vectors)
    raw = _cursor().connection
    image_t, product_t, category_t, variant_t = (
        ProductImage._meta.db_table, Product._meta.db_table, Category._meta.db_table, Variant._meta.db_table,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE matching_staging (image_id bigint, vector vector) ON COMMIT DROP")
        with raw.cursor().copy("COPY matching_staging (image_id, vector) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "vector"])
            for image_id, vector in zip(image_ids, vectors, strict=True):
                copy.write_row((int(image_id), np.asarray(vector, dtype=np.float32)))
        cursor.execute(
            f"INSERT INTO {TABLE} (image_id, model_id, product_id, image_sha256, category_id, category_kind, gender,"
            f" status, in_stock, vector, created_at)"
            f" SELECT i.id, %s, p.id, i.sha256, p.category_id, c.kind, p.gender, p.status,"
            f" EXISTS (SELECT 1 FROM {variant_t} v WHERE v.product_id = p.id AND v.stock_quantity > 0), s.vector, now()"
            f" FROM matching_staging s JOIN {image_t} i ON i.id = s.image_id JOIN {product_t} p ON p.id = i.product_id"
            f" JOIN {category_t} c ON c.id = p.category_id"
            f" ON CONFLICT (image_id, model_id) DO UPDATE SET {_UPSERT_UPDATES}",
            [model_id],
        )
        return cursor.rowcount


def _vector_indexes() -> tuple[type, list[HnswIndex]]:
    # Looked up in the app registry: matching.models imports this module for its vector field.
    model = apps.get_model("matching", "ProductEmbedding")
    return model, [index for index in model._meta.indexes if isinstance(index, HnswIndex)]


def vector_index_drop() -> None:
    """Drop the HNSW indexes before a bulk load (``vector_index_build`` puts them back)."""
    model, indexes = _vector_indexes()
    with connection.schema_editor() as editor:
        for index in indexes:
            editor.remove_index(model, index)


def vector_index_build(
    *, maintenance_work_mem: str = "1GB", m: int | None = None, ef_construction: int | None = None,
) -> dict[str, float]:
    """(Re)create the HNSW indexes exactly as the migrations define them; seconds per index.

    ``m`` and ``ef_construction`` override the graphs' parameters (benchmark sweeps in a throwaway database).
    """
    model, indexes = _vector_indexes()
    if m or ef_construction:
        overrides = {key: value for key, value in (("m", m), ("ef_construction", ef_construction)) if value}
        indexes = [HnswIndex(*index.expressions, **{**index.deconstruct()[2], **overrides}) for index in indexes]
    seconds = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, false)", [maintenance_work_mem])
    for index in indexes:
        started = time.perf_counter()
        with connection.schema_editor() as editor:
            editor.add_index(model, index)
        seconds[index.name] = round(time.perf_counter() - started, 1)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {TABLE}")
    return seconds


def vector_index_sizes() -> dict[str, float]:
    """Megabytes of each non-empty HNSW graph (benchmark figures)."""
    _, indexes = _vector_indexes()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c WHERE c.relname = ANY(%s)",
            [[index.name for index in indexes]],
        )
        sizes = {name: round(size / 2**20, 1) for name, size in cursor.fetchall()}
    return {name: size for name, size in sorted(sizes.items()) if size >= 1}


# -- classification (gender, category kind) ------------------------------------------------------------

@dataclass(frozen=True)
class LabelledHit:
    product_id: int
    gender: str
    category_kind: str
    score: float  # cosine similarity


def nearest_labelled(
    vector: np.ndarray, *, model_id: int, k: int = 15, ef_search: int | None = None,
) -> list[LabelledHit]:
    """The ``k`` catalogue products nearest to ``vector`` (best image each) with their gender and kind.

    Only products whose labels are trusted (``LABEL_STATUSES``) take part: what kNN classification votes on.
    """
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be between 1 and {MAX_K}.")
    query = as_query_vector(vector)
    where, params = SearchFilters(statuses=LABEL_STATUSES).sql(model_id, len(query))
    rows = _hnsw_rows(
        query, where, params, k, ef_search or conf.hnsw_ef_search(),
        columns="product_id, gender, category_kind",
    )
    return [
        LabelledHit(product_id=p, gender=g, category_kind=c, score=1.0 - float(d))
        for p, g, c, d in _best_per_product(rows, k)
    ]


@dataclass(frozen=True)
class LabelledVectors:
    """Catalogue vectors with their labels, row-aligned (training data for the classification heads)."""

    image_ids: np.ndarray
    product_ids: np.ndarray
    genders: list[str]
    kinds: list[str]
    vectors: np.ndarray  # N × dimension
    appearance: np.ndarray | None = None  # N × appearance dimension, when the rows carry it (appearance.py)


def embeddings_labelled(*, model_id: int, dimension: int, max_rows: int | None = None,
                        product_ids: Iterable[int] | None = None) -> LabelledVectors:
    """Every labelled vector of ``model_id`` (products in ``LABEL_STATUSES``); ``dimension`` is the model's.

    With ``max_rows`` a stable pseudo-random sample of that size (by image id hash) keeps memory bounded
    on a large catalogue; with ``product_ids`` only those products' vectors.
    """
    order = "md5(image_id::text)" if max_rows else "image_id"
    params: list = [model_id, list(LABEL_STATUSES)]
    only = ""
    if product_ids is not None:
        only = " AND product_id = ANY(%s)"
        params.append([int(p) for p in product_ids])
    sql = (
        f"SELECT image_id, product_id, gender, category_kind, vector FROM {TABLE}"
        f" WHERE model_id = %s AND dimensions = {_checked_dimension(dimension)} AND status = ANY(%s){only}"
        f" ORDER BY {order}"
    )
    if max_rows:
        sql += " LIMIT %s"
        params.append(int(max_rows))
    with _cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    vectors = np.zeros((len(rows), dimension), dtype=np.float32)
    for n, row in enumerate(rows):
        vectors[n] = _numpy(row[4])
    return LabelledVectors(
        image_ids=np.asarray([r[0] for r in rows], dtype=np.int64),
        product_ids=np.asarray([r[1] for r in rows], dtype=np.int64),
        genders=[r[2] for r in rows], kinds=[r[3] for r in rows], vectors=vectors,
    )


@dataclass(frozen=True)
class SearchableVectors:
    """The searchable catalogue's vectors of one model, row-aligned, ordered by product then image."""

    image_ids: np.ndarray
    product_ids: np.ndarray
    vectors: np.ndarray  # N × dimension, float32


def embeddings_searchable(*, model_id: int, dimension: int, chunk: int = 10_000) -> SearchableVectors:
    """Every vector of ``model_id`` whose product is searchable (active, draft), cut to ``dimension``.

    Read through a server-side cursor ``chunk`` rows at a time (binary), so the only full-size thing in
    memory is the N × ``dimension`` result. For catalogue-wide exact neighbours (``matching.neighbours``).
    """
    sql = (
        f"SELECT image_id, product_id, vector FROM {TABLE}"
        f" WHERE model_id = %s AND status = ANY(%s) ORDER BY product_id, image_id"
    )
    ids: list[np.ndarray] = []
    products: list[np.ndarray] = []
    blocks: list[np.ndarray] = []
    raw = _cursor().connection  # with pgvector's types registered
    with transaction.atomic(), raw.cursor(name="embeddings_searchable", binary=True) as cursor:
        cursor.itersize = chunk
        cursor.execute(sql, [model_id, list(SEARCHABLE_STATUSES)])
        while rows := cursor.fetchmany(chunk):
            ids.append(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))
            products.append(np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)))
            block = np.empty((len(rows), dimension), dtype=np.float32)
            for n, row in enumerate(rows):
                block[n] = _numpy(row[2])[:dimension]  # each model's vectors are stored at its own dimension
            blocks.append(block)
    if not blocks:
        return SearchableVectors(np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, dimension), np.float32))
    return SearchableVectors(np.concatenate(ids), np.concatenate(products), np.concatenate(blocks))
