"""The OpenAPI schema generates cleanly and the Swagger UI is served without outside assets."""
import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command


def test_schema_generates_without_warnings_or_errors(tmp_path, capsys):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    schema = yaml.safe_load(out.read_text())
    assert schema["info"]["title"] == "Stockmatch API"
    assert schema["openapi"].startswith("3.")


@pytest.mark.django_db
def test_schema_and_docs_need_login(client):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (401, 403)


@pytest.mark.django_db
def test_swagger_ui_uses_local_assets(client):
    client.force_login(User.objects.create_user("u", password="pw-123456789"))
    html = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in html and "cdn.jsdelivr" not in html
    assert client.get("/api/schema/").status_code == 200
