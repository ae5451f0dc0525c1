"""The network path: auto seeds GrabCut with the network, and cut_out_garments splits kinds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segmentation import cut_out, cut_out_garments
from segmentation.classes import GARMENT_KINDS
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
