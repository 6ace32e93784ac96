"""Which delivered rows a failed dbt test is about: the source file and line of its failing rows.

A failed test named only itself (`expression_is_true_stg_budget__allocations_period_end_period_start`),
so the officer who must correct a file was told nothing about which file or line. Staging rows
carry `source_file` and `source_line`; a test that selects whole rows (`expression_is_true`, the
project's singular tests on staging models) returns them, and its compiled query is run once more
to read them. File names and line numbers only: no value of a row is shown.
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


def failing_rows_lineage(result: Any, warehouse: Path) -> list[str]:
    """One line per failed test of a dbtRunner result: the test, and where its rows can carry it,
    the files and lines of its failing rows (at most MAX_LINES_SHOWN a test)."""
    failed = [
        (r.node.name, getattr(r.node, "compiled_code", None))
        for r in getattr(getattr(result, "result", None), "results", None) or []
        if str(getattr(r, "status", "")) == "fail" and getattr(r.node, "resource_type", None) == "test"
    ]
    return describe(failed, warehouse)


def describe(failed: list[tuple[str, str | None]], warehouse: Path) -> list[str]:
    """(test name, its compiled query) → "name: file lines …" per test."""
    if not failed:
        return []
    with duckdb.connect(str(warehouse)) as con:
        return [f"{name}: {_where(con, compiled)}" for name, compiled in failed]


def log_failing_rows(project_dir: str | Path, context: Any = None, **_: Any) -> list[str]:
    """Cosmos callback (it runs before Cosmos raises for a failed build): log the failing rows' files
    and lines from the run's run_results.json, on the warehouse the task built."""
    results = Path(project_dir) / "target" / "run_results.json"
    task = (context or {}).get("task")
    warehouse = (getattr(task, "env", None) or {}).get("SLF_WAREHOUSE_PATH") or os.environ.get(
        "SLF_WAREHOUSE_PATH"
    )
    if not results.is_file() or not warehouse:
        return []
    data = json.loads(results.read_text(encoding="utf-8"))
    failed = [
        (r["unique_id"].split(".")[2], r.get("compiled_code"))
        for r in data.get("results", [])
        if r.get("status") == "fail" and r["unique_id"].startswith("test.")
    ]
    lines = describe(failed, Path(warehouse))
    for line in lines:
        log.error("dbt test failed: %s", line)
    return lines


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
    parts = []
    for file, lines in rows:
        shown = ", ".join(str(n) for n in lines[:MAX_LINES_SHOWN])
        more = f" and {len(lines) - MAX_LINES_SHOWN} more" if len(lines) > MAX_LINES_SHOWN else ""
        parts.append(f"{file} line{'s' if len(lines) > 1 else ''} {shown}{more}")
    return "; ".join(parts) or "no failing row found when read again"
