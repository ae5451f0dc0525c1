"""The studio mask: a white garment on a white studio background stays one garment, and the rule a version's
vectors were made with is the rule it is served with."""
from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from catalog.services import product_image_add
from matching import services
from matching.embedders import get_embedder
from matching.models import EmbeddingModel, ProductEmbedding
from matching.preprocess import STUDIO_MASK_RULE, studio_mask
from tests import factories
from tests.test_matching_match import studio_photos

# Pale tops on white from the shop side of shop-worn-pairs, which the first rule floods into their prints and seams.
PALE_TOPS = ("p2103.jpg", "p2117.jpg", "p2129.jpg")


def pieces(mask: np.ndarray) -> tuple[float, float]:
    """(share of the mask in its largest piece, share of the photo the mask covers)."""
    binary = (mask > 0).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return float(areas.max() / areas.sum()), float(binary.mean())


def pale_top(shared_data, name: str) -> Image.Image:
    return Image.open(shared_data / "shop-worn-pairs" / "shop" / name).convert("RGB")


@pytest.mark.parametrize("name", PALE_TOPS)
def test_a_pale_top_on_white_is_one_garment_under_the_current_rule(shared_data, name):
    # given a real shop photo of a white or pale top on a white background
    photo = pale_top(shared_data, name)
    # the first rule takes its pale cloth for background: what is left is its prints and seams in pieces
    largest_before, covered_before = pieces(studio_mask(photo, rule=1))
    # the current rule keeps the garment whole: one piece over a garment-sized part of the photo
    mask = studio_mask(photo)
    largest, covered = pieces(mask)
    assert STUDIO_MASK_RULE == 2 and mask.shape == (photo.height, photo.width)
    assert largest > 0.97 and 0.3 < covered < 0.8, (largest, covered)
    assert largest_before < 0.9 or covered_before < 0.6 * covered, (largest_before, covered_before)


def test_a_coloured_garment_keeps_the_first_rules_mask_and_unknown_rules_are_refused(shared_data):
    # a studio photo whose mask is already one piece is masked exactly as before
    (_, data), = studio_photos(shared_data, ("Jeans",))
    photo = Image.open(io.BytesIO(data)).convert("RGB")
    assert np.array_equal(studio_mask(photo), studio_mask(photo, rule=1))
    # a photo that is not on white has no studio mask under either rule
    street = Image.open(sorted((shared_data / "ccp-masks" / "images").glob("*.jpg"))[0]).convert("RGB")
    assert studio_mask(street) is None and studio_mask(street, rule=1) is None
    with pytest.raises(ValueError, match="unknown studio mask rule"):
        studio_mask(photo, rule=3)


@pytest.mark.django_db
def test_a_version_made_with_the_first_rule_is_served_and_fed_with_it(shared_data):
    # given an installation whose ImageNet version was made before the rule was recorded (no "studio_mask")
    earlier = get_embedder("default", studio_mask_rule=1)
    old = EmbeddingModel.objects.create(
        name=earlier.version, embedder="default", backbone=earlier.backbone, dimension=earlier.dimension,
        weights_checksum=earlier.checksum,
        preprocessing={key: value for key, value in earlier.preprocessing_record().items() if key != "studio_mask"},
    )
    # and a version of the same weights made today, which records the current rule in its row and its name
    current = get_embedder("default")
    new = EmbeddingModel.objects.create(
        name=current.version, embedder="default", backbone=current.backbone, dimension=current.dimension,
        weights_checksum=current.checksum, preprocessing=current.preprocessing_record(),
    )
    assert new.preprocessing["studio_mask"] == 2 and new.name != old.name and "+m2@" in new.name
    assert services.embedder_for(old).studio_mask_rule == 1 and services.embedder_for(old).version == old.name
    assert services.embedder_for(new).studio_mask_rule == 2
    # when a pale top's catalogue photo is embedded into both
    product = factories.product(sku="PALE-1")
    with open(shared_data / "shop-worn-pairs" / "shop" / PALE_TOPS[0], "rb") as handle:
        image, _ = product_image_add(product=product, data=handle.read(), filename="pale.jpg")
    assert services.images_embed(image_ids=[image.pk], models=[old, new]) == 2
    # then each version holds the vector of its own rule's view
    photo = pale_top(shared_data, PALE_TOPS[0])
    stored = {model.pk: np.asarray(ProductEmbedding.objects.get(model=model, image=image).vector, np.float32)
              for model in (old, new)}
    for model, rule in ((old, 1), (new, 2)):
        expected = get_embedder("default", studio_mask_rule=rule).embed([services.catalog_view(photo, rule=rule)])[0]
        assert np.allclose(stored[model.pk], expected, atol=1e-4), rule
    assert float(np.dot(stored[old.pk], stored[new.pk])) < 0.99
