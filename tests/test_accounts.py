"""Sign-in: failed logins lock a username and an address out (django-axes); native apps use API tokens."""
from __future__ import annotations

import base64

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from warehouse.roles import WAREHOUSE

pytestmark = pytest.mark.django_db
PASSWORD = "accounts-test-pw-7731"
TOKEN_URL = "/api/v1/auth/token/"
SNAPSHOTS_URL = "/api/v1/intake/snapshots/"


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3


def _worker(name: str = "worker") -> User:
    user = User.objects.create_user(name, password=PASSWORD)
    user.groups.add(Group.objects.get(name=WAREHOUSE))
    return user


def _login(username: str, password: str, address: str = "10.0.0.1"):
    return Client(REMOTE_ADDR=address).post("/accounts/login/", {"username": username, "password": password})


def test_a_username_is_locked_after_repeated_failures_from_any_address():
    # given a worker whose password is guessed from three addresses
    _worker()
    assert _login("worker", "wrong", address="10.0.1.1").status_code == 200  # the form again, with an error
    for n in range(2, 4):
        _login("worker", "wrong", address=f"10.0.1.{n}")
    # when the right password comes, from yet another address
    response = _login("worker", PASSWORD, address="10.0.1.99")
    # then the account stays locked, and the page says why and for how long
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content and b"minutes" in response.content
    assert "_auth_user_id" not in response.wsgi_request.session


def test_an_address_is_locked_after_failures_on_many_usernames():
    _worker("alice")
    for name in ("bob", "carol", "dave"):
        _login(name, "wrong", address="10.0.2.1")
    assert _login("alice", PASSWORD, address="10.0.2.1").status_code == 429
    # the same account from another address is fine
    assert _login("alice", PASSWORD, address="10.0.2.2").status_code == 302


def test_a_successful_sign_in_resets_the_count():
    _worker()
    for _ in range(2):
        _login("worker", "wrong")
    assert _login("worker", PASSWORD).status_code == 302
    for _ in range(2):
        _login("worker", "wrong")
    assert _login("worker", PASSWORD).status_code == 302


def test_native_apps_exchange_credentials_for_a_token_that_works_on_the_api():
    _worker()
    client = APIClient(REMOTE_ADDR="10.0.3.1")
    response = client.post(TOKEN_URL, {"username": "worker", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    # the token authenticates every API call, with no session and no password
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get(SNAPSHOTS_URL).status_code == 200
    assert api.get("/api/schema/").status_code == 200
    # signing in again gives the same token; revoking it ends it
    again = client.post(TOKEN_URL, {"username": "worker", "password": PASSWORD}, format="json").json()["token"]
    assert again == token
    assert api.delete(f"{TOKEN_URL}revoke/").status_code == 204
    assert api.get(SNAPSHOTS_URL).status_code in (401, 403)


def test_the_token_endpoint_refuses_wrong_passwords_and_locks_out():
    _worker()
    client = APIClient(REMOTE_ADDR="10.0.4.1")
    for _ in range(2):
        response = client.post(TOKEN_URL, {"username": "worker", "password": "wrong"}, format="json")
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_credentials"
    assert client.post(TOKEN_URL, {"username": "worker", "password": "wrong"}, format="json").status_code == 429
    response = client.post(TOKEN_URL, {"username": "worker", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "locked_out" and "Try again in" in body["detail"]
    assert int(response["Retry-After"]) > 0
    assert client.post(TOKEN_URL, {"username": "worker"}, format="json").status_code == 400


def test_basic_auth_is_not_accepted_on_the_api():
    _worker()
    basic = base64.b64encode(f"worker:{PASSWORD}".encode()).decode()
    response = APIClient().get(SNAPSHOTS_URL, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code in (401, 403)
