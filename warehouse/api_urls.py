"""Intake API routes (mounted under /api/v1/)."""
from django.urls import path

from . import api

urlpatterns = [
    path("intake/snapshots/", api.SnapshotListCreateApi.as_view(), name="api-intake-snapshots"),
    path("intake/snapshots/<int:snapshot_id>/", api.SnapshotDetailApi.as_view(), name="api-intake-snapshot"),
    path("intake/snapshots/<int:snapshot_id>/photos/", api.SnapshotPhotosApi.as_view(), name="api-intake-photos"),
    path("intake/snapshots/<int:snapshot_id>/confirm/", api.SnapshotConfirmApi.as_view(), name="api-intake-confirm"),
    path("intake/snapshots/<int:snapshot_id>/new/", api.SnapshotMarkNewApi.as_view(), name="api-intake-new"),
    path("intake/snapshots/<int:snapshot_id>/fix/", api.SnapshotFixApi.as_view(), name="api-intake-fix"),
    path("intake/snapshots/<int:snapshot_id>/retry/", api.SnapshotRetryApi.as_view(), name="api-intake-retry"),
    path("intake/snapshots/<int:snapshot_id>/discard/", api.SnapshotDiscardApi.as_view(), name="api-intake-discard"),
    path("intake/snapshots/<int:snapshot_id>/reopen/", api.SnapshotReopenApi.as_view(), name="api-intake-reopen"),
    path("intake/products/", api.ProductSearchApi.as_view(), name="api-intake-products"),
    path("intake/arrivals/", api.ArrivalListApi.as_view(), name="api-intake-arrivals"),
    path("intake/arrivals/<int:arrival_id>/undo/", api.ArrivalUndoApi.as_view(), name="api-intake-undo"),
]
