"""Intake in the admin (read-mostly, thumbnails, a retry action) and in the OpenAPI schema."""
# ruff: noqa: F811 - pytest fixtures imported from tests/test_intake_fixtures.py are redefined as arguments
from __future__ import annotations

import pytest
import yaml
from django.contrib.auth.models import Permission, User
from django.core.management import call_command

from tests import factories
from warehouse.models import Arrival, Snapshot, SnapshotStatus

from .test_intake_fixtures import (  # noqa: F401
    PASSWORD,
    api,
    phone_photo,
    upload,
    worker,
)


@pytest.mark.django_db
def test_admin_shows_snapshots_and_arrivals_read_only(client, upload, worker, shared_data):
    snapshot_id = upload(phone_photo(shared_data, 0), process=False).json()["id"]
    Snapshot.objects.filter(pk=snapshot_id).update(status=SnapshotStatus.FAILED, error="GrabCut gave up")
    arrival = Arrival.objects.create(variant=factories.variant(), quantity=2, user=worker)
    client.force_login(User.objects.create_superuser("boss", password=PASSWORD))

    listing = client.get("/admin/warehouse/snapshot/")
    assert listing.status_code == 200
    assert f"/admin/warehouse/reviewitem/{snapshot_id}/thumb/preview/64/".encode() in listing.content  # thumbnail
    page = client.get(f"/admin/warehouse/snapshot/{snapshot_id}/change/")
    assert page.status_code == 200 and b"GrabCut gave up" in page.content
    assert client.get("/admin/warehouse/snapshot/add/").status_code == 403
    assert client.get(f"/admin/warehouse/arrival/{arrival.pk}/change/").status_code == 200
    assert client.get("/admin/warehouse/arrival/add/").status_code == 403
    assert client.post(f"/admin/warehouse/arrival/{arrival.pk}/delete/").status_code == 403

    action = {"action": "retry_selected", "_selected_action": [snapshot_id]}
    response = client.post("/admin/warehouse/snapshot/", action)
    assert response.status_code == 302
    assert Snapshot.objects.get(pk=snapshot_id).status == SnapshotStatus.RECEIVED


@pytest.mark.django_db
def test_a_supervisor_sees_snapshot_photos_without_the_warehouse_role(client, upload, shared_data):
    snapshot_id = upload(phone_photo(shared_data, 0), process=False).json()["id"]
    supervisor = User.objects.create_user("sue", password=PASSWORD, is_staff=True)
    client.force_login(supervisor)
    assert client.get(f"/intake/s/{snapshot_id}/image/preview/").status_code == 403
    supervisor.user_permissions.add(Permission.objects.get(codename="view_snapshot"))
    client.force_login(User.objects.get(pk=supervisor.pk))
    assert client.get(f"/intake/s/{snapshot_id}/image/preview/").status_code == 200
    assert client.get("/intake/").status_code == 403  # the intake pages themselves stay with the role


def test_intake_endpoints_are_in_the_schema_without_warnings(tmp_path, capsys):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), "--validate")
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warehouse/" in line]
    assert warnings == []
    paths = yaml.safe_load(out.read_text())["paths"]
    for path in ("/api/v1/intake/snapshots/", "/api/v1/intake/snapshots/{snapshot_id}/confirm/",
                 "/api/v1/intake/snapshots/{snapshot_id}/fix/", "/api/v1/intake/arrivals/{arrival_id}/undo/"):
        assert path in paths
    upload_op = paths["/api/v1/intake/snapshots/"]["post"]
    assert "multipart/form-data" in upload_op["requestBody"]["content"]
    assert {"202", "400", "409", "413"} <= set(upload_op["responses"])
