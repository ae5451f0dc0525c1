"""Complete the look: curated looks first, then co-occurrence (looks, arrival batches), then kind rules by colour."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from django.contrib.auth.models import User
from PIL import Image

from catalog.models import CategoryKind, Look, ProductStatus
from catalog.services import category_get_or_create, product_image_add
from matching.classification import Prediction
from matching.mirror.colour import Colour, dominant_colour, harmony
from matching.mirror.looks import complete_the_look, product_colours
from matching.mirror.models import ImageColour
from matching.mirror.services import kind_fused
from tests import factories
from warehouse.models import Arrival

pytestmark = pytest.mark.django_db


def item(
    sku: str, kind: str, *, stock: int = 2, gender: str = "women", status: str = ProductStatus.ACTIVE, colour=None
):
    category = category_get_or_create(name=kind.title(), kind=kind)
    product = factories.product(sku=sku, category_obj=category, gender=gender, status=status)
    factories.variant(product_obj=product, size="M", stock=stock)
    if colour is not None:
        product_image_add(product=product, data=plain_photo(colour), filename=f"{sku}.jpg", role="primary")
    return product


def plain_photo(colour) -> bytes:
    """A garment-shaped block of ``colour`` on a white studio background."""
    import io

    array = np.full((200, 160, 3), 255, np.uint8)
    array[30:170, 30:130] = colour
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def test_curated_looks_come_first_then_co_occurrence_then_rules_never_same_kind_or_unavailable():
    query = item("TOP-Q", "topwear")
    look_bottom = item("BOT-LOOK", "bottomwear")
    look_top = item("TOP-LOOK", "topwear")  # same kind as the garment: never
    sold_out = item("BOT-SOLD", "bottomwear", stock=0)
    retired = item("SHO-RET", "footwear", status=ProductStatus.RETIRED)
    draft = item("SHO-DRAFT", "footwear", status=ProductStatus.DRAFT)
    look = Look.objects.create(name="Office")
    look.products.add(query, look_bottom, look_top, sold_out, retired, draft)
    Look.objects.create(name="Old", is_active=False).products.add(query, item("OUT-OLD", "outerwear"))
    # a second match shares a look with a jacket; the first match arrived with shoes in one batch
    second = item("TOP-2", "topwear")
    jacket = item("OUT-1", "outerwear")
    Look.objects.create(name="Layers").products.add(second, jacket)
    shoes = item("SHO-1", "footwear")
    worker = User.objects.create_user("w")
    for product in (query, shoes):
        Arrival.objects.create(variant=product.variants.get(), quantity=1, user=worker)
    rule_only = item("BOT-RULE", "bottomwear")
    men_only = item("BOT-MEN", "bottomwear", gender="men")

    ids = complete_the_look(
        anchors=[query.pk, second.pk], kind=CategoryKind.TOPWEAR, gender="women", colour=None, limit=10
    )

    skus = [p.sku for p in sorted(factories.Product.objects.filter(pk__in=ids), key=lambda p: ids.index(p.pk))]
    assert skus[:3] == ["BOT-LOOK", "OUT-1", "SHO-1"]
    assert "BOT-RULE" in skus[3:]
    assert not {"TOP-LOOK", "TOP-2", "TOP-Q", "BOT-SOLD", "SHO-RET", "SHO-DRAFT", "BOT-MEN"} & set(skus)
    assert skus.index("OUT-OLD") > 2  # an inactive look does not count; the jacket still comes by the rules
    assert men_only.pk not in ids and rule_only.pk in ids


def test_rules_rank_complementary_products_by_colour_harmony():
    red_top = Colour(hue=0.0, saturation=0.8, value=0.8)
    clash = item("BOT-YELLOWGREEN", "bottomwear", colour=(150, 200, 30))  # hue ~ 80°: clashes with red
    tonal = item("BOT-RED", "bottomwear", colour=(180, 30, 40))  # close to red
    opposite = item("BOT-TEAL", "bottomwear", colour=(20, 170, 170))  # ~180°: complementary
    ids = complete_the_look(anchors=[], kind=CategoryKind.TOPWEAR, gender="women", colour=red_top, limit=3)
    assert ids == [opposite.pk, tonal.pk, clash.pk]
    # colours are cached per photo
    assert ImageColour.objects.count() == 3
    assert product_colours(product_ids=[opposite.pk])[opposite.pk].hue == pytest.approx(180, abs=15)


def test_dominant_colour_and_harmony():
    red = Image.new("RGB", (80, 80), (200, 30, 30))
    assert dominant_colour(red).hue in (pytest.approx(0, abs=6), pytest.approx(360, abs=6))
    assert dominant_colour(Image.new("RGB", (80, 80), (20, 20, 20))).neutral
    grey = Colour(None, 0.0, 0.5)
    blue, orange, green = Colour(220, 0.8, 0.7), Colour(35, 0.8, 0.8), Colour(100, 0.8, 0.7)
    assert harmony(blue, orange) > harmony(blue, grey) > harmony(orange, green)
    masked = np.zeros((80, 80), np.uint8)
    masked[20:60, 20:60] = 255
    picture = np.full((80, 80, 3), 255, np.uint8)
    picture[20:60, 20:60] = (30, 60, 200)
    assert dominant_colour(Image.fromarray(picture), masked).hue == pytest.approx(228, abs=8)


def test_kind_from_classifier_and_segmenter():
    hesitant = Prediction(label="bottomwear", confidence=0.6, source="knn")
    sure = Prediction(label="bottomwear", confidence=0.99, source="knn")
    assert kind_fused(hesitant, "topwear").label == "topwear"
    assert kind_fused(sure, "topwear").label == "bottomwear"
    agreed = kind_fused(Prediction(label="topwear", confidence=0.7, source="knn"), "topwear")
    assert agreed.label == "topwear" and agreed.confidence > 0.7
    assert kind_fused(None, "footwear").label == "footwear"
    assert kind_fused(sure, None) is sure


def test_garments_of_the_same_kind_are_one_answer():
    from matching.mirror.services import _Found, _same_kind_merged
    from matching.services import Candidate

    def cand(pid: int, score: float, kind: str = "topwear") -> Candidate:
        return Candidate(product_id=pid, sku=f"S{pid}", name="", score=score, image_id=pid, image_url="",
                         category_kind=kind, gender="women")

    mask = np.zeros((10, 10), bool)
    top_a = _Found(Prediction("topwear", 0.7, "knn"), None, [cand(1, 0.9), cand(2, 0.5)], mask, (0, 0, 5, 5))
    top_b = _Found(Prediction("topwear", 0.9, "knn"), None, [cand(2, 0.8), cand(3, 0.6)], mask, (4, 2, 8, 6))
    bottom = _Found(Prediction("bottomwear", 0.8, "knn"), None, [cand(4, 0.7)], mask, (0, 6, 9, 9))
    merged = _same_kind_merged([top_a, bottom, top_b], k=10)
    assert [g.kind.label for g in merged] == ["topwear", "bottomwear"]
    assert [(c.product_id, c.score) for c in merged[0].candidates] == [(1, 0.9), (2, 0.8), (3, 0.6)]
    assert merged[0].bbox == (0, 0, 8, 6) and merged[0].kind.confidence == 0.9
    # a hesitant part's look-alikes of another kind do not survive a merge whose kind is sure
    def hesitant() -> _Found:
        return _Found(Prediction("topwear", 0.4, "knn"), None, [cand(5, 0.95, "bottomwear"), cand(6, 0.85)], mask,
                      (0, 0, 5, 5))

    sure = _Found(Prediction("topwear", 0.9, "knn"), None, [cand(7, 0.8), cand(8, 0.7)], mask, (0, 5, 5, 9))
    [one] = _same_kind_merged([hesitant(), sure], k=10)
    assert [c.product_id for c in one.candidates] == [6, 7, 8] and one.kind.confidence == 0.9
    # while two hesitant parts keep what they found
    [both] = _same_kind_merged([hesitant(), replace(sure, kind=Prediction("topwear", 0.5, "knn"))], k=10)
    assert [c.product_id for c in both.candidates] == [5, 6, 7, 8]


def test_embedding_a_catalogue_photo_caches_its_colour_before_any_shopper_asks():
    from matching.mirror.looks import photo_colours_cache
    from matching.tasks import embed_product_images

    teal = item("BOT-TEAL", "bottomwear", colour=(20, 170, 170))
    image = teal.images.get()
    ImageColour.objects.all().delete()  # whatever the save's own hooks did: the task alone is under test
    embed_product_images([image.pk])
    row = ImageColour.objects.get(image=image)
    assert row.sha256 == image.sha256 and row.hue == pytest.approx(180, abs=15)
    assert image.embeddings.exists()
    # a cached colour is not measured again; one measured on an older file is
    assert photo_colours_cache(image_ids=[image.pk]) == 0
    ImageColour.objects.filter(image=image).update(sha256="0" * 64, hue=None)
    assert photo_colours_cache(image_ids=[image.pk]) == 1
    assert product_colours(product_ids=[teal.pk])[teal.pk].hue == pytest.approx(180, abs=15)
