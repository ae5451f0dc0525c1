"""One way through matching: validated filters, the complete upsert, hints in one place, typed results,
calibration through the warehouse selector, reduced decoding."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.contrib.auth.models import User
from PIL import Image

from catalog.imaging import ImageRejected, load_image
from catalog.models import CategoryKind, ProductImage
from matching import calibration, search, services
from matching.models import ProductEmbedding
from segmentation import HintError
from tests import factories
from tests.conftest import jpeg_bytes
from warehouse.models import Snapshot, SnapshotStatus

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "fields",
    [
        {"category_kind": "topwear' OR 1=1 --"},
        {"category_kind": "shoes"},
        {"gender": "robot"},
        {"category_id": "3"},
        {"in_stock": "yes"},
        {"statuses": ("active", "lost")},
    ],
)
def test_search_filters_built_directly_are_validated(fields):
    with pytest.raises(search.FilterError):
        search.SearchFilters(**fields)


def test_search_filters_from_request_data_still_parse_strings():
    filters = search.SearchFilters.from_dict({"category_kind": "topwear", "category_id": "3", "in_stock": "true"})
    assert filters == search.SearchFilters(category_kind=CategoryKind.TOPWEAR, category_id=3, in_stock=True)


def _unit(seed: int, dimension: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dimension).astype(np.float32)
    return vector / np.linalg.norm(vector)


def test_bulk_load_replaces_every_column_it_writes():
    # given an image embedded once
    model = services.embedding_model_for()
    image = ProductImage.objects.create(
        product=factories.product(), file="catalog/test/a.jpg", width=10, height=10, sha256="a" * 64,
    )
    search.embeddings_upsert(model_id=model.pk, image_ids=[image.pk], vectors=np.stack([_unit(1, model.dimension)]))
    # when the file changes and the bulk path stores a new vector
    ProductImage.objects.filter(pk=image.pk).update(sha256="b" * 64)
    search.embeddings_bulk_load(model_id=model.pk, image_ids=[image.pk], vectors=np.stack([_unit(2, model.dimension)]))
    # then the row records the file the new vector came from
    row = ProductEmbedding.objects.get(image=image, model=model)
    assert row.image_sha256 == "b" * 64
    assert np.allclose(np.asarray(row.vector.to_numpy() if hasattr(row.vector, "to_numpy") else row.vector),
                       _unit(2, model.dimension),
                       atol=1e-6)


def test_match_result_serialises_itself():
    cut_result = services.MatchResult(
        candidates=[services.Candidate(product_id=1, sku="A", name="a", score=0.9, image_id=2, image_url="/m/a.jpg",
                                       category_kind="topwear", gender="men")],
        decision={"in_catalogue": True, "sku": "A"}, timings={"total": 1.0},
        cutouts=[services._whole_photo(Image.new("RGB", (40, 30)), "none")], model_version="m@1",
    )
    data = json.loads(json.dumps(cut_result.to_dict()))
    assert data["candidates"][0]["sku"] == "A"
    assert data["cutouts"] == [{"method": "none", "status": "empty", "bbox": None, "model_version": None,
                                "kind": None, "ms": 0.0}]


def _striped_photo(width: int, height: int) -> bytes:
    """A dark rectangle (the garment) at the right of a light photo, as a JPEG."""
    array = np.full((height, width, 3), 225, np.uint8)
    array[height // 4 : 3 * height // 4, int(width * 0.7) : int(width * 0.95)] = (30, 40, 150)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_hints_are_in_full_photo_coordinates_whatever_size_was_decoded():
    # given a 2400x1200 photo decoded at reduced size, and a rectangle drawn on the full-size photo
    data = _striped_photo(2400, 1200)
    loaded = load_image(data, max_side=600)
    assert loaded.size == (2400, 1200) and max(loaded.image.size) <= 600
    rect = [1600, 200, 2350, 1000]  # outside the decoded 600x300 image, inside the photo
    # when matching with those hints
    result = services.match_image(loaded, hints={"rect": rect}, segment="grabcut", k=1)
    # then the cut-out lies inside the rectangle, at working scale
    x0, y0, x1, y1 = result.cutouts[0].bbox
    scale = result.cutouts[0].mask.shape[1] / 2400
    assert x0 >= rect[0] * scale - 2 and x1 <= rect[2] * scale + 2 and y0 >= rect[1] * scale - 2
    # and a rectangle outside the full photo is the caller's mistake
    with pytest.raises(HintError):
        services.match_image(loaded, hints={"rect": [2500, 0, 2600, 100]}, segment="grabcut", k=1)


def test_decoding_at_reduced_size_keeps_the_photo_size_and_orientation():
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise
    Image.open(io.BytesIO(jpeg_bytes(4000, 3000))).save(buffer, format="JPEG", exif=exif)
    loaded = load_image(buffer.getvalue(), max_side=768)
    assert loaded.size == (3000, 4000)
    assert loaded.image.size[1] == 768 and abs(loaded.image.size[0] - 576) <= 1
    assert loaded.scale == pytest.approx(768 / 4000, rel=0.01)


def test_a_56_megapixel_png_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("L", (7000, 8000), 128).save(buffer, format="PNG")
    with pytest.raises(ImageRejected) as info:
        load_image(buffer.getvalue())
    assert info.value.code == "too_many_pixels"
    assert load_image(jpeg_bytes(4032, 3024)).size == (4032, 3024)  # 12 MP phone photos pass


def test_calibration_reads_decided_snapshots_through_the_warehouse_selector():
    # given two decided snapshots matched by the active model: one confirmed right, one "not in catalogue"
    model = services.embedding_model_active()
    product, other = factories.product(), factories.product()
    user = User.objects.create_user("calib", password="x-calibration-pw-1")
    candidates = [{"product_id": product.pk, "score": 0.91, "category_kind": "topwear"},
                  {"product_id": other.pk, "score": 0.80, "category_kind": "topwear"}]
    for n, (status, chosen) in enumerate([(SnapshotStatus.CONFIRMED, product), (SnapshotStatus.NEW, other)]):
        Snapshot.objects.create(
            uploaded_by=user, idempotency_key=f"k{n}", status=status, original=f"snapshots/{n}.jpg",
            original_sha256="0" * 64, original_format="JPEG", original_bytes=1, width=10, height=10,
            candidates=candidates, model_version=model.name, product=chosen,
        )
    # when calibration collects its pairs
    pairs = calibration.pairs_from_snapshots(model, alpha=0.0)
    # then it sees both, with the truth the worker gave
    assert sorted((p.in_catalogue, p.correct) for p in pairs) == [(False, False), (True, True)]
    assert all(p.score == pytest.approx(0.91) and p.margin == pytest.approx(0.11) for p in pairs)
    # and on the open-set score the crowd behind the top product counts against it
    relative = calibration.pairs_from_snapshots(model, alpha=0.5)
    assert all(p.score == pytest.approx(0.91 - 0.5 * 0.80) for p in relative)
