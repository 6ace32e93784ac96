"""The throw-away PostgreSQL server (slf_warehouse.pg_throwaway, shared with `make bench
ENGINE=postgres`) for tests: its files under pytest's tmp dirs, a machine that cannot run one is a
skip, a server that does not start is a failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from slf_warehouse.pg_throwaway import PG_BIN, PgServer, PostgresFailed, PostgresUnavailable, free_port
from slf_warehouse.pg_throwaway import throwaway_postgres as _throwaway_postgres

__all__ = ["PG_BIN", "PgServer", "free_port", "throwaway_postgres"]

# Set by conftest before each test: whether the running test carries the `postgres` marker, which
# `make test-fast` leaves out (a server costs seconds to start). An unmarked test that starts one fails.
running_test_is_marked = True


@contextmanager
def throwaway_postgres(
    tmp_path_factory: pytest.TempPathFactory, superuser: str, database: str
) -> Iterator[PgServer]:
    """A running server with `superuser` (random password) and an empty `database`; stopped on exit."""
    if not running_test_is_marked:
        pytest.fail(
            "this test starts a PostgreSQL server: mark it @pytest.mark.postgres, so that make test-fast "
            "leaves it out",
            pytrace=False,
        )
    # the server's own errors come before the yield only: the test body raises neither
    try:
        with _throwaway_postgres(superuser, database, base_dir=tmp_path_factory.mktemp("postgres")) as pg:
            yield pg
    except PostgresUnavailable as e:
        pytest.skip(str(e))
    except PostgresFailed as e:
        pytest.fail(str(e))
