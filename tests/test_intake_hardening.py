"""Issue 8 item 6 and item 4: what an attacker or a clumsy user found, each refused or made harmless."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

import io
import socket
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from PIL import Image
from rest_framework.test import APIClient

from catalog.models import Product, Variant
from tests import factories
from tests.celery_worker import reset_connections
from warehouse.celery import app as celery_app
from warehouse.models import Arrival, Snapshot, SnapshotStatus
from warehouse.services import processing

from .test_intake_fixtures import (  # noqa: F401
    SNAPSHOTS_URL,
    api,
    phone_photo,
    run_at_once,
    upload,
    worker,
)


def media_files() -> set[str]:
    root = Path(django_settings.MEDIA_ROOT)
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()} if root.exists() else set()


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 60, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def matched(upload, shared_data) -> int:
    return upload(phone_photo(shared_data, 0)).json()["id"]


@pytest.fixture
def variant(db) -> Variant:
    return factories.variant(product_obj=factories.product(sku="HARD-001"), size="M", stock=5)


@pytest.mark.django_db
def test_a_refused_not_in_catalogue_leaves_no_image_file(api, matched):
    before, products, status = media_files(), Product.objects.count(), Snapshot.objects.get(pk=matched).status
    response = api.post(f"{SNAPSHOTS_URL}{matched}/new/", {"quantity": 10**9, "size": "M"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_quantity"
    assert media_files() == before and Product.objects.count() == products
    assert Snapshot.objects.get(pk=matched).status == status


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("size", "code"), [((1, 1), "too_small"), ((59000, 1), "too_small"), ((3000, 300), "bad_shape")]
)
def test_degenerate_images_are_refused_at_upload(upload, size, code):
    before = media_files()
    response = upload(png(*size), name="strip.png")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code and "pixels" in response.json()["detail"]
    assert not Snapshot.objects.exists() and media_files() == before


@pytest.mark.django_db
@pytest.mark.parametrize("quantity", ["1.0", " 2 ", "٣", "2e0", True, 2.0, "0x2"])
def test_quantities_are_plain_whole_numbers(api, matched, variant, quantity):
    response = api.post(f"{SNAPSHOTS_URL}{matched}/confirm/", {"variant_id": variant.pk, "quantity": quantity},
                        format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and body["field"] == "quantity" and body["detail"].startswith("quantity: ")
    assert not Arrival.objects.exists()
    variant.refresh_from_db()
    assert variant.stock_quantity == 5


@pytest.mark.django_db
def test_a_quantity_typed_in_a_form_still_books(api, matched, variant):
    response = api.post(f"{SNAPSHOTS_URL}{matched}/confirm/", {"variant_id": str(variant.pk), "quantity": "3"})
    assert response.status_code == 201, response.content
    variant.refresh_from_db()
    assert variant.stock_quantity == 8


@pytest.mark.django_db
@pytest.mark.parametrize("size", ["über😀", "A" * 11, "<b>", "-", "M\u200b"])
def test_a_new_size_must_look_like_a_size(api, matched, variant, size):
    response = api.post(f"{SNAPSHOTS_URL}{matched}/confirm/",
                        {"product_id": variant.product_id, "size": size, "quantity": 1}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_size"
    assert list(Variant.objects.filter(product=variant.product).values_list("size", flat=True)) == ["M"]


@pytest.mark.django_db
def test_a_plain_new_size_is_added(api, matched, variant):
    response = api.post(f"{SNAPSHOTS_URL}{matched}/confirm/",
                        {"product_id": variant.product_id, "size": "eu 38.5", "quantity": 1}, format="json")
    assert response.status_code == 201, response.content
    assert Variant.objects.filter(product=variant.product, size="EU 38.5").exists()


@pytest.mark.django_db
def test_validation_errors_have_detail_and_code(api, matched):
    response = api.post(f"{SNAPSHOTS_URL}{matched}/confirm/", {}, format="json")
    body = response.json()
    assert response.status_code == 400
    assert body["code"] == "required" and body["field"] == "quantity" and body["detail"] == (
        "quantity: This field is required."
    )
    assert body["fields"]["quantity"] == ["This field is required."]
    fix = api.post(f"{SNAPSHOTS_URL}{matched}/fix/", {"rect": [1, 2, "x", 4]}, format="json").json()
    assert fix["code"] == "invalid" and fix["field"] == "rect" and isinstance(fix["detail"], str)
    listing = api.get(f"{SNAPSHOTS_URL}?status=nonsense").json()
    assert listing["code"] == "invalid" and listing["field"] == "status"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/intake/snapshots/abc/", "/api/v1/intake/snapshots/1/confirm/x/",
                                  "/api/v1/nothing-here", "/api/v1/intake/snapshots"])
def test_unknown_api_paths_answer_json_404(api, settings, path):
    settings.DEBUG = True  # where Django would otherwise show its HTML debug page
    response = api.get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
    if path.endswith("snapshots"):
        assert "trailing slash" in response.json()["detail"]


@pytest.mark.django_db
def test_an_unknown_snapshot_is_a_json_404(api):
    response = api.get(f"{SNAPSHOTS_URL}999999/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


class DeadBroker:
    """A TCP port that accepts connections and closes them at once: a broken broker. Counts connections."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            client.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def broker_down():
    dead = DeadBroker()
    url = f"redis://127.0.0.1:{dead.port}/0"
    saved = {key: celery_app.conf[key] for key in ("broker_url", "result_backend", "task_always_eager")}
    celery_app.conf.update(broker_url=url, result_backend=url, task_always_eager=False)
    reset_connections(celery_app)
    try:
        yield dead
    finally:
        celery_app.conf.update(saved)
        reset_connections(celery_app)
        dead.close()


@pytest.mark.django_db
def test_with_the_broker_down_an_upload_is_kept_and_the_sweep_picks_it_up(
    upload, shared_data, broker_down, django_capture_on_commit_callbacks
):
    # when a photo is uploaded while the broker only drops connections
    response = upload(phone_photo(shared_data, 0))
    # then the upload is accepted at once: one try to publish, no retries, no result store contacted
    assert response.status_code == 202, response.content
    assert 1 <= broker_down.connections <= 2
    snapshot = Snapshot.objects.get(pk=response.json()["id"])
    assert snapshot.status == SnapshotStatus.RECEIVED and Path(snapshot.original.path).exists()
    # and once the broker is back (here: in-process), the sweep matches it
    celery_app.conf.task_always_eager = True
    Snapshot.objects.filter(pk=snapshot.pk).update(updated_at=snapshot.updated_at.replace(year=2000))
    with django_capture_on_commit_callbacks(execute=True):
        assert processing.snapshots_requeue_stale() == [snapshot.pk]
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.MATCHED


@pytest.mark.django_db
def test_an_item_books_one_arrival_unless_another_is_asked_for(api, matched, variant):
    url = f"{SNAPSHOTS_URL}{matched}/confirm/"
    first = api.post(url, {"variant_id": variant.pk, "quantity": 2}, format="json")
    again = api.post(url, {"variant_id": variant.pk, "quantity": 2}, format="json")
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    other = api.post(url, {"product_id": variant.product_id, "size": "L", "quantity": 1}, format="json")
    assert other.status_code == 409 and other.json()["code"] == "already_booked"
    more = api.post(url, {"product_id": variant.product_id, "size": "L", "quantity": 1, "add_another": True},
                    format="json")
    assert more.status_code == 201
    assert Arrival.objects.filter(snapshot_id=matched).count() == 2
    variant.refresh_from_db()
    assert variant.stock_quantity == 7
    events = Snapshot.objects.get(pk=matched).events
    assert [e.get("another") for e in events if e["action"] == "confirm"] == [None, True]


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_confirms_without_a_key_book_one_arrival(worker, matched, variant):
    def confirm() -> int:
        client = APIClient()
        client.force_login(worker)
        payload = {"variant_id": variant.pk, "quantity": 3}
        return client.post(f"{SNAPSHOTS_URL}{matched}/confirm/", payload, format="json").status_code

    answers = run_at_once(confirm, 10)
    assert answers == [201] * 10
    assert Arrival.objects.filter(snapshot_id=matched).count() == 1
    variant.refresh_from_db()
    assert variant.stock_quantity == 8
