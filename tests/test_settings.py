"""Production settings pass `manage.py check --deploy`; development defaults need no configuration."""
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=120  # noqa: E501
    )


def test_check_deploy_is_clean_with_production_settings():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_ENV="production", DJANGO_SECRET_KEY="k" * 20 + "-production-secret-for-the-check-0123456789abcdefXYZ",
        DJANGO_ALLOWED_HOSTS="stockmatch.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_a_real_secret_key():
    result = run_manage("check", DJANGO_ENV="production")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
