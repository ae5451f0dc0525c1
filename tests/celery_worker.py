"""Start a real Celery worker process on the Redis of this machine, on the test database."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from celery import Celery
from django.db import connection
from kombu import pools

from tests.conftest import REPO_ROOT

REDIS_URL = os.environ.get("STOCKMATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


def worker_env() -> dict[str, str]:
    """The environment of a worker that talks to the same (test) database as this process. Tests start many
    short-lived workers, so they load models on first use (``STOCKMATCH_WARM_UP=0``) unless a test asks."""
    env = {**os.environ, "CELERY_BROKER_URL": REDIS_URL, "CELERY_RESULT_BACKEND": REDIS_URL,
           "PYTHONPATH": str(REPO_ROOT), "STOCKMATCH_WARM_UP": "0"}
    name = connection.settings_dict["NAME"]
    if os.environ.get("DATABASE_URL"):
        base, _, _ = os.environ["DATABASE_URL"].rpartition("/")
        env["DATABASE_URL"] = f"{base}/{name}"
    else:
        env["STOCKMATCH_DB_NAME"] = name
    return env


def reset_connections(app: Celery) -> None:
    """Forget the app's broker connections and producers, so the next publish uses its current ``broker_url``."""
    app.pool.force_close_all()
    app._pool = None
    app.amqp._producer_pool = None
    pools.reset()  # kombu's process-wide producer pools, keyed by broker URL


def client_app() -> Celery:
    # not the current app: shared tasks resolve against the current app, and this one is never eager
    app = Celery("stockmatch-test-client", broker=REDIS_URL, backend=REDIS_URL, set_as_current=False)
    app.conf.task_default_queue = "celery"
    return app


@contextmanager
def running_worker(
    log_path: Path, queues: str = "celery", *, purge: bool = True, wait: bool = True, pool: str = "solo",
    env: dict[str, str] | None = None,
):
    """A worker process for the duration of the block; waits until it answers a ping (unless ``wait`` is False:
    a solo worker busy with a task answers no ping). ``purge`` drops the messages waiting in the queue first.
    """
    app = client_app()
    if purge:
        app.control.purge()
    with open(log_path, "a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "warehouse", "worker", f"--pool={pool}", "--concurrency=1",
             "--loglevel=INFO", "-Q", queues, "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env={**worker_env(), **(env or {})}, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while wait and not app.control.ping(timeout=1.0):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Celery worker did not start; log:\n{log_path.read_text()}")
            yield app, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
