"""POST /api/v1/match/: who may call it, what bad input gets back, what a match returns."""
from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import Group, User
from PIL import Image
from rest_framework.test import APIClient

from catalog.services import product_image_add
from matching import services
from tests import factories
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.django_db
URL = "/api/v1/match/"


def client_for(role: str | None) -> APIClient:
    client = APIClient()
    user = User.objects.create_user(f"user-{role}", password="pw-for-tests-only")
    if role:
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    client.force_authenticate(user)
    return client


def upload(data: bytes, name: str = "photo.jpg") -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


@pytest.fixture
def stocked(shared_data):
    path = next((shared_data / "catalog-photos" / "images").glob("*.jpg"))
    product = factories.product(sku="API-1", name="Test shirt")
    image, _ = product_image_add(product=product, data=path.read_bytes(), filename="a.jpg", role="primary")
    services.images_embed(image_ids=[image.pk])
    return product, path.read_bytes()


def test_anonymous_and_role_less_users_are_refused():
    response = APIClient().post(URL, {"image": upload(jpeg_bytes())}, format="multipart")
    assert response.status_code in (401, 403)
    response = client_for(None).post(URL, {"image": upload(jpeg_bytes())}, format="multipart")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("data", "code"),
    [(b"not a photo at all", "not_an_image"), (jpeg_bytes()[:200], "corrupt"), (b"", "empty")],
)
def test_bad_images_get_a_clear_400(data, code):
    response = client_for("warehouse").post(URL, {"image": upload(data)}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    if code == "empty":  # Django's upload handling refuses an empty file before load_image sees it
        assert body["field"] == "image" and body["code"] == "empty"
    else:
        assert body["code"] == code and body["field"] == "image" and body["detail"]


def test_bad_parameters_get_a_clear_400(stocked):
    client = client_for("catalog")
    _, data = stocked
    cases = [
        ({"filters": "{not json"}, "filters"),
        ({"filters": json.dumps({"colour": "red"})}, "filters"),
        ({"k": "51"}, "k"),
        ({}, "image"),
    ]
    for extra, field in cases:
        payload = {"image": upload(data), **extra} if field != "image" else extra
        response = client.post(URL, payload, format="multipart")
        assert response.status_code == 400, extra
        assert response.json()["field"] == field and response.json()["detail"], response.json()


def test_staff_get_candidates_decision_and_timings(stocked):
    product, data = stocked
    mirrored = io.BytesIO()
    Image.open(io.BytesIO(data)).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored, format="JPEG")
    response = client_for("warehouse").post(
        URL, {"image": [upload(data), upload(mirrored.getvalue(), "back.jpg")], "k": "5",
              "filters": json.dumps({"category_kind": product.category.kind}), "segment": "false"},
        format="multipart",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    top = body["candidates"][0]
    assert (top["product_id"], top["sku"], top["name"]) == (product.pk, "API-1", "Test shirt")
    assert top["image_url"].startswith("/media/") and 0.5 < top["score"] <= 1.0001
    assert set(body["decision"]) >= {"in_catalogue", "sku", "score", "margin", "threshold", "label"}
    assert set(body["timings"]) >= {"decode", "segment", "embed", "search", "total"}
    assert body["model_version"].startswith("efficientnet-lite0") and len(body["cutouts"]) == 2


def test_the_endpoint_is_in_the_openapi_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/match/"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert {"200", "400", "403"} <= set(operation["responses"])
