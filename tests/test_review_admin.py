"""The review queue in the admin: the grid, decisions, bulk confirmation, draft completion, search, permissions."""
from __future__ import annotations

import io

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from catalog.models import Product, ProductStatus, Variant
from tests.review_fixtures import (
    catalogue_manager,
    confirm,
    make_snapshot,
    make_user,
    mark_new,
    real_products,
    warehouse_worker,
)
from warehouse.models import SnapshotStatus
from warehouse.review.models import LabelledPair, ReviewDecision
from warehouse.roles import WAREHOUSE

pytestmark = pytest.mark.django_db
QUEUE = "admin:warehouse_reviewitem_changelist"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def world(shared_data):
    products = real_products(shared_data, 4)
    worker = warehouse_worker()
    items = {
        "unsure": make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED,
                                scored=[(products[0], 0.7), (products[1], 0.6)]),
        "failed": make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.FAILED, scored=[],
                                photo_index=1),
        "draft": make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED,
                               scored=[(products[2], 0.5), (products[3], 0.45)], photo_index=2),
    }
    mark_new(items["draft"])
    items["draft"].refresh_from_db()
    return {"products": products, "items": items, "worker": worker}


def test_a_catalogue_manager_sees_the_queue_as_a_grid_with_photos_cutouts_and_candidates(client, world):
    client.force_login(catalogue_manager())
    response = client.get(reverse(QUEUE))
    assert response.status_code == 200
    html = response.content.decode()
    for item in world["items"].values():
        assert f'id="item-{item.pk}"' in html
        assert reverse("admin:warehouse_reviewitem_thumb", args=[item.pk, "preview", 320]) in html
    unsure = world["items"]["unsure"]
    assert reverse("admin:warehouse_reviewitem_thumb", args=[unsure.pk, "cutout", 320]) in html
    assert world["products"][0].sku in html and "0.70" in html and "stock 15" in html
    assert "probably not in catalogue" in html and "worker&#x27;s draft product" in html
    assert "/media/thumbs/" in html and world["products"][0].images.get().file.url not in html  # no originals
    # the snapshot rendition is small, made once, and served to the reviewer
    thumb = client.get(reverse("admin:warehouse_reviewitem_thumb", args=[unsure.pk, "preview", 320]))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(b"".join(thumb.streaming_content))).size) <= 640
    dirs, _ = default_storage.listdir("snapshots/thumbs")
    assert dirs == ["640"]  # stored once as a small file, served from there next time


def test_the_queue_filters_by_reason(client, world):
    client.force_login(catalogue_manager())
    html = client.get(reverse(QUEUE), {"reason": "failed"}).content.decode()
    assert f'id="item-{world["items"]["failed"].pk}"' in html and f'id="item-{world["items"]["unsure"].pk}"' not in html


def test_decisions_answer_json_and_leave_the_queue(client, world):
    cm = catalogue_manager()
    client.force_login(cm)
    unsure, failed = world["items"]["unsure"], world["items"]["failed"]
    url = reverse("admin:warehouse_reviewitem_decide", args=[unsure.pk])
    response = client.post(url, {"action": "accept"}, **JSON)
    assert response.status_code == 200 and response.json()["product_id"] == world["products"][0].pk
    assert client.post(url, {"action": "reject"}, **JSON).status_code == 409  # already decided
    bad = client.post(reverse("admin:warehouse_reviewitem_decide", args=[failed.pk]), {"action": "accept"}, **JSON)
    assert bad.status_code == 400 and bad.json()["code"] == "nothing_to_accept"
    assert client.post(reverse("admin:warehouse_reviewitem_decide", args=[failed.pk]), {"action": "explode"},
                       **JSON).status_code == 400
    missing = client.post(reverse("admin:warehouse_reviewitem_decide", args=[failed.pk]),
                          {"action": "reassign", "product_id": "abc"}, **JSON)
    assert missing.status_code == 400 and not LabelledPair.objects.filter(snapshot=failed).exists()
    moved = client.post(reverse("admin:warehouse_reviewitem_decide", args=[failed.pk]),
                        {"action": "reassign", "product_id": world["products"][3].pk}, **JSON)
    assert moved.status_code == 200
    assert LabelledPair.objects.get(snapshot=failed).product_id == world["products"][3].pk
    html = client.get(reverse(QUEUE)).content.decode()
    assert f'id="item-{unsure.pk}"' not in html and f'id="item-{failed.pk}"' not in html
    assert client.get(reverse(QUEUE)).context["total"] == 1


def test_bulk_actions_ask_first(client, world):
    client.force_login(catalogue_manager())
    ids = [world["items"]["unsure"].pk, world["items"]["draft"].pk]
    bulk = reverse("admin:warehouse_reviewitem_bulk")
    first = client.post(bulk, {"action": "reject", "ids": ids})
    assert first.status_code == 200 and b"bulk-confirm" in first.content
    assert not LabelledPair.objects.exists()  # nothing happened yet
    client.post(bulk, {"action": "reject", "ids": ids, "confirmed": "yes"})
    assert set(LabelledPair.objects.values_list("snapshot_id", flat=True)) == set(ids)
    assert Product.objects.get(pk=world["items"]["draft"].product_id).status == ProductStatus.RETIRED


def test_completing_a_draft_in_the_admin(client, world):
    client.force_login(catalogue_manager())
    draft_item = world["items"]["draft"]
    draft = Product.objects.get(pk=draft_item.product_id)
    url = reverse("admin:warehouse_reviewitem_complete", args=[draft_item.pk])
    page = client.get(url)
    assert page.status_code == 200 and b"Guessed from the candidates" in page.content
    refused = client.post(url, {"name": "", "category": draft.category_id, "gender": "men"})
    assert refused.status_code == 200 and Product.objects.get(pk=draft.pk).status == ProductStatus.DRAFT
    done = client.post(url, {"name": "Red sandal", "sku": "SAN-001", "category": draft.category_id, "gender": "men",
                             "sizes": "40, 41", "use_cutout": "on"})
    assert done.status_code == 302
    product = Product.objects.get(pk=draft.pk)
    assert (product.status, product.sku, product.gender) == ("active", "SAN-001", "men")
    assert set(Variant.objects.filter(product=product).values_list("size", flat=True)) == {"40", "41"}
    assert LabelledPair.objects.get(snapshot=draft_item).decision == ReviewDecision.COMPLETE


def test_search_by_sku_name_and_barcode(client, world):
    client.force_login(catalogue_manager())
    target = world["products"][1]
    Variant.objects.filter(product=target, size="M").update(barcode="4006381333931")
    search = reverse("admin:warehouse_reviewitem_search")
    by_sku = client.get(search, {"q": target.sku.lower()}).json()["results"]
    assert (by_sku[0]["sku"] == target.sku and by_sku[0]["stock"] == 15
            and by_sku[0]["thumb"].startswith("/media/thumbs/"))
    assert client.get(search, {"q": "4006381333931"}).json()["results"][0]["product_id"] == target.pk
    word = target.name.split()[-1]
    assert target.pk in [row["product_id"] for row in client.get(search, {"q": word}).json()["results"]]
    assert client.get(search, {"q": "   "}).json()["results"] == []
    Product.objects.filter(pk=target.pk).update(status=ProductStatus.RETIRED)
    assert client.get(search, {"q": target.sku}).json()["results"] == []  # only active products


@pytest.mark.slow
def test_search_by_image_similarity_goes_through_matching(client, world):
    from matching.services import catalog_embed, embedding_model_active

    catalog_embed(model=embedding_model_active())
    client.force_login(catalogue_manager())
    results = client.get(reverse("admin:warehouse_reviewitem_search"),
                         {"similar": world["items"]["unsure"].pk}).json()["results"]
    assert {row["product_id"] for row in results} <= {p.pk for p in world["products"]} and results
    assert all(isinstance(row["score"], float) for row in results)
    scores = [row["score"] for row in results]
    assert scores == sorted(scores, reverse=True)


def test_warehouse_workers_and_other_staff_cannot_review(client, world):
    item = world["items"]["unsure"]
    urls_get = [reverse(QUEUE), reverse("admin:warehouse_reviewitem_search") + "?q=CAT",
                reverse("admin:warehouse_reviewitem_complete", args=[world["items"]["draft"].pk]),
                reverse("admin-dashboard")]
    urls_post = [(reverse("admin:warehouse_reviewitem_decide", args=[item.pk]), {"action": "reject"}),
                 (reverse("admin:warehouse_reviewitem_bulk"),
                  {"action": "reject", "ids": [item.pk], "confirmed": "yes"})]
    staff_worker = make_user("foreman", WAREHOUSE)  # staff, but only the warehouse role
    plain_staff = make_user("clerk", None)
    for user in (staff_worker, plain_staff):
        client.force_login(user)
        for url in urls_get:
            assert client.get(url).status_code == 403, url
        for url, data in urls_post:
            assert client.post(url, data).status_code == 403, url
        assert b"Review queue" not in client.get(reverse("admin:index")).content
    client.force_login(world["worker"])  # not staff at all: sent to the admin login
    assert client.get(reverse(QUEUE)).status_code == 302
    client.logout()
    assert client.get(reverse(QUEUE)).status_code == 302
    assert not LabelledPair.objects.exists()


def test_the_snapshot_page_shows_photos_and_candidates_not_json(client, world):
    cm = catalogue_manager()
    client.force_login(cm)
    item = world["items"]["unsure"]
    confirm(item, world["products"][1])
    html = client.get(reverse("admin:warehouse_snapshot_change", args=[item.pk])).content.decode()
    assert reverse("admin:warehouse_reviewitem_thumb", args=[item.pk, "preview", 320]) in html
    assert reverse("admin:warehouse_reviewitem_thumb", args=[item.pk, "cutout", 320]) in html
    assert world["products"][0].sku in html and "0.70" in html and "/media/thumbs/" in html
    assert '"product_id"' not in html and "&quot;product_id&quot;" not in html  # no raw candidate JSON
    assert "probably not in catalogue" in html and "not reviewed" in html


def test_a_draft_links_to_its_item_worker_and_candidates_and_marks_guesses(client, world):
    client.force_login(catalogue_manager())
    draft_item = world["items"]["draft"]
    html = client.get(reverse("admin:catalog_product_change", args=[draft_item.product_id])).content.decode()
    assert reverse("admin:warehouse_snapshot_change", args=[draft_item.pk]) in html
    assert "photographed by <strong>wk</strong>" in html
    assert world["products"][2].sku in html and world["products"][3].sku in html
    assert "Guessed from the candidates" in html and "category and gender" in html
    # a catalogue manager's correction is no longer a guess
    product = Product.objects.get(pk=draft_item.product_id)
    product.gender = "women" if product.gender != "women" else "men"
    product.save()
    html = client.get(reverse("admin:catalog_product_change", args=[product.pk])).content.decode()
    assert "please check: <strong>category</strong>" in html


def test_a_merged_draft_still_shows_where_it_came_from(client, world):
    from warehouse.review import services

    cm = catalogue_manager()
    client.force_login(cm)
    draft_item = world["items"]["draft"]
    services.review_merge_draft(snapshot=draft_item, product_id=world["products"][2].pk, user=cm)
    html = client.get(reverse("admin:catalog_product_change", args=[draft_item.product_id])).content.decode()
    assert reverse("admin:warehouse_snapshot_change", args=[draft_item.pk]) in html
