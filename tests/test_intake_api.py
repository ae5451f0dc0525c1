"""The intake API end to end on real photos, the real matcher and real Postgres (Celery eager)."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

import re
import uuid

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from catalog.models import ImageRole, Product, ProductStatus, Variant
from warehouse.models import Arrival, Snapshot, SnapshotStatus
from warehouse.selectors import training_pairs

from .test_intake_fixtures import (  # noqa: F401
    SNAPSHOTS_URL,
    api,
    catalogue,
    on_table,
    phone_photo,
    upload,
    worker,
)

pytestmark = pytest.mark.django_db


def test_upload_match_confirm_and_undo_end_to_end(api, upload, catalogue, shared_data):
    # given a real phone photo
    photo = phone_photo(shared_data, 0)
    # when it is uploaded
    response = upload(photo, key=str(uuid.uuid4()))
    # then it is accepted, stored as sent, and matched against the catalogue
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "received"
    body = response.item
    assert body["status"] == "matched", body["error"]
    snapshot = Snapshot.objects.get(pk=body["id"])
    with snapshot.original.open("rb") as handle:
        assert handle.read() == photo
    assert 1 <= len(body["candidates"]) <= 10
    top = body["candidates"][0]
    assert {"sku", "name", "score", "image_url", "sizes", "product_id"} <= set(top)
    assert [c["score"] for c in body["candidates"]] == sorted((c["score"] for c in body["candidates"]), reverse=True)
    assert {size["size"] for size in top["sizes"]} == {"S", "M", "L"}
    assert set(body["decision"]) >= {"in_catalogue", "score", "threshold", "label"}
    assert body["timings"]["upload_to_candidates_ms"] > 0
    assert api.get(body["cutout_url"]).status_code == 200
    assert api.get(body["photo_url"])["Content-Type"] == "image/jpeg"

    # when the worker confirms 3 pieces of size M of the top candidate into bin a-12
    variant = Variant.objects.get(product_id=top["product_id"], size="M")
    response = api.post(f"{SNAPSHOTS_URL}{snapshot.pk}/confirm/",
                        {"variant_id": variant.pk, "quantity": 3, "bin_location": " a-12 "}, format="json")
    # then the stock goes up by 3 and the pair is kept for training
    assert response.status_code == 201, response.content
    arrival = response.json()
    assert arrival["stock"] == 8 and arrival["bin_location"] == "A-12" and arrival["can_undo"]
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.CONFIRMED and snapshot.product_id == top["product_id"]
    assert list(training_pairs()) == [snapshot]
    assert [a["id"] for a in api.get("/api/v1/intake/arrivals/").json()["results"]] == [arrival["id"]]

    # when the arrival is undone
    response = api.post(f"/api/v1/intake/arrivals/{arrival['id']}/undo/")
    # then the stock is exactly as before and the item can be decided again
    assert response.status_code == 200, response.content
    variant.refresh_from_db()
    assert variant.stock_quantity == 5
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.MATCHED and snapshot.product is None
    assert [event["action"] for event in snapshot.events] == [
        "upload", "process", "matched", "confirm", "undo arrival"
    ]
    again = api.post(f"/api/v1/intake/arrivals/{arrival['id']}/undo/")
    assert again.status_code == 400 and again.json()["code"] == "already_undone"
    variant.refresh_from_db()
    assert variant.stock_quantity == 5


def test_a_catalogue_item_photographed_on_a_table_is_among_the_top_candidates(upload, catalogue):
    target = catalogue[3]
    body = upload(on_table(target)).item
    assert body["status"] == "matched", body["error"]
    assert target.sku in [c["sku"] for c in body["candidates"][:3]]


def test_confirm_by_product_and_new_size_creates_the_variant(api, upload, catalogue, shared_data):
    snapshot_id = upload(phone_photo(shared_data, 1)).item["id"]
    product = catalogue[0]
    response = api.post(f"{SNAPSHOTS_URL}{snapshot_id}/confirm/",
                        {"product_id": product.pk, "size": "xl", "quantity": 2}, format="json")
    assert response.status_code == 201, response.content
    assert Variant.objects.get(product=product, size="XL").stock_quantity == 2
    # another size of the same item, asked for, is a second arrival; a different product is refused
    more = api.post(f"{SNAPSHOTS_URL}{snapshot_id}/confirm/",
                    {"product_id": product.pk, "size": "S", "quantity": 1, "add_another": True})
    assert more.status_code == 201
    other = api.post(f"{SNAPSHOTS_URL}{snapshot_id}/confirm/",
                     {"product_id": catalogue[1].pk, "size": "S", "quantity": 1})
    assert other.status_code == 400 and other.json()["code"] == "already_confirmed"
    assert Arrival.objects.filter(snapshot_id=snapshot_id).count() == 2


def test_a_resent_confirm_books_the_pieces_once(api, upload, catalogue, shared_data):
    snapshot_id = upload(phone_photo(shared_data, 2)).json()["id"]
    variant = Variant.objects.get(product=catalogue[0], size="S")
    payload = {"variant_id": variant.pk, "quantity": 4, "idempotency_key": str(uuid.uuid4())}
    first = api.post(f"{SNAPSHOTS_URL}{snapshot_id}/confirm/", payload, format="json")
    second = api.post(f"{SNAPSHOTS_URL}{snapshot_id}/confirm/", payload, format="json")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    variant.refresh_from_db()
    assert variant.stock_quantity == 9


def test_add_photo_matches_the_item_again_with_all_its_photos(api, upload, catalogue, shared_data):
    head = upload(phone_photo(shared_data, 3)).item
    response = upload(phone_photo(shared_data, 4), url=f"{SNAPSHOTS_URL}{head['id']}/photos/", photo_role="label")
    assert response.status_code == 202, response.content
    body = response.item
    assert body["id"] == head["id"] and body["status"] == "matched"
    assert [(p["photo_role"], p["status"]) for p in body["group_photos"]] == [("label", "matched")]
    assert body["group_photos"][0]["cutout_url"]
    assert Snapshot.objects.get(pk=head["id"]).attempts == 2
    # the list shows items, not their extra photos
    assert [row["id"] for row in api.get(SNAPSHOTS_URL).json()["results"]] == [head["id"]]


def test_fix_with_a_rectangle_runs_segmentation_and_matching_again(api, upload, catalogue, shared_data,
                                                                   django_capture_on_commit_callbacks):
    body = upload(phone_photo(shared_data, 5)).item
    url = f"{SNAPSHOTS_URL}{body['id']}/fix/"
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url, {"rect": [10, 20, 5000, 300], "fg": [[[100, 100], [120, 130]]]}, format="json")
    assert response.status_code == 202, response.content
    snapshot = Snapshot.objects.get(pk=body["id"])
    assert snapshot.status == SnapshotStatus.MATCHED and snapshot.attempts == 2
    assert snapshot.hints == {"rect": [10, 20, snapshot.width - 1, 300], "fg": [[[100, 100], [120, 130]]]}
    # a useless rectangle is refused with a reason
    tiny = api.post(url, {"rect": [10, 10, 12, 12]}, format="json")
    assert tiny.status_code == 400 and "too small" in tiny.json()["detail"]
    assert api.post(url, {}, format="json").json()["code"] == "invalid_hints"


def test_not_in_catalogue_makes_a_draft_product_from_the_photo(api, upload, catalogue, shared_data):
    body = upload(phone_photo(shared_data, 6)).item
    response = api.post(f"{SNAPSHOTS_URL}{body['id']}/new/", {"quantity": 2, "size": "m", "bin_location": "B7"})
    assert response.status_code == 201, response.content
    draft = Product.objects.get(pk=response.json()["product"]["id"])
    assert draft.status == ProductStatus.DRAFT
    assert re.fullmatch(rf"NEW-{timezone.localdate():%Y%m%d}-[0-9A-F]{{4}}", draft.sku)
    top_ids = [c["product_id"] for c in body["candidates"][:5]]
    top_categories = [Product.objects.get(pk=i).category_id for i in top_ids]
    assert draft.category_id == max(top_categories, key=top_categories.count)
    assert draft.images.get().role == ImageRole.SNAPSHOT
    assert draft.variants.get().stock_quantity == 2
    assert response.json()["snapshot"]["status"] == "new"
    # taking it back needs the arrival undone first, then retires the draft
    reopen = api.post(f"{SNAPSHOTS_URL}{body['id']}/reopen/")
    assert reopen.status_code == 400 and reopen.json()["code"] == "has_arrivals"
    api.post(f"/api/v1/intake/arrivals/{Arrival.objects.get(snapshot_id=body['id']).pk}/undo/")
    assert api.post(f"{SNAPSHOTS_URL}{body['id']}/reopen/").json()["status"] == "matched"
    draft.refresh_from_db()
    assert draft.status == ProductStatus.RETIRED


def test_a_failed_snapshot_shows_its_error_and_can_be_retried(api, upload, catalogue, shared_data,
                                                             django_capture_on_commit_callbacks):
    # given an upload whose stored original disappeared before processing
    photo = phone_photo(shared_data, 7)
    body = upload(photo, process=False).json()
    snapshot = Snapshot.objects.get(pk=body["id"])
    default_storage.delete(snapshot.original.name)
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"{SNAPSHOTS_URL}{snapshot.pk}/retry/")
    failed = api.get(f"{SNAPSHOTS_URL}{snapshot.pk}/").json()
    assert failed["status"] == "failed" and "missing" in failed["error"] and failed["actions"]["retry"]
    assert [row["id"] for row in api.get(SNAPSHOTS_URL, {"status": "failed,processing"}).json()["results"]] == [
        snapshot.pk
    ]
    # when the file is back and the worker retries, it is matched
    default_storage.save(snapshot.original.name, __import__("io").BytesIO(photo))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{SNAPSHOTS_URL}{snapshot.pk}/retry/")
    assert response.status_code == 202
    assert api.get(f"{SNAPSHOTS_URL}{snapshot.pk}/").json()["status"] == "matched"
    # a matched item is not retried
    assert api.post(f"{SNAPSHOTS_URL}{snapshot.pk}/retry/").status_code == 409


def test_lists_are_paginated_and_filtered(api, upload, shared_data):
    ids = [upload(phone_photo(shared_data, i), process=False).json()["id"] for i in range(3)]
    page = api.get(SNAPSHOTS_URL, {"status": "received", "today": "true"}).json()
    assert page["count"] == 3 and [row["id"] for row in page["results"]] == ids[::-1]
    assert api.get(SNAPSHOTS_URL, {"status": "matched"}).json()["count"] == 0
    assert api.get(SNAPSHOTS_URL, {"status": "bogus"}).status_code == 400
    assert api.get("/api/v1/intake/arrivals/", {"mine": "true"}).json() == {
        "count": 0, "next": None, "previous": None, "results": []
    }


def test_discard_and_restore(api, upload, shared_data, django_capture_on_commit_callbacks):
    snapshot_id = upload(phone_photo(shared_data, 0), process=False).json()["id"]
    assert api.post(f"{SNAPSHOTS_URL}{snapshot_id}/discard/").json()["status"] == "discarded"
    assert api.post(f"{SNAPSHOTS_URL}{snapshot_id}/confirm/", {"product_id": 1, "size": "M", "quantity": 1}
                    ).status_code in (400, 404, 409)
    assert api.post(f"{SNAPSHOTS_URL}{snapshot_id}/reopen/").json()["status"] == "received"
    assert Snapshot.objects.get(pk=snapshot_id).decided_at is None
