"""Gender and category-kind classification: kNN voting over the catalogue, trained heads, their versions."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import Product
from catalog.services import category_get_or_create, product_image_add
from matching import classification, heads, search, services
from matching.appearance import appearance_dimension, appearance_of, appearance_version
from matching.classification import Attributes, Prediction, classify_vectors, knn_vote
from matching.heads import HeadConfig, heads_train
from matching.models import ClassifierHead, EmbeddingModel, ModelState
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


def views_of(photos: list[tuple[str, str, bytes]], model: EmbeddingModel) -> list[list]:
    """Each photo's views, as the catalogue embeds it."""
    from catalog.imaging import load_image

    context = services.embedder_for(model).context_view
    return [services.catalog_views(load_image(data).image, context=context) for _, _, data in photos]


def vectors_of(photos: list[tuple[str, str, bytes]], model: EmbeddingModel) -> np.ndarray:
    return services.embedder_for(model).embed_groups(views_of(photos, model))


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


@pytest.fixture
def heads_dir(settings, tmp_path):
    settings.STOCKMATCH_HEADS_DIR = tmp_path / "heads"
    return tmp_path / "heads"


SMALL = HeadConfig(hidden=32, epochs=40, batch_size=16, val_share=0.3)


def test_heads_trained_on_a_small_real_subset_beat_chance_by_a_wide_margin(shared_data, heads_dir):
    # given a catalogue of 8 real photos per group and no head
    catalogue_of(labelled_photos(shared_data, per_group=8))
    model = services.embedding_model_active()
    # when training the heads (activated whatever the baseline says)
    reports = {r.attribute: r for r in heads_train(model=model, config=SMALL, force=True)}
    # then each is a stored, active version tied to this embedding model, with held-out figures; its input is
    # the embedding followed by the appearance embedder's vector of the same views
    for attribute in ("gender", "kind"):
        head = reports[attribute].head
        assert head.active and head.embedding_model == model and head.appearance == appearance_version() != ""
        assert head.input_dimension == model.dimension + appearance_dimension()
        assert (heads_dir / head.weights_path).exists() and head.training["n_val"] > 0
        assert head.metrics["baseline"]["source"] == "knn" and head.training["appearance"] == head.appearance
    assert set(reports["kind"].head.labels) == {"topwear", "bottomwear", "footwear", "accessory"}
    # and photos it never saw are classified by the heads far above chance (4 kinds: 0.25, 2 genders: 0.5)
    queries = labelled_photos(shared_data, per_group=4, skip=8)
    views = views_of(queries, model)
    results = classify_vectors(vectors_of(queries, model), model=model, views=views)
    assert {r.kind.source for r in results} == {r.gender.source for r in results} == {"head"}
    # the same from appearance vectors made beforehand
    given = classify_vectors(vectors_of(queries, model), model=model, appearance=appearance_of(views))
    assert [r.kind for r in given] == [r.kind for r in results]
    # without the photos' views the heads cannot read their input: kNN answers, as when asked for kNN
    assert {r.kind.source for r in classify_vectors(vectors_of(queries[:2], model), model=model)} == {"knn"}
    assert {r.kind.source for r in classify_vectors(vectors_of(queries[:2], model), model=model, use_heads=False,
                                                    views=views[:2])} == {"knn"}
    kind_accuracy = np.mean([r.kind.label == kind for r, (_, kind, _) in zip(results, queries, strict=True)])
    gender_accuracy = np.mean([r.gender.label == g for r, (g, _, _) in zip(results, queries, strict=True)])
    assert kind_accuracy >= 0.8 and gender_accuracy >= 0.8
    assert all(0.25 <= r.kind.confidence <= 1 for r in results)


def test_promotion_only_when_better_on_held_out_products(shared_data, heads_dir):
    catalogue_of(labelled_photos(shared_data, per_group=8))
    model = services.embedding_model_active()
    # given an untrained (random) kind head forced active
    random_head = heads_train(model=model, config=replace(SMALL, epochs=0), attributes=("kind",), force=True)[0]
    assert random_head.activated
    # when a trained head beats it on the held-out products, it takes over
    trained = heads_train(model=model, config=SMALL, attributes=("kind",))[0]
    assert trained.baseline_source == f"head {random_head.head.name}"
    assert trained.metrics["accuracy"] > trained.baseline["accuracy"] and trained.activated
    # when a worse (random) head comes next, it is stored but refused
    worse = heads_train(model=model, config=replace(SMALL, epochs=0, seed=3), attributes=("kind",))[0]
    assert worse.baseline_source == f"head {trained.head.name}" and not worse.beats_baseline
    assert worse.head is not None and not worse.head.active
    assert ClassifierHead.objects.get(active=True, attribute="kind").pk == trained.head.pk
    assert ClassifierHead.objects.filter(attribute="kind").count() == 3


def test_a_head_of_another_embedding_version_is_not_used(shared_data, heads_dir):
    # given heads trained for the active embedding version
    photos = labelled_photos(shared_data, per_group=6)
    catalogue_of(photos)
    active = services.embedding_model_active()
    heads_train(model=active, config=SMALL, force=True)
    queries = labelled_photos(shared_data, per_group=1, skip=6)
    vectors = vectors_of(queries, active)
    views = views_of(queries, active)
    assert {r.kind.source for r in classify_vectors(vectors, model=active, views=views)} == {"head"}
    # and another version (same dimension) holding its own copy of the catalogue's vectors
    other = EmbeddingModel.objects.create(name="next@2", backbone="next", weights_checksum="2",
                                          dimension=active.dimension, state=ModelState.READY)
    stored = search.embeddings_labelled(model_id=active.pk, dimension=active.dimension)
    search.embeddings_upsert(model_id=other.pk, image_ids=list(stored.image_ids), vectors=stored.vectors)
    # when classifying vectors of that version, its (absent) heads count, not the other version's: kNN
    results = classify_vectors(vectors, model=other, views=views)
    assert {r.kind.source for r in results} == {r.gender.source for r in results} == {"knn"}
    assert [r.kind.label for r in results] == [kind for _, kind, _ in queries]
    # and a head whose weights file went missing falls back to kNN instead of failing
    head = ClassifierHead.objects.get(embedding_model=active, attribute="kind", active=True)
    (heads_dir / head.weights_path).unlink()
    head.weights_sha256 = "0" * 64  # a new checksum: not served from the in-memory cache
    head.save()
    assert {r.kind.source for r in classify_vectors(vectors, model=active, views=views)} == {"knn"}


def test_heads_read_appearance_only_of_the_version_they_were_trained_with(shared_data, heads_dir, settings):
    # given heads trained with the appearance embedder, and photos they never saw
    catalogue_of(labelled_photos(shared_data, per_group=6))
    model = services.embedding_model_active()
    heads_train(model=model, config=SMALL, force=True)
    queries = labelled_photos(shared_data, per_group=1, skip=6)
    vectors, views = vectors_of(queries, model), views_of(queries, model)
    assert {r.kind.source for r in classify_vectors(vectors, model=model, views=views)} == {"head"}
    # when the appearance embedder is switched off, those heads' input can no longer be made: kNN answers
    settings.MATCHING = {**settings.MATCHING, "CLASSIFY_APPEARANCE": ""}
    assert {r.kind.source for r in classify_vectors(vectors, model=model, views=views)} == {"knn"}
    # and heads trained now read the embedding alone, and need no views
    report = heads_train(model=model, config=SMALL, attributes=("kind",), force=True)[0]
    assert report.head.appearance == "" and report.head.input_dimension == model.dimension
    assert report.baseline_source == "knn"  # the active head's input cannot be made without appearance
    results = classify_vectors(vectors, model=model)
    assert {r.kind.source for r in results} == {"head"} and {r.gender.source for r in results} == {"knn"}
    assert [r.kind.label for r in results] == [kind for _, kind, _ in queries]


def test_a_newly_active_embedder_gets_its_heads_in_the_background(shared_data, heads_dir):
    # given a catalogue of real photos served by a version with no heads
    catalogue_of(labelled_photos(shared_data, per_group=8))
    model = services.embedding_model_active()
    assert not ClassifierHead.objects.filter(embedding_model=model).exists()
    # when the task that follows a switch runs
    from matching.tasks import train_classification_heads

    outcome = train_classification_heads(model.pk)
    # then both heads were trained for its vectors and each activated only if it beat kNN
    assert set(outcome) == {"gender", "kind"} and "needs" not in str(outcome), outcome
    for attribute, state in outcome.items():
        head = ClassifierHead.objects.get(embedding_model=model, attribute=attribute)
        assert state == ("active" if head.active else "kept inactive")
        assert head.metrics["baseline"]["source"] == "knn"


def test_train_heads_command_reports_and_activates_when_better(shared_data, heads_dir):
    catalogue_of(labelled_photos(shared_data, per_group=6))
    out = io.StringIO()
    # a held-out share of 0.5: some products are held out whatever ids the database gave them
    call_command("train_heads", "--attribute", "kind", "--hidden", "16", "--epochs", "30", "--force",
                 "--val-share", "0.5", stdout=out)
    report = json.loads(out.getvalue())
    assert report["embedding_model"] == services.embedding_model_active().name
    [kind] = report["heads"]
    assert kind["attribute"] == "kind" and kind["activated"] and kind["metrics"]["accuracy"] is not None
    with pytest.raises(CommandError, match="No embedding model"):
        call_command("train_heads", "--model", "nope@0")


CONTRACT_KEYS = {"n_test", "gender_accuracy", "kind_accuracy", "gender_recall", "kind_recall", "ms_per_image_p50"}


def write_labelled_csv(shared_data, root, name: str, photos: list[tuple[str, str, bytes]], extra=()) -> Path:
    (root / name).mkdir()
    with open(root / f"{name}.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "gender", "kind"])
        for n, (gender, kind, data) in enumerate(photos):
            (root / name / f"{n}.jpg").write_bytes(data)
            writer.writerow([f"{name}/{n}.jpg", gender, kind])
        writer.writerows(extra)
    return root / f"{name}.csv"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_evaluate_classification_prints_the_contract_keys_and_leaves_live_data_alone(
    shared_data, tmp_path, capsys, settings,
):
    # given a live catalogue product, a small TRAIN set and a TEST set with a studio photo per group, one
    # phone photo (query path) and one row whose gender is unknown
    settings.STOCKMATCH_TRAINED_DIR = tmp_path / "trained"
    live = factories.product(sku="LIVE-1")
    train_csv = write_labelled_csv(shared_data, tmp_path, "train", labelled_photos(shared_data, per_group=5))
    phone = next(
        r for r in csv.DictReader(open(shared_data / "phone-photos" / "labels.csv")) if r["category"] == "Shoes"
    )
    (tmp_path / "phone.jpg").write_bytes((shared_data / "phone-photos" / phone["image"]).read_bytes())
    test_csv = write_labelled_csv(shared_data, tmp_path, "test", labelled_photos(shared_data, per_group=1, skip=5),
                                  extra=[("phone.jpg", "", "footwear")])
    # when evaluating
    out = tmp_path / "out" / "result.json"
    call_command("evaluate_classification", "--train", str(train_csv), "--test", str(test_csv), "--json", str(out),
                 "--hidden", "16", verbosity=1)
    # then one JSON object with the contract keys is printed and written, heads and kNN side by side
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed == json.loads(out.read_text())
    assert CONTRACT_KEYS <= set(printed) and CONTRACT_KEYS <= set(printed["knn"])
    assert printed["n_test"] == 5 and printed["n_gender"] == 4 and printed["n_kind"] == 5
    assert printed["test_views"] == {"catalog": 4, "query": 1}
    assert printed["knn"]["kind_source"] == {"knn": 5} and printed["kind_source"] == {"head": 5}
    assert printed["knn"]["kind_accuracy"] >= 0.8 and printed["knn"]["gender_accuracy"] >= 0.75
    assert set(printed["kind_recall"]) == {"topwear", "bottomwear", "footwear", "accessory"}
    assert 0 <= printed["kind_accuracy"] <= 1 and printed["ms_per_image_p50"] > 0
    assert printed["n_train_images"] == 20 and printed["heads"]["kind"]["name"]
    # and the live database and trained-models folder are as they were
    assert list(Product.objects.values_list("sku", flat=True)) == [live.sku]
    assert not ClassifierHead.objects.exists() and not (tmp_path / "trained" / "heads").exists()


def test_evaluate_classification_refuses_unknown_labels(tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("image,gender,kind\na.jpg,men,hats\n")
    with pytest.raises(CommandError, match="kind 'hats' is not one of"):
        call_command("evaluate_classification", "--train", str(bad), "--test", str(bad))
    (tmp_path / "test.csv").write_text("picture,gender\n")
    good = tmp_path / "good.csv"
    good.write_text("image,gender,kind\na.jpg,men,topwear\n")
    with pytest.raises(CommandError, match="image"):
        call_command("evaluate_classification", "--train", str(good), "--test", str(tmp_path / "test.csv"))


def test_head_admin_lists_versions_and_activates_for_the_catalogue_role_only(client, shared_data, heads_dir):
    from django.contrib.auth.models import Group, User
    from django.urls import reverse

    catalogue_of(labelled_photos(shared_data, per_group=4))
    model = services.embedding_model_active()
    first = heads_train(model=model, config=SMALL, attributes=("kind",), force=True)[0].head
    second = heads_train(model=model, config=replace(SMALL, seed=5), attributes=("kind",), force=True)[0].head
    url = reverse("admin:matching_classifierhead_changelist")
    worker = User.objects.create_user("w", password="pw-123456789", is_staff=True)
    worker.groups.add(Group.objects.get(name="warehouse"))
    client.force_login(worker)
    assert client.get(url).status_code == 403
    manager = User.objects.create_user("cm", password="pw-123456789", is_staff=True)
    manager.groups.add(Group.objects.get(name="catalog"))
    client.force_login(manager)
    page = client.get(url)
    assert page.status_code == 200 and first.name in page.content.decode() and second.name in page.content.decode()
    client.post(url, {"action": "activate", "_selected_action": [first.pk]})
    assert list(ClassifierHead.objects.filter(active=True).values_list("pk", flat=True)) == [first.pk]
    client.post(url, {"action": "deactivate", "_selected_action": [first.pk]})
    assert not ClassifierHead.objects.filter(active=True).exists()


def test_a_small_catalogue_whose_hashes_all_miss_the_share_still_holds_products_out():
    from matching.heads import held_out

    # products 430-461 (two photos each) all hash above 0.2: the lowest-hashed fifth is held out instead
    unlucky = np.repeat(np.arange(430, 462), 2)
    mask = held_out(unlucky, 0.2)
    assert mask.sum() == 2 * 6 and len(set(unlucky[mask])) == 6
    assert all(mask[unlucky == p].all() or not mask[unlucky == p].any() for p in set(unlucky))  # by product
    assert np.array_equal(held_out(unlucky, 0.2), mask)  # stable
    # an ordinary range keeps the plain hash rule
    ordinary = np.arange(1, 33)
    assert 0 < held_out(ordinary, 0.2).sum() < 32


def test_confirmed_intake_photos_teach_the_heads_the_camera_domain(shared_data, heads_dir):
    from catalog.imaging import load_image
    from matching.camera_examples import camera_examples
    from tests.review_fixtures import confirm, make_snapshot, mark_new, warehouse_worker
    from tests.test_intake_fixtures import phone_photo
    from warehouse.models import SnapshotStatus

    # given a labelled catalogue, two phone photos confirmed as two of its products and one marked new
    catalogue_of(labelled_photos(shared_data, 6))
    model = services.embedding_model_active()
    worker = warehouse_worker()
    jeans = Product.objects.filter(category__kind="bottomwear").order_by("sku").first()
    heels = Product.objects.filter(category__kind="footwear").order_by("sku").first()
    for n, product in enumerate((jeans, heels)):
        factories.variant(product_obj=product, size="M")
        confirm(make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED,
                              scored=[(product, 0.9)], photo_index=n), product)
    mark_new(make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED, scored=[],
                           photo_index=2), name="Something new")

    # the confirmed photos become labelled vectors, embedded as match_image embeds a phone photo; the draft does not
    examples = camera_examples(model=model, max_rows=10)
    assert list(examples.product_ids) == [jeans.pk, heels.pk]
    assert examples.kinds == ["bottomwear", "footwear"] and examples.genders == ["men", "women"]
    embedder = services.embedder_for(model)
    expected = embedder.embed_groups([services.query_views(load_image(phone_photo(shared_data, 0)).image,
                                                           context=embedder.context_view)])[0]
    assert np.allclose(examples.vectors[0], expected, atol=1e-5)
    assert len(camera_examples(model=model, max_rows=1).kinds) == 1  # the newest only
    # with their appearance vectors of the same views when the heads read them
    assert examples.appearance is None
    looks = camera_examples(model=model, max_rows=10, appearance=True).appearance
    assert looks.shape == (2, appearance_dimension())
    assert np.allclose(looks[0], appearance_of([services.query_views(load_image(phone_photo(shared_data, 0)).image,
                                                                     context=embedder.context_view)])[0], atol=1e-5)

    # and the heads train on them beside the catalogue, the held-out share scored on its own
    report = heads_train(model=model, config=SMALL, attributes=("kind",), force=True)[0]
    training = report.head.training
    assert training["n_camera_train"] + training["n_camera_val"] == 2
    assert training["n_train"] + training["n_val"] == 24 + 2
    if training["n_camera_val"]:
        assert report.metrics["camera"]["n"] == training["n_camera_val"]


def test_heads_are_retrained_after_an_upgrade_changes_the_appearance_embedder(
        shared_data, heads_dir, settings, django_capture_on_commit_callbacks):
    # given active heads that read the configured appearance embedder
    catalogue_of(labelled_photos(shared_data, per_group=6))
    model = services.embedding_model_active()
    heads_train(model=model, config=SMALL, force=True)
    before = appearance_version()
    assert not heads.heads_follow_appearance()  # nothing changed: nothing to do
    # when an upgrade configures another appearance embedder, the heads' input can no longer be made
    settings.MATCHING = {**settings.MATCHING, "CLASSIFY_APPEARANCE": "efficientnet_lite0_avg"}
    assert appearance_version() != before
    with django_capture_on_commit_callbacks(execute=True):
        assert heads.heads_follow_appearance()
    # then the heads that cannot be used any more are inactive, and both heads were trained again on the new
    # appearance vectors (each promoted over kNN only when better)
    assert not ClassifierHead.objects.filter(embedding_model=model, appearance=before, active=True).exists()
    retrained = ClassifierHead.objects.filter(embedding_model=model, appearance=appearance_version())
    assert set(retrained.values_list("attribute", flat=True)) == {"gender", "kind"}
    assert all(h.metrics["baseline"]["source"] == "knn" for h in retrained)
    # and the next migrate queues nothing more
    assert not heads.heads_follow_appearance()


@pytest.mark.parametrize("first_id", [1, 430, 90_001])
def test_cross_fitting_folds_hold_every_class_whatever_the_product_ids(first_id):
    # given 12 T-shirts and 13 shoes, two photos each, with ids from anywhere in the sequence
    products = np.arange(first_id, first_id + 25)
    labels = ["topwear"] * 12 + ["footwear"] * 13
    rows_products = np.repeat(products, 2)
    rows_labels = [label for label in labels for _ in range(2)]

    folds = heads.stratified_folds(rows_products, rows_labels, folds=3)

    # then a product's photos share a fold, and each fold holds four or five of each class
    assert all(len(set(folds[rows_products == p])) == 1 for p in products)
    for fold in range(3):
        chosen = folds == fold
        counts = {label: len(set(rows_products[chosen & (np.asarray(rows_labels) == label)])) for label in set(labels)}
        assert counts["topwear"] == 4 and 4 <= counts["footwear"] <= 5
