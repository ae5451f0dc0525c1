"""Vector search against real Postgres + pgvector: agreement with exact numpy search, filters, versions."""
from __future__ import annotations

import numpy as np
import pytest

from catalog.models import CategoryKind, ProductImage, ProductStatus
from matching import search
from matching.models import EmbeddingModel, ModelState, ProductEmbedding
from tests import factories

pytestmark = pytest.mark.django_db
DIM = search.EMBEDDING_DIMENSION


def embedding_model(name: str = "test@1", *, active: bool = True) -> EmbeddingModel:
    return EmbeddingModel.objects.create(
        name=name, backbone="test", weights_checksum=name, dimension=DIM, active=active,
        state=ModelState.READY if active else ModelState.BUILDING,
    )


def clustered_vectors(n: int, *, seed: int = 0, clusters: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    vectors = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def catalogue_with_vectors(vectors: np.ndarray, model: EmbeddingModel, *, images_per_product: int = 1,
                           kinds: list[str] | None = None) -> list[ProductImage]:
    """One product per ``images_per_product`` consecutive vectors; kinds cycle through ``kinds``."""
    kinds = kinds or [CategoryKind.TOPWEAR]
    categories = {kind: factories.category(name=f"Cat {kind}", kind=kind, parent=None) for kind in kinds}
    images = []
    for start in range(0, len(vectors), images_per_product):
        kind = kinds[(start // images_per_product) % len(kinds)]
        product = factories.product(category_obj=categories[kind])
        for offset in range(images_per_product):
            n = start + offset
            images.append(ProductImage.objects.create(
                product=product, file=f"catalog/test/{n}.jpg", width=10, height=10, sha256=f"{n:064d}",
            ))
    search.embeddings_upsert(model_id=model.pk, image_ids=[image.pk for image in images], vectors=vectors)
    return images


def exact_products(query: np.ndarray, vectors: np.ndarray, images: list[ProductImage], k: int,
                   keep=lambda image: True) -> list[int]:
    best: dict[int, float] = {}
    for score, image in zip(vectors @ query, images, strict=True):
        if keep(image) and score > best.get(image.product_id, -2):
            best[image.product_id] = float(score)
    return [pid for pid, _ in sorted(best.items(), key=lambda item: -item[1])[:k]]


def test_hnsw_agrees_with_exact_numpy_search():
    # given 400 clustered vectors, two images per product
    model = embedding_model()
    vectors = clustered_vectors(400)
    images = catalogue_with_vectors(vectors, model, images_per_product=2)
    queries = clustered_vectors(20, seed=1)
    # when searching with HNSW and exactly in SQL
    recalls = []
    for query in queries:
        truth = exact_products(query, vectors, images, 10)
        hnsw = search.nearest_products(query, model_id=model.pk, k=10, strategy="hnsw")
        exact = search.nearest_products(query, model_id=model.pk, k=10, strategy="exact")
        # then the SQL exact search is the numpy answer, scores are cosine similarities
        assert [hit.product_id for hit in exact] == truth
        assert exact[0].score == pytest.approx(float(np.max(vectors @ query)), abs=1e-5)
        assert len({hit.product_id for hit in hnsw}) == 10
        recalls.append(len({hit.product_id for hit in hnsw} & set(truth)) / 10)
    assert np.mean(recalls) >= 0.95


@pytest.mark.parametrize("strategy", ["auto", "exact", "hnsw"])
def test_filters_return_k_rows_when_k_exist(strategy):
    # given 300 products where only 1 in 15 is footwear (fewer than HNSW's candidate list would catch)
    model = embedding_model()
    vectors = clustered_vectors(300)
    kinds = [CategoryKind.TOPWEAR] * 14 + [CategoryKind.FOOTWEAR]
    images = catalogue_with_vectors(vectors, model, kinds=kinds)
    footwear = {image.pk for image in images if image.product.category.kind == CategoryKind.FOOTWEAR}
    assert len(footwear) == 20
    query = clustered_vectors(1, seed=5)[0]
    # when filtering on the rare kind
    hits = search.nearest_products(query, model_id=model.pk, k=10, filters={"category_kind": "footwear"},
                                   strategy=strategy)
    # then exactly k footwear products come back, and they are the exact answer
    truth = exact_products(query, vectors, images, 10, keep=lambda image: image.pk in footwear)
    assert len(hits) == 10
    assert {hit.product_id for hit in hits} <= {image.product_id for image in images if image.pk in footwear}
    if strategy != "hnsw":
        assert [hit.product_id for hit in hits] == truth


def test_in_stock_and_status_filters_follow_catalogue_changes():
    # given four products with one vector each
    model = embedding_model()
    vectors = clustered_vectors(4)
    images = catalogue_with_vectors(vectors, model)
    stocked, retired = images[0].product, images[1].product
    # when one gets stock through a variant and another is retired (triggers keep the copies in step)
    variant = factories.variant(product_obj=stocked, stock=0)
    from catalog.services import variant_adjust_stock

    variant_adjust_stock(variant_id=variant.pk, delta=3)
    retired.status = ProductStatus.RETIRED
    retired.save()
    # then in-stock search finds only the stocked one, and the retired one is never found
    hits = search.nearest_products(vectors[0], model_id=model.pk, k=4, filters={"in_stock": True})
    assert [hit.product_id for hit in hits] == [stocked.pk]
    all_hits = search.nearest_products(vectors[1], model_id=model.pk, k=4)
    assert retired.pk not in {hit.product_id for hit in all_hits}
    assert ProductEmbedding.objects.get(image=images[1]).status == ProductStatus.RETIRED
    # and selling out clears the flag again
    variant_adjust_stock(variant_id=variant.pk, delta=-3)
    assert search.nearest_products(vectors[0], model_id=model.pk, k=4, filters={"in_stock": True}) == []


def test_versions_never_mix():
    # given the same images embedded by two model versions with unrelated vectors
    old, new = embedding_model("old@1"), embedding_model("new@2", active=False)
    vectors_old, vectors_new = clustered_vectors(60, seed=1), clustered_vectors(60, seed=2)
    images = catalogue_with_vectors(vectors_old, old)
    search.embeddings_upsert(model_id=new.pk, image_ids=[image.pk for image in images], vectors=vectors_new)
    # when searching with a vector of the new version
    for strategy in ("hnsw", "exact"):
        hits = search.nearest_products(vectors_new[7], model_id=new.pk, k=5, strategy=strategy)
        # then scores are the new version's (the best is the image itself, similarity 1)
        assert hits[0].image_id == images[7].pk
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        expected = sorted((float(v @ vectors_new[7]) for v in vectors_new), reverse=True)[:5]
        assert [hit.score for hit in hits] == pytest.approx(expected, abs=1e-5)
    assert ProductEmbedding.objects.filter(model=new).count() == 60


def test_product_similarity_and_duplicate_pairs():
    # given a catalogue where product B is a near-copy of product A
    model = embedding_model()
    vectors = clustered_vectors(50)
    vectors[1] = vectors[0] + 0.01 * clustered_vectors(1, seed=9)[0]
    vectors[1] /= np.linalg.norm(vectors[1])
    images = catalogue_with_vectors(vectors, model)
    a, b = images[0].product_id, images[1].product_id
    # when asking for A's nearest products and for all pairs above 0.99
    similar = search.similar_products(a, model_id=model.pk, k=3)
    pairs = search.similar_pairs(model_id=model.pk, min_similarity=0.99)
    # then B comes first and (A, B) is the only near-duplicate pair
    assert similar[0].product_id == b
    assert a not in {hit.product_id for hit in similar}
    assert [(x, y) for x, y, _ in pairs] == [(min(a, b), max(a, b))]
