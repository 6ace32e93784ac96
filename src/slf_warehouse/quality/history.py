"""Run history: what each refresh received, built, checked and decided, in the warehouse's `audit` schema.

Tables (all keyed by `run_id`; a step that runs again for the same run replaces its rows):

- audit.runs, one row per run: run_id, started_at, finished_at (UTC), status, quality_success,
  override_reason, checks, checks_failed, checks_warned, reconciliations, reconciliations_failed,
  files_loaded, files_rejected, rows_loaded, rows_rejected, build_file.
- audit.run_files, one row per delivered file the run saw (from audit.load_manifest, as it was at
  the run): run_id, source, file, period, sha256, rows, status, errors.
- audit.dbt_results, one row per dbt node (from dbt's run_results.json): run_id, unique_id,
  resource_type, status, execution_time, message, failures, invocation_id, generated_at.
- audit.expectation_results, one row per GE expectation (every CheckRecord): run_id, suite,
  expectation_type, column_name, success, severity, unexpected_count, observed_value,
  unexpected_examples, unexpected_rows (JSON text), notes, message.
- audit.reconciliations, one row per reconciliation row: see reconciliations.py.

`status`: `running` → `passed` (gate passed) or `passed_with_override` or `refused` (gate refused)
→ `published`; `failed` when a step before the gate failed.

Where history lives (DuckDB). A refresh builds a new file copied from the last *published* one, so the
history of every published run accumulates in the published warehouse. A run that is not published
(refused at the gate, or failed) keeps its history only in its own build file
(`<warehouse_dir>/builds/<version>.duckdb`), which the next publication deletes. So every run's
summary is also appended to `OUT/quality/history.jsonl` (one JSON object per line; a run may have
several lines as its status changes, the last one counts): failed runs stay visible there, and the
quality report's trend reads it.

Where history lives (PostgreSQL, target.PgTarget). ``audit`` is one schema shared by every build on
the server, like ``raw`` and ``audit.load_manifest`` that ingestion writes there: a build's own
schemas hold only what dbt builds. So every run's rows (published, refused, failed) stay in
``audit.*`` keyed by run id, ``audit.runs.build_file`` naming the build's schema prefix
(``b_<version>``); dropping a build's schemas (a refused build discarded, an old version pruned)
loses no history. history.jsonl is written as on DuckDB. The reader role cannot read ``audit``.
On PostgreSQL ``audit.expectation_results`` has one more, trailing column ``seq`` (an identity),
which orders the rows as they were written (DuckDB uses its rowid).

Every function taking ``build_path`` / ``warehouse_path`` takes a build file's path or a
QualityTarget (target.as_target).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from slf_warehouse.file_modes import PRIVATE_FILE_MODE
from slf_warehouse.file_names import slug
from slf_warehouse.quality.reconciliations import ensure_table as ensure_reconciliations_table
from slf_warehouse.quality.target import QualityTarget, as_target, is_postgres, table_exists

log = logging.getLogger(__name__)

HISTORY_FILE = "history.jsonl"
DBT_RESULTS_DIR = "dbt_run_results"
STATUSES = ("running", "failed", "refused", "passed", "passed_with_override", "published")

RUNS_DDL = """
CREATE TABLE IF NOT EXISTS audit.runs (
    run_id VARCHAR NOT NULL,
    started_at TIMESTAMP,            -- UTC
    finished_at TIMESTAMP,           -- UTC
    status VARCHAR NOT NULL,         -- running | failed | refused | passed | passed_with_override | published
    quality_success BOOLEAN,         -- every error-severity check and reconciliation passed
    override_reason VARCHAR,         -- set when the gate was overridden
    checks INTEGER,
    checks_failed INTEGER,           -- error severity
    checks_warned INTEGER,
    reconciliations INTEGER,
    reconciliations_failed INTEGER,  -- error severity
    files_loaded INTEGER,
    files_rejected INTEGER,
    rows_loaded BIGINT,
    rows_rejected BIGINT,
    build_file VARCHAR
)"""

RUN_FILES_DDL = """
CREATE TABLE IF NOT EXISTS audit.run_files (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    period VARCHAR,
    sha256 VARCHAR,
    rows BIGINT,
    status VARCHAR,                  -- loaded | skipped-duplicate | rejected (as the load left it)
    errors INTEGER                   -- error lines of a rejected file
)"""

DBT_RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS audit.dbt_results (
    run_id VARCHAR NOT NULL,
    unique_id VARCHAR NOT NULL,
    resource_type VARCHAR,
    status VARCHAR,
    execution_time DOUBLE PRECISION,
    message VARCHAR,
    failures INTEGER,
    invocation_id VARCHAR,
    generated_at VARCHAR
)"""

EXPECTATION_RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS audit.expectation_results (
    run_id VARCHAR NOT NULL,
    suite VARCHAR NOT NULL,
    expectation_type VARCHAR NOT NULL,
    column_name VARCHAR,
    success BOOLEAN NOT NULL,
    severity VARCHAR NOT NULL,
    unexpected_count BIGINT,
    observed_value VARCHAR,          -- JSON
    unexpected_examples VARCHAR,     -- JSON list
    unexpected_rows VARCHAR,         -- JSON list of row-id objects
    notes VARCHAR,
    message VARCHAR
)"""

_RUN_COLUMNS = (
    "run_id",
    "started_at",
    "finished_at",
    "status",
    "quality_success",
    "override_reason",
    "checks",
    "checks_failed",
    "checks_warned",
    "reconciliations",
    "reconciliations_failed",
    "files_loaded",
    "files_rejected",
    "rows_loaded",
    "rows_rejected",
    "build_file",
)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_exists = table_exists
# PostgreSQL has no rowid: an identity column orders the rows as written (INSERT ... VALUES with the
# twelve columns above leaves it to its default).
_PG_EXPECTATION_RESULTS_DDL = (
    EXPECTATION_RESULTS_DDL[:-1].rstrip() + ",\n    seq BIGINT GENERATED ALWAYS AS IDENTITY\n)"
)


def ensure_audit_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS audit")
    expectation_results = _PG_EXPECTATION_RESULTS_DDL if is_postgres(con) else EXPECTATION_RESULTS_DDL
    for ddl in (RUNS_DDL, RUN_FILES_DDL, DBT_RESULTS_DDL, expectation_results):
        con.execute(ddl)
    ensure_reconciliations_table(con)


def _replace_rows(con: duckdb.DuckDBPyConnection, table: str, run_id: str, rows: list[list[Any]]) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM audit.{table} WHERE run_id = ?", [run_id])
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            con.executemany(f"INSERT INTO audit.{table} VALUES ({marks})", rows)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# ------------------------------------------------------------------------------------------------
# What each step adds
# ------------------------------------------------------------------------------------------------


def start_run(build_path: Path, run_id: str, started_at: datetime | None = None) -> None:
    """audit.runs gets the run as `running` (call right after prepare_build)."""
    record_run(build_path, run_id, status="running", started_at=started_at or _now())


def record_run_files(con: duckdb.DuckDBPyConnection, run_id: str) -> int:
    """audit.run_files for the run, from audit.load_manifest (the files this run's loads recorded)."""
    ensure_audit_tables(con)
    if not _exists(con, "audit", "load_manifest"):
        _replace_rows(con, "run_files", run_id, [])
        return 0
    rows = con.execute(
        """
        SELECT ?, source, file_name, period, sha256, rows,
               CASE WHEN status = 'replaced' THEN 'loaded' ELSE status END, error
        FROM audit.load_manifest WHERE run_id = ? ORDER BY source, file_name, loaded_at""",
        [run_id, run_id],
    ).fetchall()
    # error lines of a rejected file: one per line of the manifest's error text
    counted = [[*r[:-1], 0 if r[-1] is None else len(r[-1].split("\n"))] for r in rows]
    _replace_rows(con, "run_files", run_id, counted)
    return len(counted)


def _run_results_files(run_results: Path) -> list[Path]:
    run_results = Path(run_results)
    if run_results.is_dir():
        return sorted(run_results.rglob("run_results*.json"))
    return [run_results] if run_results.is_file() else []


def record_dbt_results(build_path: Path | QualityTarget, run_id: str, run_results: Path) -> int:
    """audit.dbt_results from dbt's run_results.json (`run_results` is the file, or a folder of them,
    e.g. one per Cosmos task as save_dbt_run_results leaves them). Returns the number of nodes."""
    rows: list[list[Any]] = []
    files = _run_results_files(run_results)
    if not files:
        log.warning(
            "no dbt run_results.json at %s: audit.dbt_results has nothing for run %s", run_results, run_id
        )
    for path in files:
        doc = json.loads(path.read_text(encoding="utf-8"))
        metadata = doc.get("metadata") or {}
        for r in doc.get("results") or []:
            unique_id = str(r.get("unique_id") or "")
            failures = r.get("failures")
            rows.append(
                [
                    run_id,
                    unique_id,
                    unique_id.split(".", 1)[0] or None,
                    r.get("status"),
                    r.get("execution_time"),
                    r.get("message"),
                    int(failures) if isinstance(failures, (int, float)) else None,
                    metadata.get("invocation_id"),
                    metadata.get("generated_at"),
                ]
            )
    with as_target(build_path).connect() as con:
        ensure_audit_tables(con)
        _replace_rows(con, "dbt_results", run_id, rows)
    return len(rows)


def dbt_run_results_dir(quality_dir: Path, run_id: str) -> Path:
    """Where save_dbt_run_results keeps a run's run_results.json files."""
    return Path(quality_dir) / DBT_RESULTS_DIR / slug(run_id)


def save_dbt_run_results(
    project_dir: str | Path, context: Any = None, dest_dir: str | Path | None = None, **_: Any
) -> Path | None:
    """A Cosmos `callback`: copies the task's target/run_results.json (Cosmos runs dbt in a temporary
    copy of the project, deleted afterwards; the callback runs before a failed dbt raises) to
    dbt_run_results_dir(OUT/quality, run_id), named after the task. `project_dir` may also be a
    dbt --target-path folder holding run_results.json. `dest_dir` overrides the folder; otherwise
    it comes from the task's context (the run's output folder, refresh_run.refresh_settings; run_id)."""
    source = Path(project_dir) / "target" / "run_results.json"
    if not source.is_file() and (Path(project_dir) / "run_results.json").is_file():
        source = Path(project_dir) / "run_results.json"  # given the target folder itself
    if not source.is_file():
        log.warning("no %s to keep", source)
        return None
    name = "run_results.json"
    if dest_dir is None:
        if context is None:
            raise ValueError("save_dbt_run_results needs dest_dir or the Airflow context")
        from slf_warehouse.refresh_run import refresh_settings

        params = context["params"]
        settings = refresh_settings(params)
        dest_dir = dbt_run_results_dir(settings.quality_dir, context["run_id"])
        task_id = getattr(context.get("ti"), "task_id", None)
        if task_id:
            name = f"run_results.{task_id}.json"
    target = Path(dest_dir) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def _json(value: Any) -> str | None:
    if value is None or value == []:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


def _withheld(suite: str, expectation_type: str) -> bool:
    """Whether a check's values and rows must not be stored (a personal-data suite's, not a shape check)."""
    from slf_warehouse.quality.checkpoint import SHAPE_EXPECTATIONS
    from slf_warehouse.quality.suites import is_personal_suite

    return is_personal_suite(suite) and expectation_type not in SHAPE_EXPECTATIONS


def _forget_personal_values(con: duckdb.DuckDBPyConnection) -> None:
    """Values of personal-data suites that runs before they were withheld stored (every build is a
    copy of the published warehouse, so its old rows would otherwise live on)."""
    rows = con.execute(
        "SELECT DISTINCT suite, expectation_type FROM audit.expectation_results WHERE "
        "observed_value IS NOT NULL OR unexpected_examples IS NOT NULL "
        "OR unexpected_rows IS NOT NULL"
    ).fetchall()
    stale = [[suite, kind] for suite, kind in rows if _withheld(suite, kind)]
    if stale:
        con.executemany(
            "UPDATE audit.expectation_results SET observed_value = NULL, unexpected_examples = NULL, "
            "unexpected_rows = NULL WHERE suite = ? AND expectation_type = ?",
            stale,
        )


def record_expectation_results(con: duckdb.DuckDBPyConnection, run_id: str, records: Iterable[Any]) -> int:
    """audit.expectation_results: every CheckRecord of the run (a QualityResult's `.results`); a
    personal-data suite's checks keep their counts, never values or rows."""
    ensure_audit_tables(con)
    rows = []
    for r in records:
        withheld = _withheld(r.suite, r.expectation_type)
        rows.append(
            [
                run_id,
                r.suite,
                r.expectation_type,
                r.column,
                bool(r.success),
                r.severity,
                r.unexpected_count,
                None if withheld else _json(r.observed_value),
                None if withheld else _json(r.unexpected_examples),
                None if withheld else _json(r.unexpected_rows),
                r.notes,
                r.message,
            ]
        )
    _replace_rows(con, "expectation_results", run_id, rows)
    _forget_personal_values(con)
    return len(rows)


def _counts(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """The run's summary figures from the other audit tables."""
    counts: dict[str, Any] = {}
    ((checks, failed, warned),) = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT success AND severity = 'error'), "
        "count(*) FILTER (WHERE NOT success AND severity = 'warning') FROM audit.expectation_results "
        "WHERE run_id = ?",
        [run_id],
    ).fetchall()
    if checks:
        counts.update(checks=checks, checks_failed=failed, checks_warned=warned)
    ((recs, recs_failed),) = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT passed AND severity = 'error') "
        "FROM audit.reconciliations WHERE run_id = ?",
        [run_id],
    ).fetchall()
    if recs:
        counts.update(reconciliations=recs, reconciliations_failed=recs_failed)
    ((files_loaded, files_rejected, rows_loaded, rows_rejected),) = con.execute(
        "SELECT count(*) FILTER (WHERE status = 'loaded'), count(*) FILTER (WHERE status = 'rejected'), "
        "coalesce(sum(rows) FILTER (WHERE status = 'loaded'), 0), "
        "coalesce(sum(rows) FILTER (WHERE status = 'rejected'), 0) FROM audit.run_files WHERE run_id = ?",
        [run_id],
    ).fetchall()
    counts.update(
        files_loaded=files_loaded,
        files_rejected=files_rejected,
        rows_loaded=int(rows_loaded),
        rows_rejected=int(rows_rejected),
    )
    return counts


def _failed_names(con: duckdb.DuckDBPyConnection, run_id: str) -> list[str]:
    checks = con.execute(
        "SELECT DISTINCT suite || ': ' || expectation_type || coalesce(' on ' || column_name, '') FROM "
        "audit.expectation_results WHERE run_id = ? AND NOT success AND severity = 'error' ORDER BY 1",
        [run_id],
    ).fetchall()
    recs = con.execute(
        "SELECT DISTINCT check_name || ' [' || key || ']' FROM audit.reconciliations WHERE run_id = ? "
        "AND NOT passed AND severity = 'error' ORDER BY 1",
        [run_id],
    ).fetchall()
    return [r[0] for r in checks + recs]


def _read_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    rows = con.execute(
        f"SELECT {', '.join(_RUN_COLUMNS)} FROM audit.runs WHERE run_id = ?", [run_id]
    ).fetchall()
    return dict(zip(_RUN_COLUMNS, rows[0], strict=True)) if rows else None


def record_run(
    build_path: Path | QualityTarget,
    run_id: str,
    *,
    status: str,
    started_at: datetime | None = None,
    finished: bool = False,
    quality_success: bool | None = None,
    override_reason: str | None = None,
    history_dir: Path | None = None,
) -> dict[str, Any]:
    """Write (or update) the run's row in audit.runs, with audit.run_files refreshed from the load
    manifest and the summary counted from the other audit tables; fields given as None keep what the
    row had. With `history_dir` (OUT/quality) the summary is appended to history.jsonl too.
    Returns the summary."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    target = as_target(build_path)
    with target.connect() as con:
        ensure_audit_tables(con)
        record_run_files(con, run_id)
        row = _read_run(con, run_id) or {c: None for c in _RUN_COLUMNS}
        row.update(_counts(con, run_id))
        row.update(run_id=run_id, status=status, build_file=target.name)
        if row["started_at"] is None:
            row["started_at"] = started_at or _now()
        if finished:
            row["finished_at"] = _now()
        if quality_success is not None:
            row["quality_success"] = quality_success
        if override_reason is not None:
            row["override_reason"] = override_reason
        _replace_rows(con, "runs", run_id, [[row[c] for c in _RUN_COLUMNS]])
        failed = _failed_names(con, run_id)
    summary = _summary(row, failed)
    if history_dir is not None:
        append_history(history_dir, summary)
    return summary


def _summary(row: dict[str, Any], failed: list[str]) -> dict[str, Any]:
    out = {k: (v.isoformat() + "Z" if isinstance(v, datetime) else v) for k, v in row.items()}
    out["failed"] = failed
    out["recorded_at"] = datetime.now(UTC).isoformat()
    return out


def run_summary(warehouse_path: Path | QualityTarget, run_id: str) -> dict[str, Any] | None:
    """The run's audit.runs row (as history.jsonl has it), read-only; None when the run is not there."""
    with as_target(warehouse_path).connect(read_only=True) as con:
        if not _exists(con, "audit", "runs"):
            return None
        row = _read_run(con, run_id)
        return None if row is None else _summary(row, _failed_names(con, run_id))


def override_for(warehouse_path: Path, run_id: str) -> str | None:
    """The override reason recorded for the run (what the answer letters print), or None."""
    with as_target(warehouse_path).connect(read_only=True) as con:
        if not _exists(con, "audit", "runs"):
            return None
        rows = con.execute("SELECT override_reason FROM audit.runs WHERE run_id = ?", [run_id]).fetchall()
    return rows[0][0] if rows and rows[0][0] else None


# ------------------------------------------------------------------------------------------------
# history.jsonl: every run, published or not
# ------------------------------------------------------------------------------------------------


def append_history(history_dir: Path, summary: dict[str, Any]) -> Path:
    """Append one line to `history_dir`/history.jsonl (written whole and flushed: one line per call)."""
    history_dir = Path(history_dir)
    history_dir.mkdir(parents=True, exist_ok=True)
    path = history_dir / HISTORY_FILE
    line = json.dumps(summary, ensure_ascii=False, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
    return path


def read_history(
    history_dir: Path | None = None,
    warehouse_path: Path | QualityTarget | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Runs oldest first: history.jsonl's last line per run, plus runs only audit.runs of
    `warehouse_path` knows (e.g. when history.jsonl was removed). The last `limit` runs."""
    runs: dict[str, dict[str, Any]] = {}
    target = as_target(warehouse_path) if warehouse_path is not None else None
    if target is not None and target.exists():
        with target.connect(read_only=True) as con:
            if _exists(con, "audit", "runs"):
                rows = con.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM audit.runs").fetchall()
                for r in rows:
                    row = dict(zip(_RUN_COLUMNS, r, strict=True))
                    runs[row["run_id"]] = _summary(row, [])
    path = Path(history_dir) / HISTORY_FILE if history_dir is not None else None
    if path is not None and path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s: a line that is not JSON, skipped", path)
                continue
            if isinstance(entry, dict) and entry.get("run_id"):
                runs[entry["run_id"]] = entry

    def order(e: dict[str, Any]) -> tuple[str, str]:
        return (
            str(e.get("started_at") or e.get("finished_at") or e.get("recorded_at") or ""),
            str(e.get("recorded_at") or ""),
        )

    ordered = sorted(runs.values(), key=order)
    return ordered[-limit:] if limit else ordered
