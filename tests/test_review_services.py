"""Review decisions on real Postgres: each stored as a labelled pair that the one selector reads."""
from __future__ import annotations

import pytest

from catalog.models import ImageRole, Product, ProductStatus, Variant
from tests.review_fixtures import catalogue_manager, confirm, make_snapshot, mark_new, real_products, warehouse_worker
from warehouse.models import Arrival, Snapshot, SnapshotStatus
from warehouse.review import services
from warehouse.review.models import LabelledPair, ReviewDecision
from warehouse.review.selectors import labelled_pairs, queue_reason, review_cards, review_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(shared_data):
    return {"products": real_products(shared_data, 5), "worker": warehouse_worker(), "cm": catalogue_manager(),
            "data": shared_data}


def _snap(world, status, scores, **kw):
    products = world["products"]
    return make_snapshot(worker=world["worker"], shared_data=world["data"], status=status,
                         scored=[(products[i], s) for i, s in scores], **kw)


def test_the_queue_holds_exactly_the_items_that_need_a_human(world):
    p = world["products"]
    sure = _snap(world, SnapshotStatus.MATCHED, [(0, 0.95), (1, 0.7)])  # the matcher is sure: no
    unsure = _snap(world, SnapshotStatus.MATCHED, [(0, 0.6), (1, 0.5)], photo_index=1)  # not in catalogue: yes
    failed = _snap(world, SnapshotStatus.FAILED, [], photo_index=2)  # yes
    confident = _snap(world, SnapshotStatus.MATCHED, [(0, 0.95), (1, 0.9)], photo_index=3)
    confirm(confident, p[0])  # confirmed above the threshold: no
    low = _snap(world, SnapshotStatus.MATCHED, [(0, 0.95), (1, 0.7)], photo_index=4)
    confirm(low, p[1])  # the worker chose a candidate under the threshold: yes
    off_list = _snap(world, SnapshotStatus.MATCHED, [(0, 0.95)], photo_index=5)
    confirm(off_list, p[4])  # a product that was no candidate at all: yes
    drafted = _snap(world, SnapshotStatus.MATCHED, [(2, 0.5)], photo_index=6)
    mark_new(drafted)  # a worker's draft: yes
    close = _snap(world, SnapshotStatus.MATCHED, [(0, 0.9), (1, 0.89)], photo_index=7)
    close.decision = {**close.decision, "in_catalogue": False, "sku": None, "product_id": None}  # margin too small
    close.save(update_fields=["decision"])
    confirm(close, p[0])  # over the threshold, but the match could not tell the two apart: yes

    queued = set(review_queue().values_list("pk", flat=True))
    assert queued == {unsure.pk, failed.pk, low.pk, off_list.pk, drafted.pk, close.pk}
    assert sure.pk not in queued and confident.pk not in queued
    for snapshot in Snapshot.objects.all():  # the reason shown on a card agrees with the queue's SQL
        assert bool(queue_reason(snapshot)) == (snapshot.pk in queued), snapshot.pk


def test_accept_stores_the_workers_choice_with_the_other_candidates_as_negatives(world):
    p = world["products"]
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.78), (1, 0.7), (2, 0.6)], hints={"rect": [1, 1, 50, 50]})
    confirm(snapshot, p[1])
    pair = services.review_accept(snapshot=snapshot, user=world["cm"])
    assert (pair.decision, pair.product_id, pair.decided_by) == (ReviewDecision.ACCEPT, p[1].pk, world["cm"])
    assert pair.negative_product_ids == [p[0].pk, p[2].pk]
    assert pair.reason == "low_score" and pair.mask == snapshot.mask.name  # the worker corrected the cut-out
    assert snapshot.pk not in set(review_queue().values_list("pk", flat=True))
    with pytest.raises(services.ReviewError) as exc:  # decided once only
        services.review_reject(snapshot=snapshot, user=world["cm"])
    assert exc.value.code == "already_reviewed"

    rows = [row for row in labelled_pairs() if row.snapshot_id == snapshot.pk]
    assert len(rows) == 1 and rows[0].source == "review" and rows[0].product_id == p[1].pk
    assert rows[0].query_photo == snapshot.original.name and rows[0].mask_path == snapshot.mask.name


def test_the_selector_also_reads_worker_confirmations_nobody_reviewed(world):
    p = world["products"]
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.95), (1, 0.7)])
    confirm(snapshot, p[0])
    (row,) = labelled_pairs()
    assert (row.source, row.snapshot_id, row.product_id) == ("confirmation", snapshot.pk, p[0].pk)
    assert row.negative_product_ids == (p[1].pk,) and row.mask_path == ""  # no hints: not a correction
    assert row.query_photos == (snapshot.original.name,)


def test_accept_without_a_worker_decision_takes_the_best_candidate(world):
    p = world["products"]
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(3, 0.7), (1, 0.6)])
    pair = services.review_accept(snapshot=snapshot, user=world["cm"])
    assert pair.product_id == p[3].pk and pair.negative_product_ids == [p[1].pk]
    failed = _snap(world, SnapshotStatus.FAILED, [], photo_index=1)
    with pytest.raises(services.ReviewError, match="no candidate"):
        services.review_accept(snapshot=failed, user=world["cm"])
    assert not LabelledPair.objects.filter(snapshot=failed).exists()


def test_reassign_moves_the_booked_pieces_to_the_right_product(world):
    p = world["products"]
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.7), (1, 0.65)])
    confirm(snapshot, p[0], size="M", quantity=3)
    assert Variant.objects.get(product=p[0], size="M").stock_quantity == 8
    pair = services.review_reassign(snapshot=snapshot, product_id=p[2].pk, user=world["cm"])
    assert pair.decision == ReviewDecision.REASSIGN and pair.product_id == p[2].pk
    assert p[0].pk in pair.negative_product_ids and pair.worker_product_id == p[0].pk
    assert Variant.objects.get(product=p[0], size="M").stock_quantity == 5
    assert Variant.objects.get(product=p[2], size="M").stock_quantity == 8
    arrival = Arrival.objects.get(snapshot=snapshot)
    assert arrival.variant.product_id == p[2].pk
    snapshot.refresh_from_db()
    assert snapshot.product_id == p[2].pk and snapshot.events[-1]["action"] == "review reassign"
    # the stock history says who moved the pieces and why
    record = Variant.objects.get(product=p[2], size="M").history.first()
    assert record.history_user == world["cm"] and "review" in record.history_change_reason


def test_reassign_refuses_when_the_pieces_already_left(world):
    p = world["products"]
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.7)])
    confirm(snapshot, p[0], size="XL", quantity=2)  # a new size: only these two pieces
    Variant.objects.filter(product=p[0], size="XL").update(stock_quantity=1)  # one sold since
    with pytest.raises(services.ReviewError) as exc:
        services.review_reassign(snapshot=snapshot, product_id=p[1].pk, user=world["cm"])
    assert exc.value.code == "stock_moved"
    assert not LabelledPair.objects.exists() and Arrival.objects.get().variant.product_id == p[0].pk
    assert not Variant.objects.filter(product=p[1], size="XL", stock_quantity__gt=0).exists()


def test_reassign_to_an_unknown_or_retired_product_is_refused(world):
    p = world["products"]
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.7)])
    Product.objects.filter(pk=p[1].pk).update(status=ProductStatus.RETIRED)
    for product_id in (None, 999_999, p[1].pk):
        with pytest.raises(services.ReviewError):
            services.review_reassign(snapshot=snapshot, product_id=product_id, user=world["cm"])
    assert not LabelledPair.objects.exists()


def test_merging_a_draft_moves_its_stock_and_marks_it_merged(world):
    p = world["products"]
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.5), (1, 0.4)])
    draft = mark_new(snapshot, size="L", quantity=4)
    pair = services.review_merge_draft(snapshot=snapshot, product_id=p[1].pk, user=world["cm"])
    draft.refresh_from_db()
    assert (draft.status, draft.merged_into_id) == (ProductStatus.MERGED, p[1].pk)
    assert Variant.objects.get(product=draft, size="L").stock_quantity == 0
    assert Variant.objects.get(product=p[1], size="L").stock_quantity == 9
    assert pair.decision == ReviewDecision.MERGE and pair.product_id == p[1].pk and pair.worker_product_id == draft.pk
    assert draft.pk not in pair.negative_product_ids  # a draft is not a wrong answer, it is the same item
    (row,) = labelled_pairs()
    assert row.product_id == p[1].pk and row.source == "review"


def test_completing_a_draft_makes_a_catalogue_product_with_the_cutout_as_photo(world):
    from catalog.models import Category

    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.5)])
    draft = mark_new(snapshot)
    category = Category.objects.exclude(pk=draft.category_id).first() or draft.category
    pair = services.review_complete_draft(
        snapshot=snapshot, user=world["cm"], name="Striped linen shirt", category_id=category.pk, gender="women",
        sizes="s, M ,l,M", sku="LIN-0001", use_cutout=True,
    )
    product = Product.objects.get(pk=draft.pk)
    assert (product.status, product.sku, product.name, product.gender) == ("active", "LIN-0001",
                                                                         "Striped linen shirt", "women")
    assert product.category_id == category.pk
    assert sorted(product.variants.values_list("size", flat=True)) == ["L", "M", "S"]
    primary = product.images.get(role=ImageRole.PRIMARY)
    assert primary.file.name and product.images.filter(role=ImageRole.SNAPSHOT).exists()
    assert pair.decision == ReviewDecision.COMPLETE and pair.product_id == product.pk
    assert product.history.first().history_user == world["cm"]


def test_completing_a_draft_refuses_bad_input_and_changes_nothing(world):
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.5)])
    draft = mark_new(snapshot)
    bad = [dict(name="", category_id=draft.category_id, gender="men"),
           dict(name="Shirt", category_id=None, gender="men"),
           dict(name="Shirt", category_id=draft.category_id, gender="martian"),
           dict(name="Shirt", category_id=draft.category_id, gender="men", sizes="X" * 21),
           dict(name="Shirt", category_id=draft.category_id, gender="men", sku=world["products"][0].sku)]
    for fields in bad:
        with pytest.raises(services.ReviewError):
            services.review_complete_draft(snapshot=snapshot, user=world["cm"], **fields)
    draft.refresh_from_db()
    assert draft.status == ProductStatus.DRAFT and not LabelledPair.objects.exists()


def test_reject_retires_an_empty_draft_and_keeps_the_candidates_as_negatives(world):
    p = world["products"]
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.5), (1, 0.45)])
    draft = mark_new(snapshot)
    pair = services.review_reject(snapshot=snapshot, user=world["cm"], note="a photo of the floor")
    draft.refresh_from_db()
    assert draft.status == ProductStatus.RETIRED
    assert pair.product is None and pair.negative_product_ids == [p[0].pk, p[1].pk]
    assert labelled_pairs() == [] and len(labelled_pairs(include_rejected=True)) == 1
    booked = _snap(world, SnapshotStatus.MATCHED, [(0, 0.5)], photo_index=1)
    mark_new(booked, size="M", quantity=1)
    with pytest.raises(services.ReviewError) as exc:
        services.review_reject(snapshot=booked, user=world["cm"])
    assert exc.value.code == "has_arrivals"


def test_bulk_decisions_report_what_could_not_be_done(world):
    ok = _snap(world, SnapshotStatus.MATCHED, [(0, 0.6)])
    failed = _snap(world, SnapshotStatus.FAILED, [], photo_index=1)
    done, errors = services.review_bulk(snapshot_ids=[ok.pk, failed.pk], action="accept", user=world["cm"])
    assert done == [ok.pk] and list(errors) == [failed.pk]
    done, errors = services.review_bulk(snapshot_ids=[failed.pk], action="reject", user=world["cm"])
    assert done == [failed.pk] and not errors
    assert SnapshotStatus.FAILED == type(failed).objects.get(pk=failed.pk).status


def test_a_decision_on_the_open_set_score_queues_and_shows_as_the_matcher_meant_it(world):
    # given an item the matcher accepted on its open-set score (0.92 - 0.5 x 0.7 = 0.57 over a 0.4 threshold)
    p = world["products"]
    snapshot = _snap(world, SnapshotStatus.MATCHED, [(0, 0.92), (1, 0.7)], threshold=0.4)
    snapshot.decision = {**snapshot.decision, "alpha": 0.5, "open_set_score": 0.57, "margin": 0.22,
                         "margin_threshold": 0.03}
    snapshot.save(update_fields=["decision"])
    # when the worker confirms the product the matcher vouched for, it needs no manager
    confirm(snapshot, p[0])
    assert snapshot.pk not in set(review_queue().values_list("pk", flat=True)) and not queue_reason(snapshot)
    # and a card never sets a candidate's score beside a threshold fitted on another scale
    assert review_cards([snapshot])[0]["threshold"] is None
    before = Snapshot.objects.get(pk=_snap(world, SnapshotStatus.MATCHED, [(0, 0.92)], photo_index=1).pk)
    assert review_cards([before])[0]["threshold"] == 0.8  # a top-score threshold is shown as before
