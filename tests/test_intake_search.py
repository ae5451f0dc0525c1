"""A way out when recognition fails: find the product by SKU, name or barcode, and confirm it as a labelled pair."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

from catalog.models import ProductStatus
from tests import factories
from warehouse.models import SnapshotStatus
from warehouse.selectors import training_pairs

from .test_intake_fixtures import (  # noqa: F401
    SNAPSHOTS_URL,
    api,
    phone_photo,
    upload,
    worker,
)

PRODUCTS_URL = "/api/v1/intake/products/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def shelf(db) -> dict:
    jacket = factories.product(sku="DEN-0042", name="Blue denim jacket")
    factories.variant(product_obj=jacket, size="M", stock=2, barcode="4006381333931")
    factories.variant(product_obj=jacket, size="L", stock=0, barcode="4006381333948")
    skirt = factories.product(sku="SKR-0007", name="Denim skirt")
    factories.variant(product_obj=skirt, size="S", stock=1)
    gone = factories.product(sku="DEN-0001", name="Old denim jacket", status=ProductStatus.RETIRED)
    return {"jacket": jacket, "skirt": skirt, "gone": gone}


def found(api, query: str) -> list[str]:
    response = api.get(PRODUCTS_URL, {"q": query})
    assert response.status_code == 200, response.content
    return [row["sku"] for row in response.json()]


def test_products_are_found_by_sku_name_and_barcode(api, shelf):
    assert found(api, "den-0042") == ["DEN-0042"]
    assert found(api, "DEN-00") == ["DEN-0042"]  # retired products are not offered
    assert found(api, "denim") == ["DEN-0042", "SKR-0007"]
    assert found(api, "DEN") == ["DEN-0042", "SKR-0007"]  # SKUs that start with it first, then names
    assert found(api, "4006381333948") == ["DEN-0042"]  # the barcode of one size finds the product once
    assert found(api, "x") == [] and found(api, "nothing like it") == []
    row = api.get(PRODUCTS_URL, {"q": "4006381333931"}).json()[0]
    assert row["name"] == "Blue denim jacket"
    assert [(s["size"], s["stock"]) for s in row["sizes"]] == [("M", 2), ("L", 0)]


def test_the_search_needs_a_query_and_the_warehouse_role(api, shelf):
    missing = api.get(PRODUCTS_URL)
    assert missing.status_code == 400 and missing.json()["code"] == "required" and missing.json()["field"] == "q"
    outsider = APIClient()
    outsider.force_login(User.objects.create_user("visitor", password="visitor-pw-4821"))
    assert outsider.get(PRODUCTS_URL, {"q": "denim"}).status_code == 403


def test_a_product_found_by_search_is_confirmed_as_a_labelled_pair(api, upload, shared_data, shelf):
    snapshot_id = upload(phone_photo(shared_data, 0)).json()["id"]
    row = api.get(PRODUCTS_URL, {"q": "4006381333931"}).json()[0]
    variant_id = next(s["variant_id"] for s in row["sizes"] if s["size"] == "M")
    response = api.post(f"{SNAPSHOTS_URL}{snapshot_id}/confirm/",
                        {"variant_id": variant_id, "quantity": 1, "source": "search"}, format="json")
    assert response.status_code == 201, response.content
    pair = training_pairs().get(pk=snapshot_id)
    assert pair.status == SnapshotStatus.CONFIRMED and pair.product == shelf["jacket"]
    confirm = [e for e in pair.events if e["action"] == "confirm"][-1]
    assert confirm["source"] == "search" and confirm["product"] == shelf["jacket"].pk
    bad = api.post(f"{SNAPSHOTS_URL}{snapshot_id}/confirm/",
                   {"variant_id": variant_id, "quantity": 1, "source": "guess"}, format="json")
    assert bad.status_code == 400 and bad.json()["field"] == "source"


def test_the_item_page_offers_the_search_with_big_targets(api, upload, shared_data, worker):
    snapshot_id = upload(phone_photo(shared_data, 0)).json()["id"]
    client = APIClient()
    client.force_login(worker)
    page = client.get(f"/intake/s/{snapshot_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    for marker in ('id="search-form"', 'id="search-q"', 'type="search"', 'id="btn-scan" class="btn hidden"',
                   'id="scan-video"'):
        assert marker in html
    script = Path(finders.find("warehouse/snapshot.js")).read_text()
    assert "BarcodeDetector" in script and "/api/v1/intake/products/" in script
