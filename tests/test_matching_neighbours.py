"""The exact catalogue-wide neighbour pass (matching.neighbours over search.embeddings_searchable) against
real Postgres + pgvector: same answer as brute force and as the HNSW pass, merged products left out."""
from __future__ import annotations

import numpy as np
import pytest

from catalog.models import Product, ProductImage, ProductStatus
from matching import search
from matching.models import EmbeddingModel, ModelState
from matching.neighbours import neighbour_table
from tests import factories

pytestmark = pytest.mark.django_db


def a_model(dimension: int) -> EmbeddingModel:
    return EmbeddingModel.objects.create(name=f"test{dimension}@1", backbone="test", weights_checksum="x",
                                         dimension=dimension, active=True, state=ModelState.READY)


def clustered(n: int, dimension: int, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, dimension))
    vectors = centres[rng.integers(0, 6, n)] + 0.7 * rng.normal(size=(n, dimension))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def catalogue(vectors: np.ndarray, model: EmbeddingModel, *, per_product: int) -> list[ProductImage]:
    category = factories.category()
    images = []
    for start in range(0, len(vectors), per_product):
        product = factories.product(category_obj=category)
        for n in range(start, min(start + per_product, len(vectors))):
            images.append(ProductImage.objects.create(product=product, file=f"catalog/test/{n}.jpg", width=10,
                                                      height=10, sha256=f"{n:064d}"))
    search.embeddings_upsert(model_id=model.pk, image_ids=[i.pk for i in images], vectors=vectors)
    return images


def brute_force(vectors: np.ndarray, products: np.ndarray, k: int) -> list[list[int]]:
    similarity = vectors @ vectors.T
    similarity[products[:, None] == products[None, :]] = -np.inf
    return [list(np.argsort(-row, kind="stable")[:k]) for row in similarity]


def test_exact_pass_is_brute_force_for_any_block_size_and_skips_the_own_product():
    # given 90 vectors, three per product
    vectors = clustered(90, 32)
    ids, products = np.arange(1000, 1090), np.repeat(np.arange(30), 3)
    truth = brute_force(vectors, products, 5)
    # when computing the table with blocks of one row and of the whole matrix
    for block_bytes in (1, 1 << 30):
        table = neighbour_table(ids, products, vectors, k=5, block_bytes=block_bytes)
        # then each row holds the brute-force neighbours, best first, never of its own product
        assert [list(row) for row in table.index] == truth
        assert (np.diff(table.similarity, axis=1) <= 1e-6).all()
        assert not (table.product_ids[table.index] == table.product_ids[:, None]).any()


def test_catalogue_pass_agrees_with_the_index_pass_and_leaves_merged_products_out():
    # given 240 photos of 80 products in the database (256-d: an indexed size), one product merged into another
    model = a_model(256)
    images = catalogue(clustered(240, 256), model, per_product=3)
    merged = images[0].product_id
    Product.objects.filter(pk=merged).update(status=ProductStatus.MERGED, merged_into=images[3].product_id)
    search.embeddings_follow_images(image_ids=[i.pk for i in images[:3]])
    # when reading the searchable vectors and computing the exact table
    data = search.embeddings_searchable(model_id=model.pk, dimension=model.dimension, chunk=50)
    table = neighbour_table(data.image_ids, data.product_ids, data.vectors, k=4)
    exact = {(n.image_id, n.neighbour_image_id) for n in table.neighbours()}
    indexed = {(n.image_id, n.neighbour_image_id) for n in search.image_neighbours(model_id=model.pk, k=4)}
    # then the merged product's photos take no part, and the HNSW pass finds (nearly) the same pairs
    assert len(data.image_ids) == 237 and merged not in set(data.product_ids.tolist())
    assert len(exact) == 237 * 4
    assert len(exact & indexed) / len(exact) >= 0.97
    assert {n.neighbour_product_id for n in table.neighbours()}.isdisjoint({merged})


def test_a_smaller_model_is_read_back_at_its_own_dimension():
    # given a 256-d model's vectors (stored zero-padded while the column is 1280-d)
    model = a_model(256)
    vectors = clustered(12, 256, seed=3)
    catalogue(vectors, model, per_product=1)
    # when reading them back
    data = search.embeddings_searchable(model_id=model.pk, dimension=256)
    # then they are the vectors written, 256 values each
    assert data.vectors.shape == (12, 256)
    np.testing.assert_allclose(data.vectors, vectors, atol=1e-6)
