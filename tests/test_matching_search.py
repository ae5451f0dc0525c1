"""Vector search against real Postgres + pgvector: agreement with exact numpy search, filters, versions."""
from __future__ import annotations

import numpy as np
import pytest

from catalog.models import CategoryKind, ProductImage, ProductStatus
from matching import search
from matching.models import EmbeddingModel, ModelState, ProductEmbedding
from tests import factories

pytestmark = pytest.mark.django_db
DIM = 256  # the shipped trained embedder's size; the ImageNet fallback's 1280 is tested beside it


def embedding_model(name: str = "test@1", *, active: bool = True, dimension: int = DIM) -> EmbeddingModel:
    return EmbeddingModel.objects.create(
        name=name, backbone="test", weights_checksum=name, dimension=dimension, active=active,
        state=ModelState.READY if active else ModelState.BUILDING,
    )


def clustered_vectors(n: int, *, seed: int = 0, clusters: int = 8, dimension: int = DIM) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dimension))
    vectors = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, dimension))
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


def test_a_256_d_and_a_1280_d_model_coexist_each_searching_its_own_rows():
    # given the same images embedded by the trained-size model (256-d) and the ImageNet-size one (1280-d)
    small, large = embedding_model("small@1"), embedding_model("large@1", active=False, dimension=1280)
    vectors_small = clustered_vectors(80, seed=3)
    vectors_large = clustered_vectors(80, seed=4, dimension=1280)
    images = catalogue_with_vectors(vectors_small, small, kinds=[CategoryKind.TOPWEAR, CategoryKind.FOOTWEAR])
    search.embeddings_upsert(model_id=large.pk, image_ids=[image.pk for image in images], vectors=vectors_large)
    # then each row is stored at its own dimension
    stored = dict(ProductEmbedding.objects.values_list("model_id", "dimensions").distinct())
    assert stored == {small.pk: 256, large.pk: 1280}
    assert len(ProductEmbedding.objects.get(model=small, image=images[0]).vector) == 256
    for model, vectors in ((small, vectors_small), (large, vectors_large)):
        for strategy in ("hnsw", "exact"):
            # when searching with a vector of that model, unfiltered and with a kind filter
            hits = search.nearest_products(vectors[11], model_id=model.pk, k=5, strategy=strategy)
            footwear = search.nearest_products(vectors[11], model_id=model.pk, k=5, strategy=strategy,
                                               filters={"category_kind": "footwear"})
            # then the scores are that model's (the image itself first, similarity 1)
            assert hits[0].image_id == images[11].pk and hits[0].score == pytest.approx(1.0, abs=1e-5)
            expected = sorted((float(v @ vectors[11]) for v in vectors), reverse=True)[:5]
            assert [hit.score for hit in hits] == pytest.approx(expected, abs=1e-5)
            assert {hit.product_id for hit in footwear} <= {
                image.product_id for image in images if image.product.category.kind == CategoryKind.FOOTWEAR
            }
        labelled = search.nearest_labelled(vectors[11], model_id=model.pk, k=3)
        assert labelled[0].product_id == images[11].product_id and labelled[0].score == pytest.approx(1.0, abs=1e-5)
        data = search.embeddings_labelled(model_id=model.pk, dimension=model.dimension)
        assert data.vectors.shape == (80, model.dimension)
    # and a vector of the other model's size is refused, for searches and for writes
    with pytest.raises(ValueError, match="1280-d"):
        search.nearest_products(vectors_small[0], model_id=large.pk, k=5)
    with pytest.raises(ValueError, match="256-d vectors, got 1280-d"):
        search.embeddings_upsert(model_id=small.pk, image_ids=[images[0].pk], vectors=vectors_large[:1])


def test_duplicate_pairs_and_neighbours_stay_within_a_model_of_either_size():
    # given two models of different sizes where the first two products are near-copies for the 1280-d one only
    small, large = embedding_model("small@2"), embedding_model("large@2", active=False, dimension=1280)
    vectors_small = clustered_vectors(30, seed=5)
    vectors_large = clustered_vectors(30, seed=6, dimension=1280)
    vectors_large[1] = vectors_large[0] + 0.01 * clustered_vectors(1, seed=9, dimension=1280)[0]
    vectors_large[1] /= np.linalg.norm(vectors_large[1])
    images = catalogue_with_vectors(vectors_small, small)
    search.embeddings_upsert(model_id=large.pk, image_ids=[image.pk for image in images], vectors=vectors_large)
    a, b = images[0].product_id, images[1].product_id
    # when hunting duplicates with each model
    # then only the 1280-d model sees the pair
    assert [(x, y) for x, y, _ in search.similar_pairs(model_id=large.pk, min_similarity=0.99)] == [(a, b)]
    assert search.similar_pairs(model_id=small.pk, min_similarity=0.99) == []
    neighbours = search.image_neighbours(model_id=large.pk, k=1, product_ids=[a])
    assert [(n.image_id, n.neighbour_image_id) for n in neighbours] == [(images[0].pk, images[1].pk)]
    assert neighbours[0].similarity > 0.99


@pytest.mark.parametrize("dimension", [256, 1280])
def test_the_planner_walks_the_graph_of_the_query_size(dimension):
    # given a model of each indexed size with a few vectors
    from django.db import connection

    models = {size: embedding_model(f"plan-{size}@1", active=size == dimension, dimension=size)
              for size in search.INDEXED_DIMENSIONS}
    vectors = clustered_vectors(40, dimension=dimension)
    catalogue_with_vectors(vectors, models[dimension], kinds=[CategoryKind.TOPWEAR, CategoryKind.FOOTWEAR])
    with connection.cursor() as cursor:  # a table this small would be scanned and sorted: ask which index
        cursor.execute("SET LOCAL enable_seqscan = off")  # can hand back the rows in distance order
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    # when planning the HNSW statement, unfiltered and with a kind filter
    plain = search.search_plan(vectors[0], model_id=models[dimension].pk)
    footwear = search.search_plan(vectors[0], model_id=models[dimension].pk, filters={"category_kind": "footwear"})
    # then the graph of that size is used (the kind's own graph for the kind filter)
    assert plain == [f"pe_hnsw_{dimension}"]
    assert footwear == [f"pe_hnsw_{dimension}_footwear"]


def test_a_size_without_a_graph_is_stored_and_searched_exactly():
    # given a 32-d model (no HNSW graph has that size)
    model = embedding_model("tiny@1", dimension=32)
    vectors = clustered_vectors(60, dimension=32)
    images = catalogue_with_vectors(vectors, model)
    # when searching with the HNSW strategy
    hits = search.nearest_products(vectors[5], model_id=model.pk, k=10, strategy="hnsw")
    # then the answer is the exact one, from no HNSW graph
    assert [hit.product_id for hit in hits] == exact_products(vectors[5], vectors, images, 10)
    assert not [name for name in search.search_plan(vectors[5], model_id=model.pk) if "hnsw" in name]


@pytest.mark.django_db(transaction=True)
def test_migration_cuts_zero_padded_vectors_back_to_their_model_dimension_and_refuses_other_tails():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = ("matching", "0007_merge_20261202_0607"), ("matching", "0008_vectors_own_dimension")
    MigrationExecutor(connection).migrate([before])
    try:
        # given the old vector(1280) column holding a 256-d model's vectors zero-padded and a 1280-d model's
        small, large = embedding_model("padded@1"), embedding_model("wide@1", active=False, dimension=1280)
        vectors_small, vectors_large = clustered_vectors(2), clustered_vectors(2, dimension=1280)
        images = [ProductImage.objects.create(product=factories.product(), file=f"catalog/m/{n}.jpg", width=10,
                                              height=10, sha256=f"{n:064d}") for n in range(2)]
        with connection.cursor() as cursor:
            for model, vectors in ((small, vectors_small), (large, vectors_large)):
                for image, vector in zip(images, vectors, strict=True):
                    padded = np.pad(vector, (0, 1280 - len(vector)))
                    cursor.execute(
                        "INSERT INTO matching_productembedding (image_id, model_id, product_id, image_sha256,"
                        " category_id, category_kind, gender, status, in_stock, vector, created_at)"
                        " SELECT i.id, %s, p.id, i.sha256, p.category_id, 'topwear', p.gender, p.status, false,"
                        " %s::vector, now() FROM catalog_productimage i JOIN catalog_product p ON p.id = i.product_id"
                        " WHERE i.id = %s",
                        [model.pk, "[" + ",".join(map(str, padded.tolist())) + "]", image.pk],
                    )
            # and a row whose "padding" is not zero: its model records the wrong dimension
            cursor.execute(
                "INSERT INTO matching_productembedding (image_id, model_id, product_id, image_sha256, category_id,"
                " category_kind, gender, status, in_stock, vector, created_at)"
                " SELECT i.id, %s, p.id, i.sha256, p.category_id, 'topwear', p.gender, p.status, false, %s::vector,"
                " now() FROM catalog_productimage i JOIN catalog_product p ON p.id = i.product_id WHERE i.id = %s",
                [embedding_model("mislabelled@1", active=False).pk,
                 "[" + ",".join(map(str, clustered_vectors(1, dimension=1280)[0].tolist())) + "]", images[0].pk],
            )
        # when migrating: refused while the mislabelled row is there, done once it is gone
        with pytest.raises(Exception, match="non-zero tail"):
            MigrationExecutor(connection).migrate([after])
        with connection.cursor() as cursor:  # raw SQL: the table still has the old schema
            cursor.execute("DELETE FROM matching_productembedding WHERE model_id IN"
                           " (SELECT id FROM matching_embeddingmodel WHERE name = 'mislabelled@1')")
        executor = MigrationExecutor(connection)
        executor.migrate([after])
        # then the padded vectors are cut back, the 1280-d ones kept, and vectors stay in the row
        for model, vectors in ((small, vectors_small), (large, vectors_large)):
            rows = ProductEmbedding.objects.filter(model=model).order_by("image_id")
            assert [row.dimensions for row in rows] == [model.dimension] * 2
            assert np.allclose(np.stack([np.asarray(row.vector) for row in rows]), vectors, atol=1e-6)
            hits = search.nearest_products(vectors[1], model_id=model.pk, k=2)
            assert hits[0].image_id == images[1].pk and hits[0].score == pytest.approx(1.0, abs=1e-5)
        with connection.cursor() as cursor:
            cursor.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = 'matching_productembedding'::regclass"
                           " AND attname = 'vector'")
            assert cursor.fetchone()[0] == "p"
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_search_settings_end_with_the_search_outside_a_transaction():
    # given a catalogue, and a connection in autocommit (no transaction around the searches)
    from django.db import connection

    model = embedding_model("autocommit@1")
    vectors = clustered_vectors(30)
    catalogue_with_vectors(vectors, model)
    assert not connection.in_atomic_block
    # when searching with the HNSW and the exact strategies (each pipelines its settings with the query)
    for strategy in ("hnsw", "exact"):
        assert len(search.nearest_products(vectors[0], model_id=model.pk, k=5, strategy=strategy)) == 5
    # then the connection's later statements run with the server defaults again
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_indexscan'), current_setting('hnsw.iterative_scan')")
        assert cursor.fetchone() == ("on", "off")
