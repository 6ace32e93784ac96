"""Which delivered rows a failed dbt test is about: the source file and line of its failing rows.

A failed test named only itself (`expression_is_true_stg_budget__allocations_period_end_period_start`),
so the officer who must correct a file was told nothing about which file or line. Staging rows
carry `source_file` and `source_line`; a test that selects whole rows (`expression_is_true`, the
project's singular tests on staging models) returns them, and its compiled query is run once more
to read them. File names and line numbers only: no value of a row is shown.

On PostgreSQL the compiled query names the build's own schemas (`b_<version>_staging`), so it is
run again on the server SLF_PG_* name, in a read-only session.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger(__name__)

MAX_LINES_SHOWN = 10


def failing_rows_lineage(result: Any, warehouse: Path | Any) -> list[str]:
    """One line per failed test of a dbtRunner result: the test, and where its rows can carry it,
    the files and lines of its failing rows (at most MAX_LINES_SHOWN a test). `warehouse`: the
    DuckDB build file, or a PostgreSQL build (warehouse_pg.PgBuild) on the server SLF_PG_* name."""
    failed = [
        (r.node.name, getattr(r.node, "compiled_code", None))
        for r in getattr(getattr(result, "result", None), "results", None) or []
        if str(getattr(r, "status", "")) == "fail" and getattr(r.node, "resource_type", None) == "test"
    ]
    return describe(failed, warehouse)


def describe(failed: list[tuple[str, str | None]], warehouse: Path | Any) -> list[str]:
    """(test name, its compiled query) → "name: file lines …" per test."""
    if not failed:
        return []
    if not isinstance(warehouse, (str, Path)):
        return _describe_on_postgres(failed)
    with duckdb.connect(str(warehouse)) as con:
        return [f"{name}: {_where(con, compiled)}" for name, compiled in failed]


def _describe_on_postgres(failed: list[tuple[str, str | None]]) -> list[str]:
    import psycopg2

    from slf_warehouse.pg_raw import conninfo_from_env

    con = psycopg2.connect(conninfo_from_env(), connect_timeout=10)
    try:
        # read-only: the query is dbt's compiled test, run again; autocommit: one failed query
        # does not abort the next test's
        con.set_session(readonly=True, autocommit=True)
        with con.cursor() as cur:
            return [f"{name}: {_where_pg(cur, compiled)}" for name, compiled in failed]
    finally:
        con.close()


def log_failing_rows(project_dir: str | Path, context: Any = None, **_: Any) -> list[str]:
    """Cosmos callback (it runs before Cosmos raises for a failed build): log the failing rows' files
    and lines from the run's run_results.json, on the warehouse the task built."""
    from slf_warehouse.build_ref import BUILD_PREFIX_ENV

    results = Path(project_dir) / "target" / "run_results.json"
    task_env = getattr((context or {}).get("task"), "env", None) or {}

    def setting(name: str) -> str:
        return task_env.get(name) or os.environ.get(name) or ""

    # a PostgreSQL build is named by its schema prefix (its SLF_WAREHOUSE_PATH is empty)
    warehouse: Path | Any = (
        _OnPostgres(setting(BUILD_PREFIX_ENV))
        if setting(BUILD_PREFIX_ENV)
        else Path(setting("SLF_WAREHOUSE_PATH"))
        if setting("SLF_WAREHOUSE_PATH")
        else None
    )
    if not results.is_file() or warehouse is None:
        return []
    data = json.loads(results.read_text(encoding="utf-8"))
    failed = [
        (r["unique_id"].split(".")[2], r.get("compiled_code"))
        for r in data.get("results", [])
        if r.get("status") == "fail" and r["unique_id"].startswith("test.")
    ]
    lines = describe(failed, warehouse)
    for line in lines:
        log.error("dbt test failed: %s", line)
    return lines


class _OnPostgres:
    """A PostgreSQL build known by its schema prefix only (the compiled queries name its schemas)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix


def _where_pg(cur: Any, compiled: str | None) -> str:
    import psycopg2

    if not compiled:
        return "its failing rows name no source line"
    query = f"select * from ({compiled}) as failing"
    try:
        cur.execute(f"{query} limit 0")
        if not {"source_file", "source_line"} <= {d[0] for d in cur.description}:
            return "its failing rows name no source line"
        cur.execute(
            f"select source_file, array_agg(distinct source_line order by source_line) "
            f"from ({query}) as rows group by source_file order by source_file"
        )
        rows = cur.fetchall()
    except psycopg2.Error as e:
        return f"its failing rows could not be read again ({type(e).__name__})"
    return _lines(rows)


def _where(con: duckdb.DuckDBPyConnection, compiled: str | None) -> str:
    if not compiled:
        return "its failing rows name no source line"
    query = f"SELECT * FROM ({compiled}) AS failing"
    try:
        columns = [d[0] for d in con.execute(f"{query} LIMIT 0").description]
        if not {"source_file", "source_line"} <= set(columns):
            return "its failing rows name no source line"
        rows = con.execute(
            f"SELECT source_file, list(DISTINCT source_line ORDER BY source_line) "
            f"FROM ({query}) GROUP BY source_file ORDER BY source_file"
        ).fetchall()
    except duckdb.Error as e:
        return f"its failing rows could not be read again ({type(e).__name__})"
    return _lines(rows)


def _lines(rows: list[tuple[str, list[int]]]) -> str:
    """(file, its failing lines) per file → "file lines 3, 5; other.csv line 7"."""
    parts = []
    for file, lines in rows:
        shown = ", ".join(str(n) for n in lines[:MAX_LINES_SHOWN])
        more = f" and {len(lines) - MAX_LINES_SHOWN} more" if len(lines) > MAX_LINES_SHOWN else ""
        parts.append(f"{file} line{'s' if len(lines) > 1 else ''} {shown}{more}")
    return "; ".join(parts) or "no failing row found when read again"
