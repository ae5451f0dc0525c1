"""Who may use the mirror API (device keys only), throttling per key, CORS, product detail, photos, shortlists."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from catalog.models import Deal, ProductStatus
from catalog.services import product_image_add
from matching.mirror.models import MirrorKey, Shortlist
from tests import factories
from tests.conftest import jpeg_bytes
from warehouse.roles import WAREHOUSE

from .mirror_fixtures import SHOPPER_KEYS, device_client, keys_in, scalars_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def shirt():
    product = factories.product(sku="SH-1", name="Linen shirt", brand="Acme", price=Decimal("59.90"))
    product_image_add(product=product, data=jpeg_bytes(300, 400), filename="a.jpg", role="primary")
    product_image_add(product=product, data=jpeg_bytes(300, 400, colour=(10, 120, 40)), filename="b.jpg")
    factories.variant(product_obj=product, size="S", stock=0)
    factories.variant(product_obj=product, size="M", stock=4)
    factories.variant(product_obj=product, size="L", stock=1)
    return product


def staff(username: str = "fitting") -> User:
    user = User.objects.create_user(username, password="pw-1234567890")
    user.groups.add(Group.objects.get(name=WAREHOUSE))
    return user


def test_product_detail_shows_only_what_a_shopper_may_see(shirt):
    now = timezone.now()
    Deal.objects.create(product=shirt, label="Old sale", percent_off=Decimal("50"),
                        starts_at=now - dt.timedelta(days=9), ends_at=now - dt.timedelta(days=2))  # over
    Deal.objects.create(product=shirt, label="Summer", deal_price=Decimal("49.00"),
                        starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(days=2))
    client, _ = device_client()
    response = client.get("/api/v1/mirror/products/SH-1")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"sku", "name", "brand", "price", "currency", "deal", "sizes", "image_urls"}
    assert keys_in(body) <= SHOPPER_KEYS
    assert (body["sku"], body["name"], body["brand"], body["price"]) == ("SH-1", "Linen shirt", "Acme", "59.90")
    assert body["sizes"] == ["M", "L"]  # in stock only, never how many
    assert body["deal"]["label"] == "Summer" and body["deal"]["price"] == "49.00"
    assert len(body["image_urls"]) == 2 and all(
        url.startswith("http://testserver/mirror/images/") for url in body["image_urls"]
    )
    assert shirt.pk not in scalars_in(body)  # no internal id, no stock count anywhere
    assert not [value for value in scalars_in(body) if isinstance(value, int) and not isinstance(value, bool)]


@pytest.mark.parametrize("status", [ProductStatus.RETIRED, ProductStatus.DRAFT, ProductStatus.MERGED])
def test_products_not_on_sale_are_not_found(shirt, status):
    shirt.status = status
    shirt.save()
    client, _ = device_client()
    assert client.get("/api/v1/mirror/products/SH-1").status_code == 404


def test_the_mirror_api_takes_only_valid_mirror_keys(shirt):
    url = "/api/v1/mirror/products/SH-1"
    # no key, a made-up key, the library's generic key, a staff session: 401 with the scheme named
    anonymous = APIClient()
    response = anonymous.get(url)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Api-Key"
    anonymous.credentials(HTTP_AUTHORIZATION="Api-Key abcdefgh.not-a-real-secret")
    assert anonymous.get(url).status_code == 401
    _, generic = APIKey.objects.create_key(name="generic")
    anonymous.credentials(HTTP_AUTHORIZATION=f"Api-Key {generic}")
    assert anonymous.get(url).status_code == 401
    session = APIClient()
    session.force_login(User.objects.create_superuser("boss", password="pw-1234567890"))
    assert session.get(url).status_code == 401
    assert session.post("/api/v1/mirror/shortlists", {"items": []}, format="json").status_code == 401
    # an expired key too
    client, device = device_client()
    assert client.get(url).status_code == 200
    MirrorKey.objects.filter(pk=device.pk).update(expiry_date=timezone.now() - dt.timedelta(minutes=1))
    assert client.get(url).status_code == 401


def test_keys_are_hashed_at_rest():
    device, key = MirrorKey.objects.create_key(name="mirror")
    stored = MirrorKey.objects.filter(pk=device.pk).values_list("id", "hashed_key").get()
    assert key.split(".")[1] not in "".join(stored)
    assert stored[1].startswith("sha512$$")


def test_a_revoked_key_gets_401_on_its_next_request(shirt, client):
    mirror, device = device_client()
    assert mirror.get("/api/v1/mirror/products/SH-1").status_code == 200
    # revoked in admin (the list action)
    admin = User.objects.create_superuser("admin", password="pw-1234567890")
    client.force_login(admin)
    response = client.post("/admin/mirror/mirrorkey/", {"action": "revoke", "_selected_action": [device.pk]})
    assert response.status_code == 302
    response = mirror.get("/api/v1/mirror/products/SH-1")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_admin_creates_a_key_shows_it_once_and_lists_it(client):
    client.force_login(User.objects.create_superuser("admin", password="pw-1234567890"))
    response = client.post(
        "/admin/mirror/mirrorkey/add/", {"name": "Store 12 mirror", "location": "floor 1"}, follow=True
    )
    assert response.status_code == 200
    device = MirrorKey.objects.get(name="Store 12 mirror")
    shown = [str(m) for m in response.context["messages"] if "The API key for" in str(m)][0]
    key = shown.split(" is: ")[1].split(". ")[0]
    assert key.startswith(device.prefix + ".") and MirrorKey.objects.is_valid(key)
    listing = client.get("/admin/mirror/mirrorkey/").content.decode()
    assert device.prefix in listing and key not in listing


def test_requests_are_throttled_per_key(shirt, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "mirror": "3/min"},
    }
    first, _ = device_client("one")
    second, _ = device_client("two")
    codes = [first.get("/api/v1/mirror/products/SH-1").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert "Retry-After" in first.get("/api/v1/mirror/products/SH-1")
    assert second.get("/api/v1/mirror/products/SH-1").status_code == 200


def test_cors_answers_only_configured_kiosk_origins(shirt, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://kiosk.shop.example"]
    client = APIClient()
    preflight = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET", "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "authorization"}
    allowed = client.options("/api/v1/mirror/products/SH-1", HTTP_ORIGIN="https://kiosk.shop.example", **preflight)
    assert allowed["Access-Control-Allow-Origin"] == "https://kiosk.shop.example"
    assert "authorization" in allowed["Access-Control-Allow-Headers"]
    other = client.options("/api/v1/mirror/products/SH-1", HTTP_ORIGIN="https://evil.example", **preflight)
    assert "Access-Control-Allow-Origin" not in other
    staff_api = client.options("/api/v1/match/", HTTP_ORIGIN="https://kiosk.shop.example", **preflight)
    assert "Access-Control-Allow-Origin" not in staff_api


def test_product_photos_are_resized_and_cached_by_browsers(shirt):
    client, _ = device_client()
    url = client.get("/api/v1/mirror/products/SH-1").json()["image_urls"][0]
    photo = APIClient().get(url)  # an <img> tag sends no key
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    assert "max-age=" in photo["Cache-Control"] and "immutable" in photo["Cache-Control"]
    assert "public" in photo["Cache-Control"]
    again = APIClient().get(url, HTTP_IF_NONE_MATCH=photo["ETag"])
    assert again.status_code == 304
    shirt.status = ProductStatus.RETIRED
    shirt.save()
    assert APIClient().get(url).status_code == 404
    assert APIClient().get("/mirror/images/not-a-hash.jpg").status_code == 404


def test_a_shortlist_reaches_the_fitting_room_with_stock_rechecked_and_expires(shirt, client, settings):
    settings.MIRROR = {**settings.MIRROR, "SHORTLIST_MINUTES": 20}
    mirror, device = device_client()
    # the shopper picks M and L and sends them
    response = mirror.post("/api/v1/mirror/shortlists", {"items": [{"sku": "SH-1", "size": "M"},
                                                                   {"sku": "SH-1", "size": "L"}]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert keys_in(body) <= SHOPPER_KEYS and len(body["code"]) == 4
    assert [item["size"] for item in body["items"]] == ["M", "L"]
    # meanwhile size L sells out
    shirt.variants.filter(size="L").update(stock_quantity=0)
    # the fitting room sees it, with stock checked now
    client.force_login(staff())
    listing = client.get("/api/v1/fitting-room/shortlists/").json()
    assert [s["code"] for s in listing] == [body["code"]]
    assert [(i["size"], i["in_stock"]) for i in listing[0]["items"]] == [("M", True), ("L", False)]
    page = client.get("/mirror/fitting-room/").content.decode()
    assert body["code"] in page and "Linen shirt" in page and "sold out" in page.lower()
    # after the configured time it is gone from both
    later = timezone.now() + dt.timedelta(minutes=21)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert client.get("/api/v1/fitting-room/shortlists/").json() == []
        assert body["code"] not in client.get("/mirror/fitting-room/").content.decode()
    assert Shortlist.objects.get().device == device


def test_a_handled_shortlist_leaves_the_list(shirt, client):
    mirror, _ = device_client()
    code = mirror.post(
        "/api/v1/mirror/shortlists", {"items": [{"sku": "SH-1", "size": "M"}]}, format="json"
    ).json()["code"]
    client.force_login(staff())
    shortlist = Shortlist.objects.get(code=code)
    assert client.post(f"/mirror/fitting-room/{shortlist.pk}/done/").status_code == 302
    assert client.get("/api/v1/fitting-room/shortlists/").json() == []


@pytest.mark.parametrize(("items", "reason"), [
    ([], "empty"),
    ([{"sku": "SH-1", "size": "XXL"}], "size XXL"),
    ([{"sku": "NOPE", "size": "M"}], "not available"),
])
def test_a_bad_shortlist_is_refused_and_nothing_is_saved(shirt, items, reason):
    mirror, _ = device_client()
    response = mirror.post("/api/v1/mirror/shortlists", {"items": items}, format="json")
    assert response.status_code == 400 and reason in response.json()["detail"]
    assert Shortlist.objects.count() == 0


def test_the_fitting_room_is_for_staff(client):
    assert client.get("/mirror/fitting-room/").status_code == 302
    assert client.get("/api/v1/fitting-room/shortlists/").status_code == 403
    client.force_login(User.objects.create_user("shopper", password="pw-1234567890"))
    assert client.get("/mirror/fitting-room/").status_code == 403
    assert client.get("/api/v1/fitting-room/shortlists/").status_code == 403
    _, key = MirrorKey.objects.create_key(name="mirror")
    mirror = APIClient()
    mirror.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert mirror.get("/api/v1/fitting-room/shortlists/").status_code in (401, 403)


def test_mirror_key_command_prints_a_working_kiosk_url(shirt):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("mirror_key", "Shop mirror", "--base-url", "http://shop.example", stdout=out)
    url = out.getvalue().strip().splitlines()[-1].strip()
    assert url.startswith("http://shop.example/mirror/?key=")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {url.split('key=')[1]}")
    assert client.get("/api/v1/mirror/products/SH-1").status_code == 200
