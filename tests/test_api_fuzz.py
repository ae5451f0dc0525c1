"""Schemathesis against /api/schema/: generated requests (valid and invalid) on a live server, as a real
signed-in worker. Any 5xx, undocumented status code, wrong content type or response that breaks the
schema fails the test. Bounded by ``STOCKMATCH_FUZZ_SECONDS`` (default 120 s) and examples per operation.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from catalog.models import Product
from tests import factories
from warehouse.roles import WAREHOUSE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
CHECKS = (
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance",
    "response_headers_conformance",
)


def test_generated_requests_find_no_server_errors_or_schema_violations(live_server, tmp_path, settings):
    # given a real worker with a token, and a small catalogue for confirm/new to refer to
    settings.MATCHING = {**settings.MATCHING, "AUTO_EMBED": False}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth_token": "1000/min"}}
    user = User.objects.create_user("fuzz-worker", password="fuzz-worker-pw-9913")
    user.groups.add(Group.objects.get(name=WAREHOUSE))
    token = Token.objects.create(user=user).key
    for _ in range(3):
        factories.variant(product_obj=factories.product(), size="M", stock=2)
    assert Product.objects.count() == 3
    client = APIClient()
    client.force_login(user)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(client.get("/api/schema/", {"format": "json"}).json()))
    report = tmp_path / "report.json"

    # when schemathesis runs every operation but the one that would revoke its own token
    seconds = os.environ.get("STOCKMATCH_FUZZ_SECONDS", "120")
    command = [
        str(Path(sys.executable).parent / "st"), "run", str(schema), "--url", live_server.url,
        "--header", f"Authorization: Token {token}", "--checks", ",".join(CHECKS),
        "--exclude-operation-id", "auth_token_destroy", "--max-examples", "25", "--max-time", seconds,
        "--seed", "8", "--workers", "1", "--request-timeout", "60", "--no-color",
        "--generation-database", "none", "--report", "json", "--report-json-path", str(report),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=int(seconds) + 300)

    # then no check failed
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-3000:]
