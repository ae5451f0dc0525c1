"""Catalogue admin pages: served to staff with the catalog role, refused to anonymous users."""
import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from catalog.services import product_image_add
from tests import factories
from tests.conftest import jpeg_bytes

pytestmark = pytest.mark.django_db

PAGES = ["admin:catalog_product_changelist", "admin:catalog_category_changelist", "admin:catalog_variant_changelist",
         "admin:catalog_productimage_changelist", "admin:catalog_look_changelist"]


@pytest.fixture
def catalogue_manager():
    user = User.objects.create_user("cm", password="pw-123456789", is_staff=True)
    user.groups.add(Group.objects.get(name="catalog"))
    return user


@pytest.fixture
def product_with_photo():
    product = factories.product(sku="TEE-RED", name="Red tee", is_synthetic=True)
    factories.variant(product_obj=product, size="M", stock=4)
    product_image_add(product=product, data=jpeg_bytes(90, 90), role="primary")
    return product


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_users_are_sent_to_login(client, page):
    response = client.get(reverse(page))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_warehouse_worker_cannot_edit_the_catalogue(client):
    worker = User.objects.create_user("w", password="pw-123456789", is_staff=True)
    worker.groups.add(Group.objects.get(name="warehouse"))
    client.force_login(worker)
    assert client.get(reverse("admin:catalog_product_add")).status_code == 403


@pytest.mark.parametrize("page", PAGES)
def test_catalogue_manager_sees_each_page(client, catalogue_manager, product_with_photo, page):
    client.force_login(catalogue_manager)
    assert client.get(reverse(page)).status_code == 200


def test_product_list_shows_thumbnail_stock_synthetic_and_searches_by_sku(client, catalogue_manager, product_with_photo):  # noqa: E501
    factories.product(sku="JEANS-1", name="Blue jeans")
    client.force_login(catalogue_manager)
    html = client.get(reverse("admin:catalog_product_changelist"), {"q": "TEE-RED"}).content.decode()
    assert "TEE-RED" in html and "JEANS-1" not in html
    assert "/media/thumbs/" in html and product_with_photo.images.get().file.url not in html  # a small rendition
    assert "synthetic" in html
    html = client.get(reverse("admin:catalog_product_changelist"), {"q": "jeans"}).content.decode()
    assert "JEANS-1" in html and "TEE-RED" not in html


def test_product_filters_and_inlines(client, catalogue_manager, product_with_photo):
    client.force_login(catalogue_manager)
    url = reverse("admin:catalog_product_changelist")
    assert "TEE-RED" in client.get(url, {"gender__exact": "unisex", "status__exact": "active"}).content.decode()
    assert "TEE-RED" not in client.get(url, {"status__exact": "retired"}).content.decode()
    assert "TEE-RED" in client.get(url, {"category__id__exact": product_with_photo.category_id}).content.decode()
    page = client.get(reverse("admin:catalog_product_change", args=[product_with_photo.pk])).content.decode()
    assert "variants-0-size" in page and "images-0-role" in page
