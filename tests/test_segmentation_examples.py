"""Corrections become training examples: the service the review queue calls, and fixed intake cut-outs."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from catalog.models import Product
from segmentation.classes import CLASS_INDEX
from segmentation.data import examples_from_rows
from segmentation.examples import ExampleError, segmentation_example_create
from segmentation.models import ExampleSource, SegmentationExample
from segmentation.segmenter import get_segmenter, reset_segmenter
from warehouse.models import Snapshot, SnapshotStatus

from .test_intake_fixtures import (  # noqa: F401
    SNAPSHOTS_URL,
    api,
    catalogue,
    phone_photo,
    upload,
    worker,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def ccp_photo(shared_data) -> tuple[Image.Image, np.ndarray]:
    ccp = shared_data / "ccp-masks"
    with Image.open(ccp / "images" / "0001.jpg") as im:
        photo = im.convert("RGB")
    with Image.open(ccp / "masks" / "0001.png") as im:
        mask = np.asarray(im) > 127
    return photo, mask


def test_a_corrected_mask_is_stored_as_a_training_example(ccp_photo):
    photo, mask = ccp_photo
    example = segmentation_example_create(image=photo, mask=mask, kind="topwear", origin="review:7")

    row = SegmentationExample.objects.get(pk=example.pk)
    assert row.source == ExampleSource.CORRECTION and row.kind == "topwear" and row.split in ("train", "val")
    with row.mask.open("rb") as fh:
        stored = np.asarray(Image.open(fh)) > 127
    with row.image.open("rb") as fh:
        size = Image.open(fh).size
    assert max(size) == 768 and size[0] / size[1] == pytest.approx(photo.width / photo.height, abs=0.01)
    expected = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
    assert stored.shape == expected.shape and (stored == expected).mean() > 0.99
    # training reads it as a topwear class map of the same garment
    (read,) = examples_from_rows([row])
    assert set(np.unique(read.labels)) == {CLASS_INDEX["background"], CLASS_INDEX["topwear"]}

    # a second correction of the same origin replaces the first (a 0/255 mask at half size is resized)
    half = np.asarray(Image.fromarray(~mask).resize((photo.width // 2, photo.height // 2))).astype(np.uint8) * 255
    again = segmentation_example_create(image=photo, mask=half, kind="jacket", origin="review:7")
    assert again.pk == example.pk and SegmentationExample.objects.count() == 1
    again.refresh_from_db()
    assert again.kind == ""  # not one of our kinds: stored as unknown
    with again.mask.open("rb") as fh:
        assert (np.asarray(Image.open(fh)) > 127).mean() == pytest.approx((~mask).mean(), abs=0.01)


@pytest.mark.parametrize(
    ("mask", "reason"),
    [
        (np.zeros((830, 550), bool), "no garment"),
        (np.ones((830, 550), bool), "whole photo"),
        (np.ones((100, 400), bool), "does not fit"),
        (np.ones((830, 550, 3), np.uint8), "one channel"),
    ],
)
def test_unusable_masks_are_refused_with_the_reason(ccp_photo, mask, reason):
    photo, _ = ccp_photo
    with pytest.raises(ExampleError, match=reason):
        segmentation_example_create(image=photo.resize((550, 830)), mask=mask)
    assert not SegmentationExample.objects.exists()


def test_a_fixed_and_confirmed_cut_out_becomes_a_training_example(
    api, upload, catalogue, shared_data, django_capture_on_commit_callbacks
):
    reset_segmenter()
    # given an uploaded photo, matched; the mask records the segmenter version that made it
    body = upload(phone_photo(shared_data, 3)).item
    snapshot = Snapshot.objects.get(pk=body["id"])
    assert snapshot.segmenter_version == get_segmenter().version

    # an item confirmed without a fix teaches nothing new
    product = Product.objects.get(pk=body["candidates"][0]["product_id"])
    other = upload(phone_photo(shared_data, 4)).item
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"{SNAPSHOTS_URL}{other['id']}/confirm/", {"product_id": product.pk, "size": "M", "quantity": 1})
    assert not SegmentationExample.objects.exists()

    # when the worker fixes the cut-out with a box, then confirms the product
    w, h = snapshot.width, snapshot.height
    with django_capture_on_commit_callbacks(execute=True):
        fixed = api.post(f"{SNAPSHOTS_URL}{snapshot.pk}/fix/", {"rect": [w // 8, h // 8, w * 7 // 8, h * 7 // 8]},
                         format="json")
    assert fixed.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = api.post(f"{SNAPSHOTS_URL}{snapshot.pk}/confirm/",
                             {"product_id": product.pk, "size": "M", "quantity": 1})
    assert confirmed.status_code == 201, confirmed.content

    # then the final mask is kept as a correction, with the confirmed product's kind
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.CONFIRMED
    example = SegmentationExample.objects.get(origin=f"snapshot:{snapshot.pk}")
    assert example.source == ExampleSource.CORRECTION and example.kind == product.category.kind
    with example.mask.open("rb") as fh:
        stored = np.asarray(Image.open(fh)) > 127
    with snapshot.mask.open("rb") as fh:
        final = np.asarray(Image.open(fh).resize((stored.shape[1], stored.shape[0]), Image.Resampling.NEAREST)) > 127
    assert stored.any() and (stored == final).mean() > 0.99
    # nothing outside the box was kept
    ys, xs = np.nonzero(stored)
    assert xs.min() >= stored.shape[1] // 8 - 2 and xs.max() <= stored.shape[1] * 7 // 8 + 2
