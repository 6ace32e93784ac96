"""The `pg_server` fixture: a throw-away PostgreSQL server (tests/postgres_server.py) for one test
module, the superuser `slf` owning an empty database `slf_warehouse`. Import both names:

    from pg_server import PgServer, pg_server  # noqa: F401 - pytest finds the fixture by name
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_server import PgServer, throwaway_postgres

__all__ = ["PgServer", "pg_server", "fresh_database", "PG_USER", "PG_DATABASE"]

PG_USER, PG_DATABASE = "slf", "slf_warehouse"


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    with throwaway_postgres(tmp_path_factory, PG_USER, PG_DATABASE) as server:
        yield server


def fresh_database(server: PgServer) -> PgServer:
    """A new empty database of its own on `server` (same superuser), for one test."""
    import uuid

    database = f"t_{uuid.uuid4().hex[:12]}"
    server.execute(f"CREATE DATABASE {database}")
    return PgServer(server.host, server.port, server.user, server.password, database)
