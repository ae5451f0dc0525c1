"""The mirror API: contract, shopper-safe fields only, complete-the-look rules, bad frames, friendly answers."""
# ruff: noqa: F811 - fixtures imported from tests/ modules are redefined as arguments
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from catalog.models import Product
from matching.mirror.models import Shortlist
from tests.conftest import jpeg_bytes

from .mirror_fixtures import (
    PAIRS,
    RECOMMEND_URL,
    SHOPPER_KEYS,
    build_shop,
    device_client,
    frame_of,
    keys_in,
    scalars_in,
    shop_photo,
    worn_photo,
)

pytestmark = pytest.mark.django_db


def noise_jpeg(width: int, height: int) -> bytes:
    """A real JPEG that does not compress (random pixels): a few hundred kB."""
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.slow
def test_a_worn_top_gets_similar_tops_and_a_look_of_other_kinds_in_shopper_safe_fields(shared_data, settings):
    # given a shop with tops, bottoms and shoes, a curated look and a deal, and a mirror device
    shop = build_shop(shared_data)
    client, _ = device_client()
    files_before = media_files(settings)
    # when a shopper wearing one of the tops stands at the mirror (a 1080x1440 frame)
    response = client.post(RECOMMEND_URL, {"frame": frame_of(worn_photo(shared_data, PAIRS[0]))}, format="multipart")
    # then the mirror answers with garments, each with predictions and products
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["status"] == "ok" and body["garments"]
    # and nothing but shopper-safe fields appears anywhere in the answer
    assert keys_in(body) <= SHOPPER_KEYS, keys_in(body) - SHOPPER_KEYS
    assert not [v for v in scalars_in(body) if isinstance(v, int) and not isinstance(v, bool)]  # no ids, no counts
    products = {p.sku: p for p in Product.objects.all()}
    top_garment = next(g for g in body["garments"] if g["kind"] and g["kind"]["label"] == "topwear")
    assert "TOP-2100" in [p["sku"] for p in top_garment["similar"]]
    # a sure top's look-alikes are tops
    if top_garment["kind"]["confidence"] >= settings.MIRROR["KIND_FILTER_CONFIDENCE"]:
        assert {products[p["sku"]].category.kind for p in top_garment["similar"]} == {"topwear"}
    for garment in body["garments"]:
        assert 0 <= garment["kind"]["confidence"] <= 1 and garment["gender"]["label"] in {"women", "unisex", "men"}
        x0, y0, x1, y1 = garment["region"]
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        for item in garment["similar"] + garment["complete_the_look"]:
            product = products[item["sku"]]
            # active and in stock only, sizes without counts, photos on the mirror's image URLs
            assert product.status == "active"
            assert item["sizes"] == ["M"]
            assert item["image_urls"] and all("/mirror/images/" in url for url in item["image_urls"])
        look_skus = [item["sku"] for item in garment["complete_the_look"]]
        # complete-the-look: never the garment's own kind, never sold out, retired or draft
        assert all(products[sku].category.kind != garment["kind"]["label"] for sku in look_skus)
        assert not {"BOT-SOLD", "BOT-RET", "SHO-DRAFT"} & set(look_skus)
    # the curated look comes first for the top, with its deal
    first = top_garment["complete_the_look"][0]
    assert first["sku"] == "BOT-2"
    assert first["deal"] == {"label": "Spring sale", "price": "30.00", "percent_off": 25.0,
                             "ends_at": first["deal"]["ends_at"]}
    assert first["price"] == "40.00" and first["currency"] == "EUR"
    # and the frame was not stored (only product photos' colour cache rows may have been written)
    assert media_files(settings) == files_before
    assert Shortlist.objects.count() == 0
    assert shop.look.products.count() == 5


def test_a_frame_with_no_person_gets_the_friendly_answer(shared_data, settings):
    client, _ = device_client()
    for frame in (
        frame_of(shop_photo(shared_data, PAIRS[0])), io.BytesIO(jpeg_bytes(1280, 720, colour=(235, 232, 228)))
    ):
        frame.name = "frame.jpg"
        response = client.post(RECOMMEND_URL, {"frame": frame}, format="multipart")
        assert response.status_code == 200
        assert response.json() == {
            "status": "no_person", "message": "Hold the garment up to the mirror.", "garments": []
        }
    assert media_files(settings) == []


def test_a_person_is_seen_by_skin_and_hair_when_the_face_is_cut_off(shared_data):
    from matching.mirror.people import faces_find
    from matching.mirror.services import person_seen
    from segmentation import cut_out_garments

    for path, person in [(worn_photo(shared_data, pair), True) for pair in (2106, 2107, 2351)] + [
        (shop_photo(shared_data, pair), False) for pair in (2104, 2105, 2108)  # light collars, beige knits
    ]:
        frame = Image.open(frame_of(path)).convert("RGB")
        assert not faces_find(frame)  # models cropped at the chin or the lips: no face to find
        found = cut_out_garments(frame)
        assert found[0].person_seen is person, path.name
        assert person_seen(frame, found, [cut for cut in found if cut.status == "ok"]) is person, path.name


@pytest.mark.parametrize("fmt", ["PNG", "HEIF"])
def test_png_and_heic_frames_are_read(shared_data, fmt):
    import pillow_heif  # noqa: F401 - registers the HEIF encoder with Pillow

    client, _ = device_client()
    frame = frame_of(shop_photo(shared_data, PAIRS[0]), size=(540, 720), fmt=fmt)
    response = client.post(RECOMMEND_URL, {"frame": frame}, format="multipart")
    assert response.status_code == 200 and response.json()["status"] == "no_person"


def test_frames_are_kept_only_when_a_setting_asks_for_it(shared_data, settings):
    client, _ = device_client()
    settings.MIRROR = {**settings.MIRROR, "KEEP_FRAMES": True}
    response = client.post(RECOMMEND_URL, {"frame": frame_of(shop_photo(shared_data, PAIRS[0]))}, format="multipart")
    assert response.status_code == 200
    kept = media_files(settings)
    assert len(kept) == 1 and "mirror-frames" in str(kept[0])


@pytest.mark.parametrize(("payload", "status", "code"), [
    (b"%PDF-1.7 not a photo", 400, "not_an_image"),
    (jpeg_bytes(640, 480)[:900], 400, "corrupt"),
    (None, 413, "too_large"),
])
def test_bad_frames_are_refused_with_a_reason_and_nothing_is_written(settings, payload, status, code):
    settings.MIRROR = {**settings.MIRROR, "MAX_FRAME_BYTES": 200_000}
    client, _ = device_client()
    upload = io.BytesIO(payload if payload is not None else noise_jpeg(800, 800))
    upload.name = "frame.jpg"
    response = client.post(RECOMMEND_URL, {"frame": upload}, format="multipart")
    assert response.status_code == status, response.content
    assert response.json()["code"] == code and response.json()["detail"]
    assert media_files(settings) == [] and Shortlist.objects.count() == 0


def test_a_request_without_a_frame_is_refused():
    client, _ = device_client()
    response = client.post(RECOMMEND_URL, {"photo": io.BytesIO(jpeg_bytes())}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "no_frame"
