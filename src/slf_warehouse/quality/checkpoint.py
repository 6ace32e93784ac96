"""The quality gate: every suite in expectations/ run through a Great Expectations 1.x Checkpoint.

Each suite's batch is the result of its query (`meta.batch_query`) on the build (target.py: a DuckDB
file or a PostgreSQL build), opened read-only.

- DuckDB: the result is handed to GE as a pandas dataframe (GE's SQL data source over duckdb-engine
  fails every expectation here, see shared notes/stack.md).
- PostgreSQL: GE's SQL data source (`add_postgres`), one table asset per suite: a view
  `b_<version>_quality.<suite>` of the batch query with the layers mapped to the build's schemas
  (PgConnection.sql), made by the step in the build's own `quality` schema (dropped with the build;
  GE finds it through the connection's search_path).
  GE's SQL execution engine computes every metric in the server, and only aggregates and GE's few
  unexpected examples (none for a personal-data suite) come back. A view, not a query asset: for a
  query asset GE 1.24 reads the column names by running the whole query unlimited
  (metrics/util.py column_reflection_fallback), which sends every row of the batch to the client;
  for a table it asks the catalogue. The step itself reads only the view's columns (`LIMIT 0`) and
  row count. The connection string reaches GE through the environment variable GX_CONNECTION_ENV
  (`${...}` in GE's config), so the password is never written into the GE project under out_dir.
GE keeps a file-mode project under `out_dir/gx` (suites, validation definitions, checkpoints, the
validation results of the last few runs) and builds Data Docs into `out_dir/data_docs/` (with a
plain-HTML summary of the run on the index page, which works offline: see data_docs.py). The outcome
is also written as plain JSON to `out_dir/quality_results.json`.

Personal data (suites.is_personal_suite: payroll and survey suites): GE is asked for counts only
(result format BASIC with no unexpected values and no row ids), and what it returns is stripped
again to counts before it is stored, so its validation files, Data Docs, quality_results.json and
audit.expectation_results name the rule, the column and how many rows broke it, never a value.

Severity: an expectation whose `meta.severity` is `"warning"` is reported but never fails the gate;
everything else is an error. A suite whose batch cannot be read (e.g. its table does not exist yet)
fails the gate with a message saying so.

great_expectations is imported inside run_quality_checks only: it costs about 5 s, and Airflow
imports this package whenever it parses a DAG file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from slf_warehouse.file_modes import write_private
from slf_warehouse.quality.data_docs import add_static_summary
from slf_warehouse.quality.suites import (
    PERSONAL_DATA_COLUMNS,
    SuiteSpec,
    default_suites_dir,
    load_suites,
    severity_of,
)
from slf_warehouse.quality.target import DuckDBTarget, PgConnection, PgTarget, QualityTarget, as_target

log = logging.getLogger(__name__)

GX_DIR = "gx"  # the GE project, under out_dir
DATA_DOCS_DIR = "data_docs"
RESULTS_FILE = "quality_results.json"
SITE_NAME = "slf_quality"
DATASOURCE_NAME = "slf_warehouse"
BATCH_DEFINITION_NAME = "whole_batch"
KEEP_RUNS = 10  # validation results kept per suite (Data Docs shows this much history)
MAX_EXAMPLES = 5
PARTIAL_UNEXPECTED_COUNT = 20
GX_CONNECTION_ENV = "SLF_GX_PG_CONNECTION"  # GE's config names it; the value lives only in the process
# What a personal-data suite's results may keep: counts of rows, never a row's values.
COUNT_KEYS = (
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)
# Expectations whose observed value is the table's shape (a row count, column names), not data.
SHAPE_EXPECTATIONS = frozenset(
    {
        "expect_table_row_count_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_column_to_exist",
    }
)


@dataclass
class CheckRecord:
    """One expectation's outcome (or a suite that could not run: expectation_type "batch_query")."""

    suite: str
    expectation_type: str
    column: str | None
    success: bool
    severity: str  # "error" or "warning"
    unexpected_count: int | None = None
    unexpected_examples: list[Any] = field(default_factory=list)
    unexpected_rows: list[dict[str, Any]] = field(default_factory=list)  # row_id_columns of a few offenders
    observed_value: Any = None
    notes: str | None = None
    message: str | None = None

    def describe(self) -> str:
        """A human-readable line for a failed check."""
        what = self.expectation_type if not self.column else f"{self.expectation_type} on {self.column}"
        detail = []
        if self.message:
            detail.append(self.message)
        if self.unexpected_count:
            detail.append(f"{self.unexpected_count} unexpected value(s)")
        elif self.observed_value is not None and not isinstance(self.observed_value, (list, dict)):
            detail.append(f"observed {self.observed_value}")
        if self.unexpected_examples:
            detail.append("e.g. " + ", ".join(repr(e) for e in self.unexpected_examples))
        if self.unexpected_rows:
            detail.append(
                "in rows "
                + "; ".join(", ".join(f"{k}={v}" for k, v in row.items()) for row in self.unexpected_rows[:3])
            )
        return f"{self.suite}: {what}" + (f" ({'; '.join(detail)})" if detail else "")


@dataclass
class SuiteOutcome:
    name: str
    layer: str
    success: bool
    batch_rows: int | None
    expectations: int
    failed_errors: int
    failed_warnings: int
    message: str | None = None
    query_seconds: float | None = None
    validate_seconds: float | None = None


@dataclass
class QualityResult:
    success: bool
    results: list[CheckRecord]
    failed: list[str]  # failed error-severity checks (and suites that could not run)
    data_docs_index: Path
    results_path: Path
    warnings: list[str] = field(default_factory=list)  # failed warning-severity checks
    suites: list[SuiteOutcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Reading the batches (DuckDB only)
# ---------------------------------------------------------------------------------------------


def _batch_error(spec: SuiteSpec, exc: duckdb.Error) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, duckdb.CatalogException):
        step = "dbt build" if spec.layer != "raw" else "ingestion"
        return f"the table this suite checks is missing from the warehouse ({first}); has {step} run on it?"
    if isinstance(exc, duckdb.BinderException):
        return f"the batch query does not fit the table ({first}); is a column missing or renamed?"
    if spec.personal:  # a conversion error quotes the value it could not convert
        return f"the batch query failed ({type(exc).__name__}; details withheld: personal data)"
    return f"the batch query failed ({first})"


def read_batch(con: duckdb.DuckDBPyConnection, spec: SuiteSpec) -> Any:
    """The suite's batch as a pandas DataFrame, or an error message (str) when it cannot be used."""
    try:
        df = con.execute(spec.batch_query).df()  # fetches the whole result
    except duckdb.Error as exc:
        return _batch_error(spec, exc)
    personal = sorted(c for c in df.columns if str(c).lower() in PERSONAL_DATA_COLUMNS)
    if personal:
        return (
            f"the batch query selects personal data ({', '.join(personal)}); "
            "compute what the checks need inside the query instead"
        )
    absent = [c for c in spec.row_id_columns if c not in df.columns]
    if absent:
        return f"meta.row_id_columns names columns the batch lacks: {', '.join(absent)}"
    return df


@dataclass(frozen=True)
class SqlBatch:
    """A suite's batch on PostgreSQL: the view GE validates in the server, and its row count."""

    schema: str
    view: str
    rows: int

    def __len__(self) -> int:
        return self.rows


def _pg_batch_error(spec: SuiteSpec, exc: Exception) -> str:
    from psycopg2 import errors

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, (errors.UndefinedTable, errors.InvalidSchemaName)):
        step = "dbt build" if spec.layer != "raw" else "ingestion"
        return f"the table this suite checks is missing from the warehouse ({first}); has {step} run on it?"
    if isinstance(
        exc, (errors.UndefinedColumn, errors.UndefinedFunction, errors.DatatypeMismatch, errors.GroupingError)
    ):
        return f"the batch query does not fit the table ({first}); is a column missing or renamed?"
    if spec.personal:  # a conversion error quotes the value it could not convert
        return f"the batch query failed ({type(exc).__name__}; details withheld: personal data)"
    return f"the batch query failed ({first})"


def probe_batch(con: PgConnection, spec: SuiteSpec) -> SqlBatch | str:
    """The suite's batch on PostgreSQL as a view in the build's quality schema, checked in the
    server without fetching a row (its columns from `LIMIT 0`, its size from `count(*)`), or an
    error message (str) when it cannot be used."""
    import psycopg2
    from psycopg2 import sql

    schema = con.target.quality_schema()
    view = sql.Identifier(schema, spec.name).as_string(con.raw)
    try:
        con.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)).as_string(con.raw)
        )
        con.execute(f"DROP VIEW IF EXISTS {view}")  # last run's may have other columns
        con.execute(f"CREATE VIEW {view} AS\n{spec.batch_query}")
        con.execute(f"SELECT * FROM {view} LIMIT 0")
        columns = [d[0] for d in con.description]
        rows = con.execute(f"SELECT count(*) FROM {view}").fetchall()[0][0]
    except psycopg2.Error as exc:
        return _pg_batch_error(spec, exc)
    personal = sorted(c for c in columns if str(c).lower() in PERSONAL_DATA_COLUMNS)
    if personal:
        return (
            f"the batch query selects personal data ({', '.join(personal)}); "
            "compute what the checks need inside the query instead"
        )
    absent = [c for c in spec.row_id_columns if c not in columns]
    if absent:
        return f"meta.row_id_columns names columns the batch lacks: {', '.join(absent)}"
    return SqlBatch(schema, spec.name, int(rows))


def open_warehouse(warehouse_path: Path) -> duckdb.DuckDBPyConnection:
    if not Path(warehouse_path).is_file():
        raise FileNotFoundError(f"no warehouse at {warehouse_path}")
    con = duckdb.connect(str(warehouse_path), read_only=True)
    con.execute("SET enable_progress_bar = false")
    return con


def read_batches(warehouse_path: Path, specs: Sequence[SuiteSpec]) -> dict[str, Any]:
    """Suite name -> read_batch(...) for each suite (all batches in memory: for tests and inspection)."""
    with open_warehouse(warehouse_path) as con:
        return {spec.name: read_batch(con, spec) for spec in specs}


# ---------------------------------------------------------------------------------------------
# Great Expectations
# ---------------------------------------------------------------------------------------------


def _open_context(gx: Any, out_dir: Path) -> Any:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="file", project_root_dir=str(out_dir))
    # Relative to the GE project (out_dir/gx), so the folder can be moved or copied whole.
    site_config = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": f"../{DATA_DOCS_DIR}/",
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    sites = ctx.list_data_docs_sites()
    for name in list(sites):
        if name != SITE_NAME:
            ctx.delete_data_docs_site(name)
    if SITE_NAME in sites:
        ctx.update_data_docs_site(SITE_NAME, site_config)
    else:
        ctx.add_data_docs_site(SITE_NAME, site_config)
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    ctx.variables.analytics_enabled = False
    ctx.variables.save()
    return ctx


def _forget(factory: Any, name: str) -> None:
    """Remove a stored suite / validation definition / checkpoint of this name, if there is one."""
    from great_expectations.exceptions import DataContextError

    with contextlib.suppress(DataContextError):
        factory.delete(name)


def _reset_project(ctx: Any, engine: str = "duckdb") -> Any:
    """Suites, validation definitions and checkpoints are rebuilt from expectations/ on every run;
    the data source is the engine's (pandas for DuckDB, GE's PostgreSQL source for PostgreSQL)."""
    for checkpoint in list(ctx.checkpoints.all()):
        _forget(ctx.checkpoints, checkpoint.name)
    for definition in list(ctx.validation_definitions.all()):
        _forget(ctx.validation_definitions, definition.name)
    for suite in list(ctx.suites.all()):
        _forget(ctx.suites, suite.name)
    existing = ctx.data_sources.all().get(DATASOURCE_NAME)
    wanted = "postgres" if engine == "postgres" else "pandas"
    if existing is not None and (wanted == "postgres" or existing.type != wanted):
        ctx.data_sources.delete(DATASOURCE_NAME)  # its assets are last run's suites
    if wanted == "postgres":
        return ctx.data_sources.add_postgres(
            name=DATASOURCE_NAME, connection_string=f"${{{GX_CONNECTION_ENV}}}", create_temp_table=False
        )
    return ctx.data_sources.add_or_update_pandas(name=DATASOURCE_NAME)


def _build_suite(spec: SuiteSpec) -> Any:
    """The GE ExpectationSuite; raises ValueError naming an expectation GE does not accept."""
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    for i, raw in enumerate(spec.expectations):
        try:
            ExpectationConfiguration(**raw).to_domain_obj()
        except Exception as exc:  # GE raises several types here; all mean "not a valid expectation"
            raise ValueError(f"expectation {i + 1} ({raw.get('type')}) is not valid for GE: {exc}") from exc
    suite = ExpectationSuite(**spec.ge_suite_dict())
    if len(suite.expectations) != len(spec.expectations):  # GE drops invalid ones with only a log line
        raise ValueError(f"GE accepted {len(suite.expectations)} of {len(spec.expectations)} expectations")
    return suite


def _exception_message(exception_info: Any) -> str | None:
    if not isinstance(exception_info, dict):
        return None
    if "raised_exception" in exception_info:
        infos = [exception_info]
    else:  # keyed by metric id
        infos = [v for v in exception_info.values() if isinstance(v, dict)]
    for info in infos:
        if info.get("raised_exception") or info.get("exception_message"):
            message = str(info.get("exception_message") or "GE raised an exception")
            return "could not be evaluated: " + message.strip().splitlines()[0]
    return None


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A JSON-friendly, short rendering of one example value."""
    import datetime as dt

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if _is_missing(value):
        return None
    if type(value).__name__ == "datetime64":  # numpy
        import pandas as pd

        value = pd.Timestamp(value)
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()  # a date GE read as a midnight timestamp
    if isinstance(value, dt.date):  # a datetime too
        return value.isoformat()
    for kind in (bool, int, float):  # bool first: True is an int; subclasses (numpy's float64) to plain
        if isinstance(value, kind):
            return kind(value)
    if hasattr(value, "item"):  # numpy scalars
        with contextlib.suppress(ValueError, TypeError):
            return _plain(value.item())
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _examples(result: dict[str, Any]) -> list[Any]:
    mismatched = (result.get("details") or {}).get("mismatched")
    if isinstance(mismatched, dict):  # expect_table_columns_to_match_set
        return [f"{kind}: {col}" for kind in ("missing", "unexpected") for col in mismatched.get(kind, [])][
            :MAX_EXAMPLES
        ]
    values = [c.get("value") for c in result.get("partial_unexpected_counts") or [] if isinstance(c, dict)]
    if not values:
        values = list(result.get("partial_unexpected_list") or [])
    examples: list[Any] = []
    for value in values:
        plain = _plain(value)
        if plain is not None and plain not in examples:
            examples.append(plain)
        if len(examples) == MAX_EXAMPLES:
            break
    return examples


def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    names = result.get("unexpected_index_column_names") or []
    rows: list[dict[str, Any]] = []
    for entry in result.get("partial_unexpected_index_list") or []:
        if isinstance(entry, dict) and names:
            row = {n: _plain(entry.get(n)) for n in names}
            if row not in rows:
                rows.append(row)
        if len(rows) == MAX_EXAMPLES:
            break
    return rows


def _column_of(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_list"):
        return ", ".join(map(str, kwargs["column_list"]))
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}, {kwargs.get('column_B')}"
    return None


def _note_text(notes: Any) -> str | None:
    if isinstance(notes, (list, tuple)):
        return " ".join(map(str, notes)) or None
    return str(notes) if notes else None


def _records(suite_name: str, validation_result: Any) -> list[CheckRecord]:
    records = []
    for r in validation_result.results:
        config = r.expectation_config
        meta = dict(config.meta or {})
        result = dict(r.result or {})
        observed = result.get("observed_value")
        records.append(
            CheckRecord(
                suite=suite_name,
                expectation_type=config.type,
                column=_column_of(dict(config.kwargs)),
                success=bool(r.success),
                severity=severity_of({"meta": meta, "severity": config.severity}),
                unexpected_count=result.get("unexpected_count"),
                unexpected_examples=[] if r.success else _examples(result),
                unexpected_rows=[] if r.success else _rows(result),
                observed_value=_plain(observed),
                notes=_note_text(getattr(config, "notes", None) or meta.get("notes")),
                message=_exception_message(r.exception_info),
            )
        )
    return records


def _exception_kind(info: dict[str, Any]) -> dict[str, Any]:
    """An exception's type, without its message or traceback (either may quote a value)."""
    if not info.get("raised_exception") and not info.get("exception_message"):
        return {"raised_exception": False, "exception_traceback": None, "exception_message": None}
    last = str(info.get("exception_traceback") or "").strip().splitlines()[-1:] or [""]
    kind = last[0].split(":", 1)[0].strip() or "an exception"
    return {
        "raised_exception": bool(info.get("raised_exception")),
        "exception_traceback": None,
        "exception_message": f"{kind} (details withheld: personal data)",
    }


def strip_row_values(validation_result: Any) -> Any:
    """A personal-data suite's GE result, in place, reduced to counts: each expectation keeps the
    number of rows checked, missing and unexpected; a shape check (row count, column names) keeps
    its observed value; values, row ids, rendered text and exception details go."""
    for r in validation_result.results:
        result = dict(r.result or {})
        kept: dict[str, Any] = {k: result[k] for k in COUNT_KEYS if k in result}
        if "partial_unexpected_list" in result:
            kept["partial_unexpected_list"] = []  # Data Docs' renderer expects the key on map checks
        if r.expectation_config.type in SHAPE_EXPECTATIONS:
            kept.update({k: result[k] for k in ("observed_value", "details") if k in result})
        r.result = kept
        info = r.exception_info or {}
        if "raised_exception" in info:
            r.exception_info = _exception_kind(info)
        elif isinstance(info, dict):  # keyed by metric id
            r.exception_info = {
                key: _exception_kind(v) if isinstance(v, dict) else v for key, v in info.items()
            }
        r.rendered_content = None
    return validation_result


def _prune_history(gx_root: Path, keep: int) -> None:
    """Keep the validation results of the last `keep` runs of each suite."""
    store = gx_root / "uncommitted" / "validations"
    if not store.is_dir():
        return
    for suite_dir in (d for d in store.iterdir() if d.is_dir()):
        runs = sorted(
            (t for run in suite_dir.iterdir() if run.is_dir() for t in run.iterdir() if t.is_dir()),
            key=lambda t: t.name,
        )  # run times, e.g. 20261123T203225.795686Z
        for old in runs[:-keep] if keep > 0 else runs:
            shutil.rmtree(old, ignore_errors=True)
        for run in suite_dir.iterdir():
            if run.is_dir() and not any(run.iterdir()):
                run.rmdir()


def _validate(gx: Any, ctx: Any, datasource: Any, spec: SuiteSpec, df: Any, run_identifier: Any) -> Any:
    suite = ctx.suites.add(_build_suite(spec))
    if isinstance(df, SqlBatch):  # GE's SQL engine: the metrics are computed in the server
        # the schema comes from the connection's search_path (PgTarget.sqlalchemy_url): GE 1.24
        # deprecates a table asset's schema_name
        asset = datasource.add_table_asset(name=spec.name, table_name=df.view)
        batch_definition = asset.add_batch_definition_whole_table(BATCH_DEFINITION_NAME)
        batch_parameters: dict[str, Any] | None = None
    else:
        asset = datasource.add_dataframe_asset(name=spec.name)
        batch_definition = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)
        batch_parameters = {"dataframe": df}
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=spec.name, data=batch_definition, suite=suite)
    )
    result_format: dict[str, Any]
    if spec.personal:  # GE never collects a value: counts only
        result_format = {"result_format": "BASIC", "partial_unexpected_count": 0}
    else:
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT}
        if spec.row_id_columns:
            result_format["unexpected_index_column_names"] = spec.row_id_columns
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(
            name=spec.name, validation_definitions=[definition], actions=[], result_format=result_format
        )
    )
    checkpoint_result = checkpoint.run(batch_parameters=batch_parameters, run_id=run_identifier)
    ((key, validation_result),) = checkpoint_result.run_results.items()
    if spec.personal:
        # BASIC still returns an aggregate's observed value (a column's max, say): GE has stored
        # the result already, so the stripped one replaces it before Data Docs are built from it.
        ctx.validation_results_store.set(key, strip_row_values(validation_result))
    return validation_result


def _restore_env(previous: str | None) -> None:
    if previous is None:
        os.environ.pop(GX_CONNECTION_ENV, None)
    else:
        os.environ[GX_CONNECTION_ENV] = previous


# ---------------------------------------------------------------------------------------------
# The gate
# ---------------------------------------------------------------------------------------------


def run_quality_checks(
    warehouse_path: Path | QualityTarget,
    out_dir: Path,
    run_id: str,
    suites_dir: Path | None = None,
    suites: Sequence[str] | None = None,
    keep_runs: int = KEEP_RUNS,
) -> QualityResult:
    """Run the suites on the warehouse; build Data Docs and quality_results.json under out_dir.

    `warehouse_path` is a DuckDB build file or a QualityTarget (target.py). `suites` selects suites
    by name or glob (e.g. ["raw_*"]); all suites in suites_dir by default.
    The result's `success` is False when any error-severity expectation fails or a suite cannot run.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    timings: dict[str, float] = {}
    target, out_dir = as_target(warehouse_path), Path(out_dir)
    specs = load_suites(Path(suites_dir) if suites_dir else default_suites_dir(), suites)
    out_dir.mkdir(parents=True, exist_ok=True)

    # before the slow import: a wrong path or build fails at once
    if isinstance(target, DuckDBTarget):
        con = open_warehouse(target.path)
    elif not target.exists():
        raise FileNotFoundError(f"no build at {target.describe()}")
    else:  # read-write: the batches' views are made in the build's quality schema
        con = target.connect()
    previous_url = os.environ.get(GX_CONNECTION_ENV)
    if isinstance(target, PgTarget):
        os.environ[GX_CONNECTION_ENV] = target.sqlalchemy_url(search_path=target.quality_schema())
    try:
        return _run_checks(target, con, out_dir, run_id, specs, keep_runs, started, started_at, timings)
    finally:
        _restore_env(previous_url)


def _run_checks(
    target: Any,
    con: Any,
    out_dir: Path,
    run_id: str,
    specs: list[SuiteSpec],
    keep_runs: int,
    started: float,
    started_at: datetime,
    timings: dict[str, float],
) -> QualityResult:
    try:
        mark = time.perf_counter()
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.core.run_identifier import RunIdentifier

        timings["import_great_expectations"] = time.perf_counter() - mark

        mark = time.perf_counter()
        ctx = _open_context(gx, out_dir)
        datasource = _reset_project(ctx, target.engine)
        run_identifier = RunIdentifier(run_name=run_id, run_time=started_at)
    except BaseException:
        con.close()
        raise
    records: list[CheckRecord] = []
    outcomes: list[SuiteOutcome] = []
    timings["read_batches"] = 0.0
    with con:
        for spec in specs:  # one batch in memory at a time (DuckDB); none at all (PostgreSQL)
            query_started = time.perf_counter()
            batch = probe_batch(con, spec) if isinstance(con, PgConnection) else read_batch(con, spec)
            query_seconds = time.perf_counter() - query_started
            timings["read_batches"] += query_seconds
            error: str | None = batch if isinstance(batch, str) else None
            rows = None if error is not None else len(batch)
            suite_records: list[CheckRecord] = []
            validate_started = time.perf_counter()
            if error is None:
                try:
                    validation_result = _validate(gx, ctx, datasource, spec, batch, run_identifier)
                    suite_records = _records(spec.name, validation_result)
                except Exception as exc:  # a suite GE cannot run must fail the gate, not stop the others
                    if spec.personal:  # the message or traceback may quote a value
                        log.error("suite %s could not be run: %s", spec.name, type(exc).__name__)
                        error = (
                            f"Great Expectations could not run this suite: {type(exc).__name__} "
                            "(details withheld: personal data)"
                        )
                    else:
                        log.exception("suite %s could not be run", spec.name)
                        error = f"Great Expectations could not run this suite: {exc}"
            del batch
            if error is not None:
                suite_records = [
                    CheckRecord(
                        suite=spec.name,
                        expectation_type="batch_query",
                        column=None,
                        success=False,
                        severity="error",
                        message=error,
                    )
                ]
            records += suite_records
            outcomes.append(
                SuiteOutcome(
                    name=spec.name,
                    layer=spec.layer,
                    success=not any(not r.success and r.severity == "error" for r in suite_records),
                    batch_rows=rows,
                    expectations=len(spec.expectations),
                    failed_errors=sum(not r.success and r.severity == "error" for r in suite_records),
                    failed_warnings=sum(not r.success and r.severity == "warning" for r in suite_records),
                    message=error,
                    query_seconds=round(query_seconds, 3),
                    validate_seconds=round(time.perf_counter() - validate_started, 3),
                )
            )
    timings["validate"] = time.perf_counter() - mark - timings["read_batches"]

    mark = time.perf_counter()
    _prune_history(out_dir / GX_DIR, keep_runs)
    docs_dir = out_dir / DATA_DOCS_DIR
    shutil.rmtree(docs_dir, ignore_errors=True)  # pages of pruned runs go too
    ctx.build_data_docs(site_names=[SITE_NAME])
    data_docs_index = docs_dir / "index.html"
    if not data_docs_index.is_file():
        raise RuntimeError(f"Great Expectations did not write {data_docs_index}")
    add_static_summary(data_docs_index, run_id, outcomes)  # readable without JavaScript or internet
    timings["data_docs"] = time.perf_counter() - mark

    failed = [r.describe() for r in records if not r.success and r.severity == "error"]
    warnings = [r.describe() for r in records if not r.success and r.severity == "warning"]
    success = not failed
    timings["total"] = time.perf_counter() - started
    results_path = out_dir / RESULTS_FILE
    report = {
        "run_id": run_id,
        "warehouse": target.describe(),
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "success": success,
        "summary": {
            "suites": len(outcomes),
            "suites_failed": sum(not o.success for o in outcomes),
            "expectations": len(records),
            "failed": len(failed),
            "warnings": len(warnings),
        },
        "failed": failed,
        "warnings": warnings,
        "suites": [asdict(o) for o in outcomes],
        "results": [asdict(r) for r in records],
        "data_docs_index": str(data_docs_index),
        "great_expectations_version": gx.__version__,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    write_private(results_path, json.dumps(report, indent=2, ensure_ascii=False, default=str))

    log.info(
        "quality checks %s: %d suites, %d expectations, %d failed, %d warnings (%.1f s, of which %.1f s "
        "importing great_expectations); Data Docs: %s",
        "passed" if success else "FAILED",
        len(specs),
        len(records),
        len(failed),
        len(warnings),
        timings["total"],
        timings["import_great_expectations"],
        data_docs_index,
    )
    return QualityResult(
        success=success,
        results=records,
        failed=failed,
        data_docs_index=data_docs_index,
        results_path=results_path,
        warnings=warnings,
        suites=outcomes,
        timings=timings,
    )
