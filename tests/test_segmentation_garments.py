"""The network path: auto seeds GrabCut with the network, and cut_out_garments splits kinds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segmentation import cut_out, cut_out_garments
from segmentation.classes import CLASSES, GARMENT_KINDS
from segmentation.garments import DEFAULT_MIN_PHOTO_SHARE, MIN_PHOTO_SHARE, split_garments
from segmentation.segmenter import get_segmenter, reset_segmenter

pytestmark = pytest.mark.django_db


@pytest.fixture
def street_photo(shared_data) -> Image.Image:
    """A street photo of one person wearing a top, a bottom and shoes (CCP)."""
    with Image.open(shared_data / "ccp-masks" / "images" / "0001.jpg") as im:
        return im.convert("RGB")


@pytest.fixture(autouse=True)
def _fresh_segmenter():
    reset_segmenter()
    yield
    reset_segmenter()


def test_a_fresh_install_has_a_network():
    segmenter = get_segmenter()
    assert segmenter is not None, "models/segmenter/ should ship weights"
    assert segmenter.classes[0] == "background"


@pytest.mark.parametrize("method", ["auto", "tiramisu"])
def test_network_methods_report_their_version(street_photo, method):
    result = cut_out(street_photo, method=method)
    assert result.method == method
    assert result.model_version == get_segmenter().version
    assert result.status == "ok"
    assert result.mask.shape == (street_photo.height, street_photo.width)


def test_garments_are_split_by_kind(street_photo):
    results = cut_out_garments(street_photo)
    assert results and all(r.status == "ok" for r in results)
    kinds = [r.kind for r in results]
    assert all(kind in GARMENT_KINDS for kind in kinds) and len(set(kinds)) == len(kinds)
    union = np.zeros(results[0].mask.shape, np.int32)
    for r in results:
        union += r.mask > 0
    assert union.max() <= 2  # separate kinds barely overlap (edge refinement only)
    areas = [int((r.mask > 0).sum()) for r in results]
    assert areas == sorted(areas, reverse=True)


def test_garments_of_a_blank_photo():
    results = cut_out_garments(Image.new("RGB", (120, 160), (240, 240, 240)))
    assert len(results) == 1 and results[0].status == "empty" and results[0].kind is None


def test_shipped_weights_serve_without_any_version_row():
    from segmentation.models import SegmenterModel
    from segmentation.versions import shipped_register
    from segmentation.weights import shipped_sidecar

    SegmenterModel.objects.all().delete()
    reset_segmenter()
    sidecar = shipped_sidecar()
    assert get_segmenter().version == sidecar["version"]
    row = shipped_register()  # idempotent registration, active because no other version is
    assert row.active and shipped_register().pk == row.pk
    assert SegmenterModel.objects.count() == 1


def _ccp(shared_data, name: str) -> Image.Image:
    with Image.open(shared_data / "ccp-masks" / "images" / f"{name}.jpg") as im:
        return im.convert("RGB")


def _no_slivers(results) -> None:
    for r in results:
        share = (r.mask > 0).mean()
        assert share >= 0.8 * MIN_PHOTO_SHARE.get(r.kind, DEFAULT_MIN_PHOTO_SHARE), (r.kind, share)
        assert 0 < r.confidence <= 1


def test_a_dress_is_one_full_body_garment(shared_data):
    # CCP 0102: its label map shows a dress (21 % of the photo), shoes and a bag, no top or bottom
    results = cut_out_garments(_ccp(shared_data, "0102"))
    kinds = [r.kind for r in results]
    assert kinds.count("full-body") == 1 and "topwear" not in kinds and "bottomwear" not in kinds
    _no_slivers(results)


def test_a_top_and_trousers_are_two_garments(shared_data):
    # CCP 0410: its label map shows a shirt, trousers, shoes and a bag, nothing full-body
    results = cut_out_garments(_ccp(shared_data, "0410"))
    kinds = [r.kind for r in results]
    assert kinds.count("topwear") == 1 and kinds.count("bottomwear") == 1 and "full-body" not in kinds
    assert set(kinds) <= {"topwear", "bottomwear", "footwear"}  # shoes, when found, are a cut-out of their own
    top, bottom = (next(r for r in results if r.kind == k) for k in ("topwear", "bottomwear"))
    assert top.bbox[1] < bottom.bbox[1] and not ((top.mask > 0) & (bottom.mask > 0)).any()
    _no_slivers(results)


def _probs(shape, **regions) -> np.ndarray:
    """Class probabilities: background everywhere, each ``kind=(slice_y, slice_x, p)`` region that kind with p."""
    probs = np.zeros((len(CLASSES), *shape), np.float32)
    probs[0] = 1.0
    for kind, (ys, xs, p) in regions.items():
        probs[:, ys, xs] = (1 - p) / (len(CLASSES) - 1)
        probs[CLASSES.index(kind.replace("_", "-")), ys, xs] = p
    return probs


def test_split_merges_unsure_halves_into_the_dress_and_drops_specks():
    # a dress whose bodice the network half-calls a top, and a speck of "footwear"
    probs = _probs((64, 64), full_body=(slice(10, 60), slice(20, 44), 0.8), topwear=(slice(10, 20), slice(20, 44), 0.5),
                   footwear=(slice(2, 4), slice(2, 4), 0.9))
    mask = probs[0] < 0.5
    (dress,) = split_garments(mask, probs, list(CLASSES))
    assert dress.kind == "full-body" and dress.mask[10:60, 20:44].all() and not dress.mask[2:4, 2:4].any()
    assert 0.5 < dress.confidence <= 1


def test_split_keeps_a_confident_top_and_bottom_apart_and_shoes_on_their_own():
    probs = _probs((64, 64), topwear=(slice(8, 30), slice(16, 48), 0.9),
                   bottomwear=(slice(30, 56), slice(20, 44), 0.85),
                   footwear=(slice(57, 62), slice(20, 44), 0.8))
    mask = probs[0] < 0.5
    garments = split_garments(mask, probs, list(CLASSES))
    assert [g.kind for g in garments] == ["topwear", "bottomwear", "footwear"]
    assert garments[0].confidence == pytest.approx(0.9, abs=0.02)
    # a bag ("other") is worn but is no garment: it joins none of them
    probs = _probs((64, 64), topwear=(slice(8, 40), slice(16, 48), 0.9), other=(slice(40, 60), slice(2, 14), 0.9))
    (top,) = split_garments(probs[0] < 0.5, probs, list(CLASSES))
    assert top.kind == "topwear" and not top.mask[40:60, 2:14].any()


def test_a_full_body_garment_above_trousers_of_its_own_is_a_long_top():
    # a coat the network calls full-body, over confident trousers: a top and a bottom, no dress
    probs = _probs((64, 64), full_body=(slice(6, 38), slice(16, 48), 0.8),
                   bottomwear=(slice(38, 60), slice(20, 44), 0.85))
    garments = split_garments(probs[0] < 0.5, probs, list(CLASSES))
    assert [g.kind for g in garments] == ["topwear", "bottomwear"]
    assert garments[0].mask[6:38, 16:48].all() and not garments[0].mask[38:60].any()
    # the rule goes by position: a bottom above the full-body region leaves that region a full-body garment
    probs = _probs((64, 64), full_body=(slice(20, 60), slice(16, 48), 0.8),
                   bottomwear=(slice(6, 20), slice(20, 44), 0.85))
    assert "full-body" in [g.kind for g in split_garments(probs[0] < 0.5, probs, list(CLASSES))]
