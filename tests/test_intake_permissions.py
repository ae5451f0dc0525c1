"""Only the warehouse role reaches intake; a worker sees and changes only their own items."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from catalog.services import variant_adjust_stock
from tests import factories
from warehouse.models import Arrival

from .test_intake_fixtures import (  # noqa: F401
    PASSWORD,
    SNAPSHOTS_URL,
    api,
    make_worker,
    phone_photo,
    upload,
    worker,
)

pytestmark = pytest.mark.django_db

API_GETS = [SNAPSHOTS_URL, "/api/v1/intake/arrivals/"]
PAGES = ["/intake/", "/intake/today/"]


@pytest.fixture
def photo_of_worker(upload, shared_data) -> int:
    return upload(phone_photo(shared_data, 0), process=False).json()["id"]


@pytest.mark.parametrize("url", API_GETS)
def test_the_api_refuses_anonymous_callers(url):
    response = APIClient().get(url)
    assert response.status_code in (401, 403)
    assert response.json()["detail"]


def test_the_api_refuses_a_signed_in_user_without_the_role():
    client = APIClient()
    client.force_login(User.objects.create_user("clerk", password=PASSWORD))
    for url in API_GETS:
        response = client.get(url)
        assert response.status_code == 403 and "warehouse" in response.json()["detail"]
    assert client.post(SNAPSHOTS_URL, {}).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_pages_send_anonymous_visitors_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith(f"/accounts/login/?next={url}")


def test_pages_tell_a_user_without_the_role_what_to_do(client):
    client.force_login(User.objects.create_user("clerk", password=PASSWORD))
    response = client.get("/intake/")
    assert response.status_code == 403 and b"warehouse" in response.content


def test_the_login_page_is_phone_friendly_and_signs_in(client, worker):
    page = client.get("/accounts/login/?next=/intake/")
    assert page.status_code == 200 and b'name="viewport"' in page.content and b"Sign in" in page.content
    response = client.post("/accounts/login/", {"username": "worker", "password": PASSWORD, "next": "/intake/"})
    assert response.status_code == 302 and response["Location"] == "/intake/"
    assert client.get("/intake/").status_code == 200
    signed_out = client.post("/accounts/logout/")
    assert signed_out.status_code == 200 and b"signed out" in signed_out.content
    assert client.get("/intake/").status_code == 302


def test_pages_open_for_a_worker(client, worker, photo_of_worker):
    client.force_login(worker)
    for url in [*PAGES, f"/intake/s/{photo_of_worker}/", f"/intake/s/{photo_of_worker}/fix/",
                f"/intake/s/{photo_of_worker}/image/preview/", f"/intake/s/{photo_of_worker}/image/original/"]:
        assert client.get(url).status_code == 200, url
    assert client.get(f"/intake/s/{photo_of_worker}/image/cutout/").status_code == 404  # not made yet
    assert client.get(f"/intake/s/{photo_of_worker}/image/secret/").status_code == 404


def test_another_worker_cannot_see_or_change_my_items(client, photo_of_worker):
    other = make_worker("other")
    api_other = APIClient()
    api_other.force_login(other)
    assert api_other.get(f"{SNAPSHOTS_URL}{photo_of_worker}/").status_code == 404
    assert api_other.post(f"{SNAPSHOTS_URL}{photo_of_worker}/discard/").status_code == 404
    assert api_other.get(SNAPSHOTS_URL).json()["count"] == 0
    client.force_login(other)
    assert client.get(f"/intake/s/{photo_of_worker}/").status_code == 404
    assert client.get(f"/intake/s/{photo_of_worker}/image/original/").status_code == 404


def test_only_the_author_undoes_an_arrival_and_only_for_a_while(api, worker, settings):
    variant = factories.variant(stock=1)
    arrival = Arrival.objects.create(variant=variant, quantity=2, user=worker)
    variant_adjust_stock(variant_id=variant.pk, delta=2)
    other = APIClient()
    other.force_login(make_worker("other"))
    response = other.post(f"/api/v1/intake/arrivals/{arrival.pk}/undo/")
    assert response.status_code == 400 and response.json()["code"] == "not_yours"
    # when the undo window (10 minutes by default) has passed
    settings.STOCKMATCH_ARRIVAL_UNDO_MINUTES = 10
    Arrival.objects.filter(pk=arrival.pk).update(created_at=timezone.now() - timedelta(minutes=11))
    response = api.post(f"/api/v1/intake/arrivals/{arrival.pk}/undo/")
    assert response.status_code == 400 and response.json()["code"] == "undo_expired"
    assert "10 minutes" in response.json()["detail"]
    variant.refresh_from_db()
    assert variant.stock_quantity == 3


def test_undo_refuses_when_the_pieces_already_left_the_stock(api, worker):
    variant = factories.variant(stock=0)
    arrival = Arrival.objects.create(variant=variant, quantity=3, user=worker)
    variant_adjust_stock(variant_id=variant.pk, delta=3)
    variant_adjust_stock(variant_id=variant.pk, delta=-2)  # two were picked meanwhile
    response = api.post(f"/api/v1/intake/arrivals/{arrival.pk}/undo/")
    assert response.status_code == 400 and response.json()["code"] == "stock_moved"
    variant.refresh_from_db()
    arrival.refresh_from_db()
    assert variant.stock_quantity == 1 and arrival.undone_at is None


def test_a_worker_without_the_role_anymore_is_refused_mid_session(api, worker, photo_of_worker):
    worker.groups.clear()
    assert api.get(f"{SNAPSHOTS_URL}{photo_of_worker}/").status_code == 403
