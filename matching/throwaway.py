"""A temporary database on the same server, for evaluations and benchmarks that must not touch live data.

``throwaway_database()`` creates ``<prefix>_<random>``, points the default connection at it, migrates it,
sends media files to a temporary folder, and drops everything on the way out (even after an error).
"""
from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connections
from django.test.utils import override_settings
from psycopg import sql


def _admin_execute(statement: sql.Composable) -> None:
    """Run CREATE/DROP DATABASE outside any transaction, on a short-lived connection to 'postgres'."""
    import psycopg

    connection = connections["default"]
    params = connection.get_connection_params()
    params["dbname"] = "postgres"
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute(statement)


@contextmanager
def throwaway_database(prefix: str = "eval") -> Iterator[str]:
    connection = connections["default"]
    if connection.in_atomic_block:
        raise RuntimeError("A throwaway database cannot be used inside a transaction.")
    name = f"{prefix}_{secrets.token_hex(5)}"
    original = connection.settings_dict["NAME"]
    _admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    connection.close()
    connection.settings_dict["NAME"] = name
    ContentType.objects.clear_cache()
    try:
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-media-") as media, override_settings(MEDIA_ROOT=media):
            call_command("migrate", verbosity=0, interactive=False)
            yield name
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
        ContentType.objects.clear_cache()
        _admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
