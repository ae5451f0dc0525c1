"""Every API error has the promised shape, {detail, code}, including validation errors and unknown URLs."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from warehouse.roles import WAREHOUSE

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    user = User.objects.create_user("errors-worker", password="errors-worker-pw-3310")
    user.groups.add(Group.objects.get(name=WAREHOUSE))
    client = APIClient()
    client.force_login(user)
    return client


def test_validation_errors_carry_detail_and_code_beside_the_field_messages(api):
    response = api.post("/api/v1/intake/snapshots/", {}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "required" and body["detail"] == "photo: No file was submitted."
    assert body["photo"] == ["No file was submitted."]


def test_a_bad_page_or_filter_is_a_documented_json_error(api):
    page = api.get("/api/v1/intake/snapshots/", {"page": 0})
    assert page.status_code == 404 and page.json()["code"] == "not_found"
    status = api.get("/api/v1/intake/snapshots/", {"status": "nonsense"})
    assert status.status_code == 400 and {"detail", "code"} <= set(status.json())


def test_an_id_that_is_not_a_number_gets_json_not_the_html_page(api):
    response = api.post("/api/v1/intake/snapshots/-5/retry/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found" and isinstance(response.json()["detail"], str)
    assert api.get("/intake/no-such-page/").status_code == 404  # pages keep the HTML 404


def test_the_schema_documents_the_shared_errors(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    listing = schema["paths"]["/api/v1/intake/snapshots/"]["get"]["responses"]
    assert {"400", "401", "403", "404"} <= set(listing)
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail", "code"]
