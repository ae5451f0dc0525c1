"""Gender and category-kind classification: kNN voting over the catalogue, trained heads, their versions."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from catalog.services import category_get_or_create, product_image_add
from matching import classification, search, services
from matching.classification import Attributes, Prediction, classify_vectors, knn_vote
from matching.models import EmbeddingModel, ModelState
from tests import factories

pytestmark = pytest.mark.django_db

# (article type, gender in labels.csv) -> (our gender, our kind): four clearly separable groups.
GROUPS = {
    ("Tshirts", "Men"): ("men", "topwear"),
    ("Jeans", "Men"): ("men", "bottomwear"),
    ("Heels", "Women"): ("women", "footwear"),
    ("Handbags", "Women"): ("women", "accessory"),
}


def labelled_photos(shared_data, per_group: int, groups=GROUPS, skip: int = 0) -> list[tuple[str, str, bytes]]:
    """``per_group`` real studio photos per group: (gender, kind, bytes), after skipping ``skip`` per group."""
    taken: dict[tuple[str, str], int] = {}
    out = []
    with open(shared_data / "catalog-photos" / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["article_type"], row["gender"])
            if key not in groups:
                continue
            taken[key] = taken.get(key, 0) + 1
            if skip < taken[key] <= skip + per_group:
                gender, kind = groups[key]
                out.append((gender, kind, (shared_data / "catalog-photos" / row["image"]).read_bytes()))
    return out


def catalogue_of(photos: list[tuple[str, str, bytes]], prefix: str = "C") -> None:
    """One product per photo, in a category of its kind, embedded into the active model."""
    image_ids = []
    for n, (gender, kind, data) in enumerate(photos):
        category = category_get_or_create(name=kind.title(), kind=kind)
        product = factories.product(sku=f"{prefix}-{n}", category_obj=category, gender=gender)
        image, _ = product_image_add(product=product, data=data, filename=f"{n}.jpg", role="primary")
        image_ids.append(image.pk)
    services.images_embed(image_ids=image_ids)


def vectors_of(photos: list[tuple[str, str, bytes]], model: EmbeddingModel) -> np.ndarray:
    from catalog.imaging import load_image

    views = [services.catalog_view(load_image(data).image) for _, _, data in photos]
    return services.embedder_for(model).embed(views)


def test_knn_vote_weights_neighbours_by_similarity():
    # one clearly closer neighbour outvotes three distant ones; near-equal neighbours count alike
    hits = [search.LabelledHit(1, "women", "footwear", 0.90)] + [
        search.LabelledHit(n, "men", "topwear", 0.70) for n in range(2, 5)
    ]
    vote = knn_vote(hits, temperature=0.05)
    assert vote["kind"] == Prediction(label="footwear", confidence=vote["kind"].confidence, source="knn")
    assert vote["gender"].label == "women" and 0.5 < vote["kind"].confidence <= 1.0
    close = [search.LabelledHit(1, "women", "footwear", 0.80)] + [
        search.LabelledHit(n, "men", "topwear", 0.79) for n in range(2, 5)
    ]
    assert knn_vote(close, temperature=0.05)["kind"].label == "topwear"
    assert knn_vote([]) == {"gender": None, "kind": None}


def test_knn_classifies_held_out_photos_from_a_small_real_catalogue(shared_data):
    # given a catalogue of 4 real photos per group (no head trained)
    catalogue_of(labelled_photos(shared_data, per_group=4))
    model = services.embedding_model_active()
    # when classifying other photos of the same groups by their vectors
    queries = labelled_photos(shared_data, per_group=2, skip=4)
    results = classify_vectors(vectors_of(queries, model), model=model)
    # then every kind and gender is right, from kNN, with a confidence
    assert len(results) == len(queries) == 8 and all(isinstance(r, Attributes) for r in results)
    assert [r.kind.label for r in results] == [kind for _, kind, _ in queries]
    assert [r.gender.label for r in results] == [gender for gender, _, _ in queries]
    assert {r.kind.source for r in results} == {"knn"} and all(0 < r.kind.confidence <= 1 for r in results)


def test_classify_refuses_vectors_of_the_wrong_dimension_and_knows_nothing_without_a_catalogue(shared_data):
    model = services.embedding_model_active()
    with pytest.raises(ValueError, match=str(model.dimension)):
        classify_vectors(np.zeros((2, model.dimension + 3), np.float32), model=model)
    # an embedding version with no vectors: nothing to vote with
    other = EmbeddingModel.objects.create(name="other@1", backbone="other", weights_checksum="1", dimension=8,
                                          state=ModelState.READY)
    one = np.ones((1, 8), np.float32) / np.sqrt(8)
    assert classify_vectors(one, model=other) == [Attributes(gender=None, kind=None)]
    assert classification.as_matrix(one[0], dimension=8).shape == (1, 8)
