import pytest
from django.contrib.auth.models import Group, User

pytestmark = pytest.mark.django_db


def test_home_sends_each_role_to_its_screen(client):
    assert "/accounts/login/" in client.get("/")["Location"]
    worker = User.objects.create_user("w", password="pw-123456789")
    worker.groups.add(Group.objects.get(name="warehouse"))
    client.force_login(worker)
    assert client.get("/")["Location"] == "/intake/"
    manager = User.objects.create_user("m", password="pw-123456789", is_staff=True)
    manager.groups.add(Group.objects.get(name="catalog"))
    client.force_login(manager)
    assert client.get("/")["Location"] == "/admin/"


def test_health_check_is_public_and_says_nothing_else(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
