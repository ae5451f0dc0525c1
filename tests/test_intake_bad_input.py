"""Bad uploads get a clear answer and leave nothing behind; odd but valid photos are accepted upright."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

import io
import threading
import uuid
from pathlib import Path

import pillow_heif
import pytest
from django.conf import settings
from django.db import connection
from PIL import Image
from rest_framework.test import APIClient

from catalog.models import Product
from tests.conftest import jpeg_bytes
from warehouse.models import Snapshot

from .test_intake_fixtures import (  # noqa: F401
    SNAPSHOTS_URL,
    api,
    make_worker,
    phone_photo,
    upload,
    worker,
)


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def assert_nothing_stored() -> None:
    assert Snapshot.objects.count() == 0
    assert stored_files() == []


def truncated_jpeg() -> bytes:
    data = jpeg_bytes(640, 480)
    return data[: len(data) // 2]


def decompression_bomb() -> bytes:
    """A small PNG that decodes to 100 megapixels (1-bit, all black)."""
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "name", "status", "code", "words"),
    [
        (b"%PDF-1.7 this is a delivery note, not a photo", "note.jpg", 400, "not_an_image", "not a photo"),
        (truncated_jpeg(), "cut.jpg", 400, "corrupt", "damaged or incomplete"),
        (decompression_bomb(), "bomb.png", 400, "too_many_pixels", "pixels"),
        (b"", "empty.jpg", 400, "empty", "empty"),
    ],
    ids=["not-an-image", "truncated-jpeg", "decompression-bomb", "empty-file"],
)
def test_unusable_files_are_refused_with_a_reason_and_nothing_is_stored(upload, data, name, status, code, words):
    response = upload(data, name=name, key=str(uuid.uuid4()))
    assert response.status_code == status, response.content
    if code == "empty":
        assert response.json()["photo"]  # DRF refuses an empty file before the service sees it
    else:
        assert response.json()["code"] == code
        assert words in response.json()["detail"]
    assert_nothing_stored()


@pytest.mark.django_db
def test_a_photo_over_the_size_limit_is_refused_before_it_is_read(upload):
    body = b"\xff\xd8\xff" + b"\0" * (settings.STOCKMATCH_MAX_UPLOAD_BYTES + 128 * 1024)
    response = upload(body, name="huge.jpg")
    assert response.status_code == 413
    assert response.json() == {"detail": "The photo is larger than 25 MB. Take it again at a lower resolution.",
                               "code": "too_large"}
    assert_nothing_stored()


@pytest.mark.django_db
def test_the_configured_size_limit_applies_to_the_photo_itself(upload, settings, shared_data):
    photo = phone_photo(shared_data, 0)
    settings.STOCKMATCH_MAX_UPLOAD_BYTES = len(photo) - 1
    response = upload(photo)
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert_nothing_stored()


@pytest.mark.django_db
def test_a_missing_photo_field_is_explained(api):
    response = api.post(SNAPSHOTS_URL, {"idempotency_key": str(uuid.uuid4())}, format="multipart")
    assert response.status_code == 400 and "photo" in response.json()
    assert_nothing_stored()


@pytest.mark.django_db
def test_a_malformed_idempotency_key_is_refused(upload, shared_data):
    response = upload(phone_photo(shared_data, 0), key="x y")
    assert response.status_code == 400 and response.json()["code"] == "invalid_key"
    assert_nothing_stored()


@pytest.mark.django_db
def test_an_exif_rotated_photo_is_stored_as_sent_and_used_upright(upload):
    # given a landscape JPEG whose EXIF says "rotate 90° clockwise to view"
    exif = Image.Exif()
    exif[0x0112] = 6
    data = jpeg_bytes(800, 600, exif=exif.tobytes())
    # when uploaded
    response = upload(data, process=False)
    # then the original bytes are kept, and sizes (used by the cut-out hints) are upright
    assert response.status_code == 202, response.content
    snapshot = Snapshot.objects.get()
    assert (snapshot.width, snapshot.height) == (600, 800)
    with snapshot.original.open("rb") as handle:
        assert handle.read() == data
    with snapshot.preview.open("rb") as handle:
        assert Image.open(handle).size == (600, 800)


@pytest.mark.django_db
def test_a_heic_photo_is_accepted_matched_and_handed_to_the_catalogue_as_jpeg(api, upload, shared_data):
    # given an iPhone-style HEIC photo
    buffer = io.BytesIO()
    pillow_heif.from_pillow(Image.open(io.BytesIO(phone_photo(shared_data, 0)))).save(buffer, quality=80)
    # when uploaded, it is kept as sent, previewed as JPEG for the browser, and matched
    response = upload(buffer.getvalue(), name="IMG_0001.HEIC")
    assert response.status_code == 202, response.content
    assert response.item["status"] == "matched", response.item["error"]
    snapshot = Snapshot.objects.get()
    assert snapshot.original_format in {"HEIF", "HEIC"} and snapshot.original.name.endswith(".heic")
    with snapshot.preview.open("rb") as handle:
        assert Image.open(handle).format == "JPEG"
    # and "not in catalogue" gives the catalogue team a JPEG they can open
    product = api.post(f"{SNAPSHOTS_URL}{snapshot.pk}/new/").json()["product"]
    image = Product.objects.get(pk=product["id"]).images.get()
    assert image.file.name.endswith(".jpg") and image.role == "snapshot"


@pytest.mark.django_db
def test_a_double_submit_makes_one_snapshot(upload, shared_data):
    photo, key = phone_photo(shared_data, 1), str(uuid.uuid4())
    first = upload(photo, key=key, process=False)
    second = upload(photo, key=key, process=False)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert (first["Idempotent-Replayed"], second["Idempotent-Replayed"]) == ("false", "true")
    assert Snapshot.objects.count() == 1
    assert len([p for p in stored_files() if "/original/" in str(p)]) == 1
    # the key may come as a form field as well
    third = upload(photo, process=False, idempotency_key=key)
    assert third.json()["id"] == first.json()["id"]
    # the same key for another photo is a client bug, refused
    other = upload(phone_photo(shared_data, 2), key=key, process=False)
    assert other.status_code == 409 and other.json()["code"] == "key_reused"
    # without any key, sending the same file twice is still one snapshot
    assert upload(photo, process=False).json()["id"] == upload(photo, process=False).json()["id"]
    assert Snapshot.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_with_one_key_make_one_snapshot(shared_data):
    # given the same photo sent twice at the same moment (a double tap, or a retry racing the first try)
    user = make_worker("racer")
    photo, key = phone_photo(shared_data, 2), str(uuid.uuid4())
    barrier, results = threading.Barrier(2), []

    def submit() -> None:
        client = APIClient()
        client.force_login(user)
        barrier.wait()
        try:
            handle = io.BytesIO(photo)
            handle.name = "photo.jpg"
            response = client.post(SNAPSHOTS_URL, {"photo": handle}, format="multipart", HTTP_IDEMPOTENCY_KEY=key)
            results.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then both get the same snapshot, and only one original is stored
    assert [status for status, _ in results] == [202, 202]
    assert len({snapshot_id for _, snapshot_id in results}) == 1
    assert Snapshot.objects.count() == 1
    assert len([p for p in stored_files() if "/original/" in str(p)]) == 1
