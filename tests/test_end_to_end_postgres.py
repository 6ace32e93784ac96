"""`SLF_WAREHOUSE_ENGINE=postgres slf run` end to end through Airflow, against a real PostgreSQL
server (tests/pg_server.py): the same checks as test_end_to_end.py on DuckDB (its functions), plus
what only PostgreSQL has: the published version in slf_publication.versions behind the `marts`
views, refused builds dropped, and the server's password nowhere in what the run wrote.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg2
import pytest

from leak_scan import files_under, find_leaks
from pg_server import PgServer, fresh_database, pg_server_fixture  # noqa: F401 - registers the `pg_server` fixture
from slf_warehouse.sample_data import write_sample_data
from test_end_to_end import (
    OTHER_CONFIG,
    OVERRIDE_REASON,
    check_other_figures,
    check_published_with_override,
    check_refused_for_apmf,
    check_rerenders_are_identical,
    check_sample_figures,
    put_apmf_money_on_salaries,
    slf_run,
)

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def pg(pg_server: PgServer) -> PgServer:  # noqa: F811 - the fixture above
    return fresh_database(pg_server)


def pg_env(pg: PgServer) -> dict[str, str]:
    return {**os.environ, "SLF_WAREHOUSE_ENGINE": "postgres", **pg.env()}


def rows(pg: PgServer, sql: str, params: tuple = ()) -> list[tuple]:
    con = psycopg2.connect(pg.conninfo())
    try:
        with con, con.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetchall()
    finally:
        con.close()


def versions(pg: PgServer) -> list[tuple]:
    """(run_id, published?, current?, dropped?) per build, oldest first."""
    return rows(
        pg,
        "select run_id, published_at is not null, is_current, dropped_at is not null "
        "from slf_publication.versions order by created_at",
    )


def build_schemas(pg: PgServer) -> list[str]:
    return [r[0] for r in rows(pg, "select nspname from pg_namespace where nspname like 'b\\_%' order by 1")]


def timed_run(landing: Path, out: Path, pg: PgServer, *args: str):
    start = time.perf_counter()
    result = slf_run(landing, out, *args, env=pg_env(pg))
    print(f"slf run on PostgreSQL {' '.join(args)}: {time.perf_counter() - start:.1f} s")
    return result


def check_no_password_written(pg: PgServer, out: Path) -> None:
    """The server's password reaches no file the run wrote: outputs, logs, Airflow's metadata
    database (XComs, rendered templates) and task logs."""
    written = files_under(out) + files_under(PROJECT / ".airflow")
    assert find_leaks(written, [pg.password]) == {}


def test_sample_data_gives_the_answers_figures_on_postgres(tmp_path: Path, pg: PgServer) -> None:
    landing, out = tmp_path / "landing", tmp_path / "out"
    write_sample_data(landing)
    result = timed_run(landing, out, pg)
    assert result.returncode == 0, result.stdout + result.stderr
    check_sample_figures(out)
    # the warehouse is the server's: no DuckDB warehouse was written
    assert not (out / "warehouse").exists()
    [(run_id, *state)] = versions(pg)
    assert state == [True, True, False]  # published, current, not dropped
    marts = {
        r[0] for r in rows(pg, "select table_name from information_schema.views where table_schema = 'marts'")
    }
    assert {"fct_programme_postings", "fct_payroll", "dim_units"} <= marts
    assert rows(pg, "select status from audit.runs where run_id = %s", (run_id,)) == [("published",)]
    # dbt's incremental models and snapshots were built into the build's schemas
    [current] = [r[0] for r in rows(pg, "select version from slf_publication.versions where is_current")]
    assert f"b_{current}_snapshots" in build_schemas(pg)
    check_rerenders_are_identical(out, env=pg_env(pg))
    check_no_password_written(pg, out)


def test_other_data_gives_other_figures_on_postgres(tmp_path: Path, pg: PgServer) -> None:
    landing, out = tmp_path / "landing", tmp_path / "out"
    write_sample_data(landing, OTHER_CONFIG)
    result = timed_run(landing, out, pg)
    assert result.returncode == 0, result.stdout + result.stderr
    check_other_figures(out)


def test_apmf_money_on_salaries_blocks_publication_on_postgres(
    tmp_path: Path, sample_landing: Path, pg: PgServer
) -> None:
    line = put_apmf_money_on_salaries(sample_landing)
    out = tmp_path / "out"

    refused = timed_run(sample_landing, out, pg)
    check_refused_for_apmf(refused, out, line)
    # nothing published, the refused build's schemas dropped, its run recorded in the server's audit
    [(refused_run, *state)] = versions(pg)
    assert state == [False, False, True]  # never published, dropped
    assert build_schemas(pg) == []
    assert rows(pg, "select count(*) from pg_namespace where nspname = 'marts'") in ([(0,)], [(1,)])
    assert rows(pg, "select status from audit.runs where run_id = %s", (refused_run,)) == [("refused",)]

    check_published_with_override(
        timed_run(sample_landing, out, pg, "--quality-override", OVERRIDE_REASON), out
    )
    assert [v[1:] for v in versions(pg)] == [(False, False, True), (True, True, False)]
    assert rows(pg, "select override_reason from audit.runs where status = 'published'") == [
        (OVERRIDE_REASON,)
    ]
