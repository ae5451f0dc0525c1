"""Colour re-ranking: the garment's colour histogram on real photos, stored per catalogue photo, and its effect
on a match between two products that differ only in colour."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from catalog.models import ProductImage
from catalog.services import product_image_add
from matching import colour, services
from matching.preprocess import studio_mask
from tests import factories
from tests.test_matching_match import studio_photos

pytestmark = pytest.mark.django_db


def _recoloured(image: Image.Image) -> Image.Image:
    """The same garment in another colour: red and blue swapped."""
    r, g, b = image.convert("RGB").split()
    return Image.merge("RGB", (b, g, r))


def _cast(image: Image.Image, gains=(1.3, 1.0, 0.7)) -> Image.Image:
    """The same photo under a warm light."""
    array = np.asarray(image.convert("RGB"), np.float32) * np.asarray(gains, np.float32)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def _bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture
def shirt(shared_data) -> Image.Image:
    _, data = studio_photos(shared_data, ("Tshirts",))[0]
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_a_signature_tells_colours_apart_and_sees_through_a_cast(shirt):
    mask = studio_mask(shirt)
    own = colour.signature(shirt, mask)
    assert own.shape == (colour.SIZE,) and own.sum() == pytest.approx(2.0, abs=1e-3)
    assert colour.similarity(own, own) == pytest.approx((1.0, 1.0), abs=1e-3)
    # another colour of the same garment is far in chroma, not in lightness
    other = colour.signature(_recoloured(shirt), mask)
    chroma, lightness = colour.similarity(own, other)
    assert chroma < 0.6 and lightness > 0.8
    # under a warm light the as-taken signature drifts; the light-corrected one comes back
    as_taken, corrected = colour.query_signatures(_cast(shirt), mask)
    assert colour.similarity(own, corrected)[0] > colour.similarity(own, as_taken)[0] + 0.1
    # the penalty keeps the closer of the two, and the storage round trip keeps the values
    assert colour.penalty([as_taken, corrected], [own], chroma=0.15, lightness=0.05) == pytest.approx(
        colour.penalty([corrected], [own], chroma=0.15, lightness=0.05))
    assert np.allclose(colour.decode(colour.encode(own)), own, atol=1e-3)
    assert colour.decode(b"") is None and colour.decode(None) is None


def _two_colours(shirt: Image.Image) -> tuple:
    category = factories.category(name="T-shirts", kind="topwear", parent=None)
    made = []
    for sku, picture in (("SHIRT-ORIGINAL", shirt), ("SHIRT-RECOLOURED", _recoloured(shirt))):
        product = factories.product(sku=sku, category_obj=category)
        image, _ = product_image_add(product=product, data=_bytes(picture), filename=f"{sku}.jpg", role="primary")
        made.append(image)
    services.images_embed(image_ids=[image.pk for image in made])
    return tuple(made)


def _scores(query: Image.Image) -> dict[str, float]:
    return {c.sku: c.score for c in services.match_image(query, segment=False).candidates}


def test_colour_reranking_separates_two_products_that_differ_only_in_colour(shirt, settings):
    original, recoloured = _two_colours(shirt)
    # embedding a catalogue photo stores its signature
    for image in (original, recoloured):
        image.refresh_from_db()
        assert colour.decode(image.colour) is not None
    query = ImageOps.mirror(shirt)
    settings.MATCHING = {**settings.MATCHING, "COLOUR": {"CHROMA": 0.0, "LIGHTNESS": 0.0}}
    plain = _scores(query)
    settings.MATCHING = {**settings.MATCHING, "COLOUR": {"CHROMA": 0.15, "LIGHTNESS": 0.05, "DEPTH": 20}}
    ranked = _scores(query)
    assert list(ranked)[0] == "SHIRT-ORIGINAL"
    gap_plain = plain["SHIRT-ORIGINAL"] - plain["SHIRT-RECOLOURED"]
    gap_ranked = ranked["SHIRT-ORIGINAL"] - ranked["SHIRT-RECOLOURED"]
    assert gap_ranked > gap_plain + 0.05
    # the right colour loses little; a penalty never raises a score
    assert plain["SHIRT-ORIGINAL"] - 0.03 < ranked["SHIRT-ORIGINAL"] <= plain["SHIRT-ORIGINAL"] + 1e-6


def test_a_photo_stored_before_signatures_is_measured_at_its_first_match(shirt):
    original, _ = _two_colours(shirt)
    ProductImage.objects.update(colour=None)
    services.match_image(ImageOps.mirror(shirt), segment=False)
    assert all(colour.decode(raw) is not None for raw in ProductImage.objects.values_list("colour", flat=True))
