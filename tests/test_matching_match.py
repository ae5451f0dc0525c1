"""match_image, the decision, catalogue embedding after commit, version switching, calibration."""
from __future__ import annotations

import csv
import io
import shutil

import numpy as np
import pytest
import torch
from django.db import transaction
from PIL import Image, ImageOps

from catalog.models import ProductImage
from catalog.services import kind_for_text, product_image_add
from matching import calibration, search, services
from matching.embedders import reset_embedders
from matching.models import EmbeddingModel, ModelState, ProductEmbedding
from tests import factories

pytestmark = pytest.mark.django_db


def studio_photos(shared_data, types: tuple[str, ...], per_type: int = 1) -> list[tuple[str, bytes]]:
    found: dict[str, list] = {}
    with open(shared_data / "catalog-photos" / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            kind = row["article_type"]
            if kind in types and len(found.setdefault(kind, [])) < per_type:
                found[kind].append((kind, (shared_data / "catalog-photos" / row["image"]).read_bytes()))
    return [item for items in found.values() for item in items]


def catalogue(shared_data, types=("Tshirts", "Jeans", "Sports Shoes", "Handbags", "Watches", "Dresses")):
    """Products with one real studio photo each, embedded into the active model."""
    products = []
    for n, (kind, data) in enumerate(studio_photos(shared_data, types)):
        category = factories.category(name=kind, kind=kind_for_text(kind) or "accessory", parent=None)
        product = factories.product(sku=f"CAT-{n}", category_obj=category)
        image, _ = product_image_add(product=product, data=data, filename=f"{n}.jpg", role="primary")
        products.append((product, image, data))
    services.images_embed(image_ids=[image.pk for _, image, _ in products])
    return products


def photo(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def set_threshold(score: float, margin: float = 0.0, per_kind: dict | None = None) -> EmbeddingModel:
    model = services.embedding_model_active()
    model.thresholds = {"default": {"score": score, "margin": margin}, "per_kind": per_kind or {}}
    model.save()
    return model


def test_match_finds_the_product_and_the_decision_follows_the_threshold(shared_data):
    # given a small real catalogue
    products = catalogue(shared_data)
    target, _, data = products[2]
    query = ImageOps.mirror(photo(data))  # the same item, another view
    # when the calibrated threshold is below the score
    set_threshold(0.5)
    result = services.match_image(query, segment=False)
    # then the item is found and declared in the catalogue
    top = result.candidates[0]
    assert top.sku == target.sku and 0.5 < top.score <= 1.0001
    assert result.decision["in_catalogue"] is True
    assert result.decision["label"] == f"in catalogue: SKU {target.sku}"
    assert result.decision["margin"] == pytest.approx(top.score - result.candidates[1].score, abs=1e-5)
    assert set(result.timings) >= {"decode", "segment", "embed", "search", "total"}
    assert result.model_version == services.embedding_model_active().name
    # when the threshold is above the score, or the margin demanded is larger than the lead
    set_threshold(min(top.score + 0.01, 1.5))
    assert services.match_image(query, segment=False).decision["label"] == "likely not in catalogue"
    set_threshold(0.5, margin=result.decision["margin"] + 0.01)
    refused = services.match_image(query, segment=False).decision
    assert refused["in_catalogue"] is False and refused["sku"] is None
    # and a per-kind threshold overrides the default for that kind only
    set_threshold(0.99, per_kind={top.category_kind: {"score": 0.5, "margin": 0.0}})
    assert services.match_image(query, segment=False).decision["in_catalogue"] is True


def test_several_photos_make_one_query_and_filters_apply(shared_data):
    products = catalogue(shared_data)
    target, _, data = products[0]
    views = [photo(data), ImageOps.mirror(photo(data)).rotate(5, fillcolor=(255, 255, 255))]
    result = services.match_image(views, segment=False, k=3)
    assert result.candidates[0].sku == target.sku
    assert len(result.cutouts) == 2 and len(result.candidates) == 3
    # filters restrict candidates to the kind asked for, even when the best match is elsewhere
    other_kind = next(p for p, _, _ in products if p.category.kind != target.category.kind).category.kind
    filtered = services.match_image(views, segment=False, filters={"category_kind": other_kind})
    assert filtered.candidates and {c.category_kind for c in filtered.candidates} == {other_kind}


def test_match_with_segmentation_on_a_phone_like_photo(shared_data):
    # given a catalogue and a query where the garment lies on a real floor photo
    products = catalogue(shared_data)
    target, _, data = products[0]
    floor = Image.open(next((shared_data / "phone-photos" / "images").glob("*.jpg"))).convert("RGB")
    canvas = floor.crop((0, 0, floor.width, floor.height // 4)).resize((480, 640))
    garment = photo(data).resize((300, 300))
    canvas.paste(garment, (90, 170))
    # when matching with segmentation on
    result = services.match_image(canvas, segment=True)
    # then a cut-out was made (or the whole photo used when segmentation is absent) and the item ranks high
    assert len(result.cutouts) == 1 and result.cutouts[0].status in {"ok", "empty"}
    assert target.sku in [c.sku for c in result.candidates[:3]]


def test_new_photos_are_embedded_after_commit_in_one_batch(shared_data, django_capture_on_commit_callbacks):
    model = services.embedding_model_active()
    photos = studio_photos(shared_data, ("Tshirts", "Jeans", "Casual Shoes"))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            for n, (_, data) in enumerate(photos):
                product = factories.product(sku=f"NEW-{n}")
                product_image_add(product=product, data=data, filename=f"{n}.jpg")
            assert ProductEmbedding.objects.count() == 0  # nothing before commit
    assert ProductEmbedding.objects.filter(model=model).count() == 3
    # one embedding registration per photo; the first flush takes all three (cleanup scans register their own)
    assert len([c for c in callbacks if getattr(c, "__module__", "") == "matching.services"]) == 3
    # the task is idempotent: running it again writes nothing new
    from matching.tasks import embed_product_images

    assert embed_product_images([e.image_id for e in ProductEmbedding.objects.all()]) == 0


def test_activating_a_new_embedder_reembeds_then_switches(shared_data, settings, tmp_path,
                                                          django_capture_on_commit_callbacks):
    # given a catalogue served by the default model, and other weights configured under "alt"
    products = catalogue(shared_data, types=("Tshirts", "Jeans", "Sports Shoes"))
    old = services.embedding_model_active()
    from matching.embedders.efficientnet import default_weights_path

    state = torch.load(default_weights_path(), map_location="cpu", weights_only=True)
    state["_fc.bias"] = state["_fc.bias"] + 1.0  # classifier only: different checksum, same features
    weights = tmp_path / "alt.pth"
    torch.save(state, weights)
    settings.MATCHING = {**settings.MATCHING, "BUILD_CHUNK": 2}  # the background job takes two runs
    settings.STOCKMATCH_HEADS_DIR = tmp_path / "heads"  # the switch trains the new version's heads
    settings.EMBEDDERS = {**settings.EMBEDDERS, "alt": {
        "BACKEND": "matching.embedders.EfficientNetLite0", "OPTIONS": {"RUNTIME": "torch", "WEIGHTS": str(weights)},
    }}
    reset_embedders()
    try:
        # when it is activated, before the background job has run
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            new = services.embedding_model_activate(embedder_name="alt")
        assert new.state == ModelState.BUILDING and not new.active
        # then the old version still serves
        assert services.embedding_model_active().pk == old.pk
        assert services.match_image(photo(products[0][2]), segment=False).model_version == old.name
        # and once the job ran, every image has a new vector and the switch happened
        for callback in callbacks:
            callback()
        new.refresh_from_db()
        old.refresh_from_db()
        assert new.active and new.state == ModelState.READY and new.progress["done"] == 3
        assert not old.active and old.state == ModelState.RETIRED
        assert ProductEmbedding.objects.filter(model=new).count() == 3
        result = services.match_image(photo(products[0][2]), segment=False)
        assert result.model_version == new.name and result.candidates[0].sku == products[0][0].sku
    finally:
        reset_embedders()


def test_calibration_picks_the_best_recall_at_the_target_precision():
    rng = np.random.default_rng(0)
    right = [calibration.Pair(score=s, margin=0.1, correct=True, in_catalogue=True, kind="topwear")
             for s in rng.uniform(0.8, 0.95, 60)]
    wrong = [calibration.Pair(score=s, margin=0.01, correct=False, in_catalogue=True, kind="topwear")
             for s in rng.uniform(0.7, 0.85, 20)]
    unknown = [calibration.Pair(score=s, margin=0.02, correct=False, in_catalogue=False, kind="topwear")
               for s in rng.uniform(0.6, 0.86, 40)]
    pairs = right + wrong + unknown
    thresholds, metrics = calibration.calibrate(pairs, alpha=0.0, target_precision=0.95)
    assert thresholds["alpha"] == 0.0 and metrics["open_set_auroc"] > 0.5
    score, margin = thresholds["default"]["score"], thresholds["default"]["margin"]
    accepted = [p for p in pairs if p.score >= score and p.margin >= margin]
    precision = sum(p.correct for p in accepted) / len(accepted)
    assert precision >= 0.95 and metrics["expected_precision"] == pytest.approx(precision, abs=1e-4)
    assert metrics["expected_recall"] == pytest.approx(sum(p.correct for p in accepted) / 80, abs=1e-4)
    assert metrics["expected_recall"] == pytest.approx(60 / 80)  # every right answer: the margin separates them
    assert "topwear" in thresholds["per_kind"]


def test_calibration_keeps_a_margin_over_the_next_product(settings):
    # given queries whose best recall at the target needs no margin: every top is far from any other product, as
    # on real pairs, where each top is unique
    rng = np.random.default_rng(2)
    right = [calibration.Pair(score=s, margin=float(m), correct=True, in_catalogue=True)
             for s, m in zip(rng.uniform(0.8, 0.95, 80), rng.uniform(0.0, 0.2, 80), strict=True)]
    unknown = [calibration.Pair(score=s, margin=0.1, correct=False, in_catalogue=False)
               for s in rng.uniform(0.3, 0.6, 40)]
    pairs = right + unknown
    settings.MATCHING = {**settings.MATCHING, "MIN_MARGIN": 0.0}
    free, _ = calibration.calibrate(pairs, alpha=0.0, target_precision=0.95, confidence=0.0)
    assert free["default"]["margin"] == 0.0  # with no floor the grid takes every right answer
    # the settings' floor keeps the decision from choosing between near-twins, at the cost of those close calls
    settings.MATCHING = {**settings.MATCHING, "MIN_MARGIN": 0.03}
    floored, metrics = calibration.calibrate(pairs, alpha=0.0, target_precision=0.95, confidence=0.0)
    assert floored["default"]["margin"] >= 0.03
    kept = sum(p.margin >= floored["default"]["margin"] for p in right)
    assert metrics["expected_recall"] == pytest.approx(kept / 80)


def test_precision_lower_bound_asks_more_of_fewer_queries():
    assert calibration.precision_lower_bound(57, 60, 0.0) == pytest.approx(0.95)
    small, large = (calibration.precision_lower_bound(19 * n, 20 * n, 0.9) for n in (3, 30))
    assert small < large < 0.95  # the same 95 % seen on 60 and on 600 queries
    assert calibration.precision_lower_bound(10, 10, 0.9) == pytest.approx(10 / (10 + 1.2816**2), abs=1e-3)
    assert calibration.precision_lower_bound(0, 0, 0.9) == 0.0


def test_calibration_does_not_trust_a_few_lucky_queries():
    # the 8 highest-scoring queries are all right, then precision settles at 0.9 over 200 accepted
    rng = np.random.default_rng(1)
    lucky = [calibration.Pair(score=0.99, margin=0.1, correct=True, in_catalogue=True) for _ in range(8)]
    steady = [calibration.Pair(score=s, margin=0.1, correct=bool(rng.random() < 0.93), in_catalogue=True)
              for s in rng.uniform(0.7, 0.9, 200)]
    unknown = [calibration.Pair(score=s, margin=0.1, correct=False, in_catalogue=False)
               for s in rng.uniform(0.3, 0.6, 100)]
    pairs = lucky + steady + unknown
    _, on_sight = calibration.calibrate(pairs, alpha=0.0, target_precision=0.97, confidence=0.0)
    _, shown = calibration.calibrate(pairs, alpha=0.0, target_precision=0.97, confidence=0.9)
    assert on_sight["meets_target"] and on_sight["expected_precision"] >= 0.97  # the lucky few "reach" 0.97
    assert not shown["meets_target"]  # but eight queries show nothing of the sort
    sure, metrics = calibration.calibrate(pairs, alpha=0.0, target_precision=0.85, confidence=0.9)
    accepted = [p for p in pairs if p.score >= sure["default"]["score"]]
    assert metrics["meets_target"] and metrics["precision_lower_bound"] >= 0.85 and len(accepted) > 100


def test_calibrated_thresholds_are_stored_and_used(shared_data):
    products = catalogue(shared_data, types=("Tshirts", "Jeans", "Sports Shoes"))
    model = services.embedding_model_active()
    pairs = [calibration.Pair(score=0.9, margin=0.2, correct=True, in_catalogue=True)] * 5 + [
        calibration.Pair(score=0.6, margin=0.05, correct=False, in_catalogue=False)] * 5
    thresholds, metrics = calibration.calibrate(pairs, alpha=0.5)
    calibration.model_calibration_store(model=model, thresholds=thresholds, metrics=metrics, source="test")
    model.refresh_from_db()
    assert model.metrics["calibration"]["expected_precision"] == 1.0 and model.open_set_alpha == 0.5
    result = services.match_image(photo(products[0][2]), segment=False)
    decision = result.decision
    # the threshold applies to the open-set score: the top score less half the mean of ranks 2-10
    scores = [c.score for c in result.candidates]
    assert len(scores) > 2 and decision["alpha"] == 0.5
    assert decision["open_set_score"] == pytest.approx(scores[0] - 0.5 * np.mean(scores[1:10]), abs=1e-5)
    assert decision["threshold"] == thresholds["default"]["score"]
    assert decision["in_catalogue"] == (decision["open_set_score"] >= decision["threshold"]
                                        and decision["margin"] >= decision["margin_threshold"])
    # asking for fewer candidates does not change the decision: it still compares with ranks 2-10
    short = services.match_image(photo(products[0][2]), segment=False, k=2)
    assert len(short.candidates) == 2 and short.decision == decision


def test_missing_files_do_not_stop_a_batch(shared_data):
    products = catalogue(shared_data, types=("Tshirts", "Jeans"))
    broken = products[0][1]
    shutil.rmtree(broken.file.storage.path(""), ignore_errors=True)  # every stored file gone
    ProductEmbedding.objects.all().delete()
    assert services.images_embed(image_ids=[image.pk for _, image, _ in products]) == 0
    model = services.embedding_model_active()
    query = np.ones(model.dimension, np.float32) / np.sqrt(model.dimension)
    assert search.nearest_products(query, model_id=model.pk) == []


def test_match_refuses_what_it_cannot_do(shared_data):
    catalogue(shared_data, types=("Tshirts",))
    query = Image.new("RGB", (64, 64), (200, 30, 30))
    with pytest.raises(services.MatchInputError):
        services.match_image([], segment=False)
    with pytest.raises(services.MatchInputError, match="grabcut"):
        services.match_image(query, segment="magic")
    with pytest.raises(search.FilterError, match="footwear"):
        services.match_image(query, segment=False, filters={"category_kind": "shoes"})


def test_embed_catalog_is_idempotent_and_resumable(shared_data, capsys):
    from django.core.management import call_command

    for n, (_, data) in enumerate(studio_photos(shared_data, ("Tshirts", "Jeans", "Sports Shoes"))):
        product_image_add(product=factories.product(sku=f"EMB-{n}"), data=data, filename=f"{n}.jpg")
    model = services.embedding_model_active()
    first = ProductEmbedding.objects.filter(model=model).values_list("image_id", flat=True).first()
    assert first is None  # after-commit embedding never ran inside the test transaction
    services.images_embed(image_ids=[ProductImage.objects.order_by("id").first().pk])  # an interrupted earlier run
    call_command("embed_catalog", "--batch-size", "2", verbosity=0)
    assert "embedded 2 image(s)" in capsys.readouterr().out
    assert ProductEmbedding.objects.filter(model=model).count() == 3
    call_command("embed_catalog", verbosity=0)
    assert "embedded 0 image(s)" in capsys.readouterr().out


def test_each_photo_is_embedded_as_its_garment_and_context_views_on_both_sides(shared_data):
    from matching.embedders import get_embedder
    from segmentation.view import context_view

    # given the configured (trained) embedder, which takes context views, and a real studio photo
    model = services.embedding_model_active()
    embedder = services.embedder_for(model)
    assert embedder.context_view and "+ctx+m2@" in model.name and model.preprocessing["context_view"] is True
    (_, data), = studio_photos(shared_data, ("Tshirts",))
    picture = photo(data)

    # then a catalogue photo's vector is the normalised mean of its garment view's and its context view's
    views = services.catalog_views(picture, context=True)
    assert len(views) == 2 and views[0].tobytes() != views[1].tobytes()
    each = embedder.embed(views)
    mean = each.mean(axis=0) / np.linalg.norm(each.mean(axis=0))
    assert np.allclose(embedder.embed_groups([views])[0], mean, atol=1e-5)
    # the context view is the garment's box grown, nothing masked: the studio white is still there
    assert (np.asarray(views[1]) >= 250).all(axis=2).mean() > (np.asarray(views[0]) >= 250).all(axis=2).mean()
    # and without a mask it is the whole photo, padded square
    assert context_view(picture, None, max_side=0).size == (max(picture.size),) * 2

    # when the same photo is matched as a query, both sides made alike: it finds itself, almost identical
    products = catalogue(shared_data, types=("Tshirts", "Jeans", "Watches"))
    result = services.match_image(photo(products[0][2]), segment=False)
    assert result.candidates[0].sku == products[0][0].sku and result.candidates[0].score > 0.95

    # a version row recorded without context views keeps being served as it was made
    old = EmbeddingModel.objects.create(
        name=get_embedder(model.embedder, weights=model.weights or None, context_view=False).version,
        embedder=model.embedder, backbone=model.backbone, weights_checksum=model.weights_checksum,
        dimension=model.dimension, preprocessing={k: v for k, v in model.preprocessing.items() if k != "context_view"},
        weights=model.weights,
    )
    assert "+ctx" not in old.name and not services.embedder_for(old).context_view


def test_versions_on_shipped_thresholds_follow_a_recalibrated_sidecar_and_own_calibrations_stay():
    model = services.embedding_model_active()
    shipped = services.embedder_for(model).shipped_calibration
    assert shipped["thresholds"], "the shipped weights carry their calibration"
    # an installation that still has the thresholds of an older calibration of the same weights
    stale = {"default": {"score": 0.9, "margin": 0.2}, "per_kind": {}}
    model.thresholds = stale
    model.metrics = {"calibration": {"source": "validation pairs of shop-worn-pairs (old)", "fitted_at": "2020-01-01"}}
    model.save()
    assert services.shipped_calibration_refresh() == [model.name]
    model.refresh_from_db()
    assert model.thresholds == shipped["thresholds"]
    assert model.metrics["calibration"]["fitted_at"] == shipped["metrics"]["fitted_at"]
    assert services.shipped_calibration_refresh() == []  # already current
    # thresholds calibrated on the installation's own snapshots are never overwritten
    model.thresholds = stale
    model.metrics = {"calibration": {"source": "120 intake snapshots", "fitted_at": "2020-01-01"}}
    model.save()
    assert services.shipped_calibration_refresh() == []
    model.refresh_from_db()
    assert model.thresholds == stale


def test_a_match_asked_for_appearance_brings_the_heads_vectors_of_the_same_views(shared_data):
    from matching.appearance import appearance_of

    # given a small real catalogue and a query photo
    products = catalogue(shared_data, types=("Tshirts", "Jeans"))
    query = ImageOps.mirror(photo(products[0][2]))
    # when the mirror matches it asking for appearance too
    result = services.match_image(query, segment=False, appearance=True)
    plain = services.match_image(query, segment=False)
    # then the match is the same, and the appearance vectors are the configured appearance embedder's of its views
    assert [c.sku for c in result.candidates] == [c.sku for c in plain.candidates]
    assert np.abs(result.vectors - plain.vectors).max() < 1e-4
    assert plain.appearance is None and result.appearance.shape == (1, 768)
    assert np.abs(result.appearance - appearance_of(result.views)).max() < 1e-4
