"""The admin dashboard renders server-side charts, with data and without, for the catalogue role only."""
from __future__ import annotations

import pytest
from django.urls import reverse

from matching.models import EmbeddingModel, ModelState
from tests.review_fixtures import catalogue_manager, confirm, make_snapshot, make_user, real_products, warehouse_worker
from warehouse.dashboard.selectors import dashboard_data
from warehouse.models import SnapshotStatus
from warehouse.review import services
from warehouse.roles import WAREHOUSE

pytestmark = pytest.mark.django_db
URL = "admin-dashboard"


def test_the_dashboard_renders_without_any_data(client):
    client.force_login(catalogue_manager())
    response = client.get(reverse(URL))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="db-no-data"' in html and "no scans yet" in html
    assert html.count("<svg") >= 3  # volume, automatic share, queue ages
    data = response.context["data"]
    assert data.queue_size == 0 and data.auto_share is None and data.top1_precision is None


def test_the_dashboard_counts_intake_decisions_and_the_queue(client, shared_data):
    products = real_products(shared_data, 3)
    worker, cm = warehouse_worker(), catalogue_manager()
    sure = make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED,
                         scored=[(products[0], 0.95), (products[1], 0.5)])
    confirm(sure, products[0], quantity=3)  # decided automatically, top suggestion right
    unsure = make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED,
                           scored=[(products[1], 0.7), (products[2], 0.6)], photo_index=1)
    confirm(unsure, products[2])  # the worker picked the second: top suggestion wrong, in the queue
    make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.FAILED, scored=[], photo_index=2)
    reviewed = make_snapshot(worker=worker, shared_data=shared_data, status=SnapshotStatus.MATCHED,
                             scored=[(products[2], 0.6)], photo_index=3)
    services.review_accept(snapshot=reviewed, user=cm)  # judged right by review
    EmbeddingModel.objects.update(active=False)
    EmbeddingModel.objects.create(name="efficientnet-lite0@test", backbone="efficientnet-lite0", weights_checksum="x",
                                  dimension=1280, active=True, state=ModelState.READY,
                                  metrics={"recall@1": 0.61, "eval": {"mrr": 0.7}},
                                  thresholds={"default": {"score": 0.8, "margin": 0.0}})

    data = dashboard_data(days=7)
    assert data.snapshots_per_day[-1] == 4 and data.arrivals_per_day[-1] == 2 and data.pieces_per_day[-1] == 5
    assert data.decided == 2 and data.auto_share == 0.5
    assert data.top1_judged == 3 and data.top1_precision == pytest.approx(2 / 3)
    assert data.queue_size == 2 and data.queue_ages[0] == ("< 1 h", 2)
    (embedder,) = [m for m in data.models if m["kind"] == "embedder"]
    assert embedder["metrics"] == {"recall@1": 0.61, "eval.mrr": 0.7, "threshold": 0.8}

    client.force_login(cm)
    html = client.get(reverse(URL), {"days": "7"}).content.decode()
    assert 'id="db-no-data"' not in html and "efficientnet-lite0@test" in html and "recall@1 0.61" in html
    assert "50 %" in html and "67 %" in html and html.count("<svg") >= 3
    assert client.get(reverse(URL), {"days": "lots"}).status_code == 200  # bad input: the default


def test_the_dashboard_is_for_the_catalogue_role(client):
    client.force_login(make_user("foreman", WAREHOUSE))
    assert client.get(reverse(URL)).status_code == 403
    client.logout()
    assert client.get(reverse(URL)).status_code == 302
