"""Production start: real gunicorn with DJANGO_ENV=production serves the login page and checks media access."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.db import connection
from rest_framework.authtoken.models import Token

from catalog.models import ImageRole, ProductImage
from tests import factories
from tests.conftest import REPO_ROOT, jpeg_bytes
from warehouse.models import Snapshot
from warehouse.roles import CATALOG, WAREHOUSE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SECRET = "production-test-secret-" + "x9Q" * 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def _user(name: str, role: str) -> str:
    user = User.objects.create_user(name, password="serve-test-pw-5521")
    user.groups.add(Group.objects.get(name=role))
    return Token.objects.create(user=user).key


@pytest.fixture
def gunicorn(settings, tmp_path):
    """gunicorn with the production profile and the repository's config, on a free loopback port."""
    port = _free_port()
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update({
        "DJANGO_ENV": "production", "DJANGO_SECRET_KEY": SECRET, "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false", "DJANGO_STATIC_ROOT": str(tmp_path / "static-not-collected"),
        "STOCKMATCH_MEDIA_ROOT": str(settings.MEDIA_ROOT), "STOCKMATCH_DB_NAME": db["NAME"],
        "GUNICORN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2",
    })
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + db["NAME"]
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", "warehouse/gunicorn.conf.py",
         "warehouse.wsgi:application"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited:\n{process.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_gunicorn_in_production_serves_login_and_guards_media(settings, gunicorn):
    # given a catalogue photo, a warehouse photo taken by one worker, and three staff tokens
    settings.MATCHING = {**settings.MATCHING, "AUTO_EMBED": False}
    owner, other, catalogue = _user("owner", WAREHOUSE), _user("other", WAREHOUSE), _user("cat", CATALOG)
    image = ProductImage(product=factories.product(), role=ImageRole.PRIMARY, width=64, height=48, sha256="c" * 64)
    image.file.save("shirt.jpg", ContentFile(jpeg_bytes()), save=False)
    image.save()
    snapshot = Snapshot(uploaded_by=User.objects.get(username="owner"), idempotency_key="serve-1",
                        original_sha256="0" * 64, original_format="JPEG", original_bytes=1, width=64, height=48)
    snapshot.original.save("photo.jpg", ContentFile(jpeg_bytes(colour=(10, 200, 10))), save=False)
    snapshot.save()

    # the login page renders although collectstatic never ran (no 500 from the manifest storage)
    status, body, _ = _get(f"{gunicorn}/accounts/login/")
    assert status == 200, body[:2000]
    assert b"Sign in" in body
    # catalogue photos are public
    status, body, headers = _get(f"{gunicorn}/media/{image.file.name}")
    assert status == 200 and body == image.file.open("rb").read() and headers["Content-Type"] == "image/jpeg"
    # a warehouse photo: its uploader and the catalogue role, nobody else
    photo_url = f"{gunicorn}/media/{snapshot.original.name}"
    assert _get(photo_url)[0] == 404
    assert _get(photo_url, other)[0] == 404
    assert _get(photo_url, owner)[0] == 200
    assert _get(photo_url, catalogue)[0] == 200
    # paths outside the media folder and unknown files are not found
    assert _get(f"{gunicorn}/media/../manage.py")[0] == 404
    assert _get(f"{gunicorn}/media/snapshots/nothing.jpg", owner)[0] == 404
