"""Catalogue admin fixes: history with who/what/from/to, relabel revert, stock only through the service,
the stock column under search, active models protected."""
from __future__ import annotations

import pytest
from django.urls import reverse

from catalog.models import Product, Variant
from catalog.services import product_image_add
from matching.models import EmbeddingModel, ModelState
from segmentation.models import SegmenterModel
from tests import factories
from tests.conftest import jpeg_bytes
from tests.review_fixtures import catalogue_manager, make_user
from warehouse.roles import WAREHOUSE

pytestmark = pytest.mark.django_db


@pytest.fixture
def cm(client):
    user = catalogue_manager()
    client.force_login(user)
    return user


def _product_with_sizes(sku="DEMO-BTM-0014", stocks=(20, 17, 19, 15)):
    product = factories.product(sku=sku, name="Chinos")
    for i, stock in enumerate(stocks):
        factories.variant(product_obj=product, size=f"S{i}", stock=stock, barcode=f"40000000{i}{sku[-2:]}")
    return product


def test_the_stock_column_is_not_multiplied_by_variants_under_search(client, cm):
    product = _product_with_sizes()
    url = reverse("admin:catalog_product_changelist")
    for query in ("", "DEMO-BTM", "4000000"):  # the barcode search joins variants
        response = client.get(url, {"q": query})
        (row,) = [obj for obj in response.context["cl"].result_list if obj.pk == product.pk]
        assert row.total_stock == 71, query
    assert '<td class="field-stock">71</td>' in client.get(url, {"q": "4000000"}).content.decode()


def test_stock_is_read_only_in_admin_forms_and_inlines(client, cm):
    product = _product_with_sizes(stocks=(5,))
    variant = product.variants.get()
    page = client.get(reverse("admin:catalog_product_change", args=[product.pk])).content.decode()
    assert "variants-0-size" in page and "variants-0-stock_quantity" not in page
    assert reverse("admin:catalog_variant_adjust_stock") in page
    form = client.get(reverse("admin:catalog_variant_change", args=[variant.pk])).content.decode()
    assert 'name="stock_quantity"' not in form
    client.post(reverse("admin:catalog_variant_change", args=[variant.pk]),
                {"product": product.pk, "size": "S0", "barcode": "", "stock_quantity": 999})
    assert Variant.objects.get(pk=variant.pk).stock_quantity == 5


def test_adjusting_stock_asks_for_a_reason_and_records_who_and_why(client, cm):
    product = _product_with_sizes(stocks=(5, 2))
    a, b = product.variants.order_by("size")
    action = client.post(reverse("admin:catalog_variant_changelist"),
                         {"action": "adjust_stock", "_selected_action": [a.pk, b.pk]})
    assert action.status_code == 302 and "adjust-stock" in action["Location"]
    form_url = action["Location"]
    assert client.get(form_url).status_code == 200
    url = reverse("admin:catalog_variant_adjust_stock")
    client.post(url, {"ids": f"{a.pk},{b.pk}", "delta": "-3"})  # no reason: refused
    client.post(url, {"ids": f"{a.pk},{b.pk}", "delta": "0", "reason": "count"})  # nothing to do: refused
    assert [v.stock_quantity for v in Variant.objects.filter(pk__in=[a.pk, b.pk]).order_by("size")] == [5, 2]
    response = client.post(url, {"ids": f"{a.pk},{b.pk}", "delta": "-3", "reason": "stock count"}, follow=True)
    assert [v.stock_quantity for v in Variant.objects.filter(pk__in=[a.pk, b.pk]).order_by("size")] == [2, 2]
    assert "only 2 in stock" in response.content.decode()  # b could not go below zero
    record = Variant.objects.get(pk=a.pk).history.first()
    assert (record.history_user, record.history_change_reason, record.stock_quantity) == (cm, "stock count", 2)
    history = client.get(reverse("admin:catalog_variant_history", args=[a.pk])).content.decode()
    assert "stock count" in history and "cm" in history and "5" in history and "&rarr;" in history


def test_product_history_shows_who_changed_what_and_a_relabel_can_be_reverted(client, cm):
    product = factories.product(sku="TEE-1", name="Tee", gender="men")
    product.save()  # a first history row as the admin would make
    jeans = factories.category(name="Jeans", kind="bottomwear", parent="Bottomwear")
    old_category = product.category
    data = {"sku": "TEE-1", "name": "Tee", "brand": "", "category": jeans.pk, "gender": "women", "colour": "",
            "price": "", "status": "active", "variants-TOTAL_FORMS": 0, "variants-INITIAL_FORMS": 0,
            "images-TOTAL_FORMS": 0, "images-INITIAL_FORMS": 0}
    assert client.post(reverse("admin:catalog_product_change", args=[product.pk]), data).status_code == 302
    history_url = reverse("admin:catalog_product_history", args=[product.pk])
    html = client.get(history_url).content.decode()
    assert ">cm</a>" in html and "Revert this relabel" in html
    assert "<strong>Gender:</strong>\n" in html and "men\n" in html and "&rarr;&nbsp;&nbsp;women" in html
    assert "T-Shirt" in html and "&rarr;&nbsp;&nbsp;Bottomwear &gt; Jeans" in html
    relabel = product.history.first()
    assert relabel.history_user == cm
    revert_url = reverse("admin:catalog_product_revert_labels", args=[product.pk, relabel.history_id])
    assert "Put back" in client.get(revert_url).content.decode()  # asks first
    client.post(revert_url)
    product.refresh_from_db()
    assert (product.category_id, product.gender) == (old_category.pk, "men")
    assert product.history.first().history_change_reason.startswith("revert relabel")
    # the same relabel cannot be reverted twice (the labels changed since)
    client.post(revert_url)
    product.refresh_from_db()
    assert (product.category_id, product.gender) == (old_category.pk, "men")


def test_a_warehouse_worker_cannot_adjust_stock_or_revert(client):
    product = _product_with_sizes(stocks=(5,))
    product.save()
    client.force_login(make_user("foreman", WAREHOUSE))
    variant = product.variants.get()
    assert client.post(reverse("admin:catalog_variant_adjust_stock"),
                       {"ids": str(variant.pk), "delta": "5", "reason": "x"}).status_code == 403
    record = product.history.first()
    assert client.post(reverse("admin:catalog_product_revert_labels",
                               args=[product.pk, record.history_id])).status_code == 403
    assert Variant.objects.get(pk=variant.pk).stock_quantity == 5


def test_admin_thumbnails_are_small_cached_renditions(client, cm):
    product = factories.product(sku="BIG-1")
    image, _ = product_image_add(product=product, data=jpeg_bytes(1800, 1400), role="primary")
    html = client.get(reverse("admin:catalog_product_changelist")).content.decode()
    assert image.file.url not in html
    thumb_url = next(part.split('"')[0] for part in html.split('src="')[1:] if "/media/thumbs/" in part)
    from django.core.files.storage import default_storage
    from PIL import Image

    name = thumb_url.removeprefix("/media/")
    with default_storage.open(name) as handle:
        assert max(Image.open(handle).size) <= 128
    modified = default_storage.get_modified_time(name)
    client.get(reverse("admin:catalog_product_changelist"))
    assert default_storage.get_modified_time(name) == modified  # made once


def test_active_models_cannot_be_deleted_or_repointed(client, cm):
    active = EmbeddingModel.objects.create(name="e@1", backbone="b", weights_checksum="x", dimension=4,
                                           active=True, state=ModelState.READY)
    old = EmbeddingModel.objects.create(name="e@0", backbone="b", weights_checksum="y", dimension=4,
                                        state=ModelState.RETIRED)
    EmbeddingModel.objects.exclude(pk__in=[active.pk, old.pk]).update(active=False)
    assert client.post(
        reverse("admin:matching_embeddingmodel_delete", args=[active.pk]), {"post": "yes"}
    ).status_code == 403
    assert "delete_selected" not in client.get(reverse("admin:matching_embeddingmodel_changelist")).content.decode()
    assert EmbeddingModel.objects.filter(pk=active.pk).exists()
    assert client.post(
        reverse("admin:matching_embeddingmodel_delete", args=[old.pk]), {"post": "yes"}
    ).status_code == 302
    assert not EmbeddingModel.objects.filter(pk=old.pk).exists()

    SegmenterModel.objects.update(active=False)
    seg = SegmenterModel.objects.create(name="s@1", architecture="tiramisu", weights_path="/models/a.pt",
                                        weights_sha256="z", active=True)
    spare = SegmenterModel.objects.create(name="s@0", architecture="tiramisu", weights_path="/models/b.pt",
                                          weights_sha256="w")
    assert client.post(
        reverse("admin:segmentation_segmentermodel_delete", args=[seg.pk]), {"post": "yes"}
    ).status_code == 403
    page = client.get(reverse("admin:segmentation_segmentermodel_change", args=[seg.pk])).content.decode()
    assert 'name="weights_path"' not in page
    client.post(reverse("admin:segmentation_segmentermodel_change", args=[seg.pk]), {"weights_path": "/etc/passwd"})
    assert SegmenterModel.objects.get(pk=seg.pk).weights_path == "/models/a.pt"
    client.post(reverse("admin:segmentation_segmentermodel_changelist"),
                {"action": "activate", "_selected_action": [spare.pk]})
    assert SegmenterModel.objects.get(active=True).pk == spare.pk
    assert Product.objects.count() == 0


def test_a_rendition_names_the_photo_it_came_from(client, cm):
    from catalog.thumbnails import thumbnail_make, thumbnail_source_sha256

    image, _ = product_image_add(product=factories.product(sku="T-1"), data=jpeg_bytes(400, 300), role="primary")
    name = thumbnail_make(source=image.file, size=64, key=image.sha256)
    assert thumbnail_source_sha256(name) == image.sha256  # a media server checks access through the photo
    assert thumbnail_source_sha256(image.file.name) is None
    assert thumbnail_source_sha256("snapshots/thumbs/640/ab/" + "a" * 64 + ".jpg") is None


def test_a_rendition_is_served_with_the_access_of_its_photo(client, cm):
    from catalog.thumbnails import thumbnail_url

    # a catalogue photo's rendition: public (admin lists and mirror cards show it), an image file
    client.logout()
    image, _ = product_image_add(product=factories.product(sku="T-2"), data=jpeg_bytes(400, 300), role="primary")
    url = thumbnail_url(source=image.file, size=64, key=image.sha256)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    # a snapshot photo kept on a product: staff only
    private, _ = product_image_add(product=factories.product(sku="T-3"), data=jpeg_bytes(300, 400), role="snapshot")
    url = thumbnail_url(source=private.file, size=64, key=private.sha256)
    assert client.get(url).status_code == 404
    client.force_login(cm)
    assert client.get(url).status_code == 200
    # a name that is no rendition of any photo
    assert client.get(url.replace(private.sha256, "0" * 64)).status_code == 404
