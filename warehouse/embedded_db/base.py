"""Django database backend: PostgreSQL, with the embedded server started on first connection."""
from __future__ import annotations

from pathlib import Path

from django.db.backends.postgresql import base

from . import ensure_database, ensure_server

_databases_ready: set[tuple[Path, str]] = set()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        server = ensure_server(Path(self.settings_dict["PGDATA"]))
        database = params.get("dbname") or self.settings_dict["NAME"]
        key = (server.pgdata, database)
        if database not in ("postgres", None) and key not in _databases_ready and not _is_test_db(database):
            ensure_database(server, database)
            _databases_ready.add(key)
        params.update({"host": str(server.socket_dir), "port": server.port, "user": "postgres"})
        return params


def _is_test_db(name: str) -> bool:
    return name.startswith("test_")
