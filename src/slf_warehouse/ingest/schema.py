"""The tables ingestion writes (raw.<source>, audit.load_manifest), declared once for both engines.

The raw columns come from the contract (contract.py, typed by validation.raw_columns); PostgreSQL's
types are DuckDB's mapped by pg_types, so the two warehouses cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

from slf_warehouse.contract import SOURCES, SourceSpec
from slf_warehouse.ingest.validation import raw_columns
from slf_warehouse.pg_types import Column

Engine = Literal["duckdb", "postgres"]

# One row per delivered file and load. status: loaded | skipped-duplicate | replaced | rejected;
# replaced_by: the load that superseded this one.
MANIFEST_COLUMNS = (
    Column("load_id", "VARCHAR", False),
    Column("run_id", "VARCHAR", True),
    Column("source", "VARCHAR", False),
    Column("file_name", "VARCHAR", False),
    Column("period", "VARCHAR", True),
    Column("sha256", "VARCHAR", False),
    Column("size_bytes", "BIGINT", True),
    Column("rows", "BIGINT", True),
    Column("received_at", "TIMESTAMP", True),
    Column("loaded_at", "TIMESTAMP", False),
    Column("status", "VARCHAR", False),
    Column("replaced_by", "VARCHAR", True),
    Column("error", "VARCHAR", True),
    Column("warnings", "VARCHAR", True),
)

# What every raw table has besides the contract's columns (docs/architecture.md, raw layer).
LINEAGE_COLUMNS = (
    Column("_period", "VARCHAR", True),
    Column("_source_file", "VARCHAR", False),
    Column("_source_line", "INTEGER", False),
    Column("_load_id", "VARCHAR", False),
)


def raw_table_columns(spec: SourceSpec) -> tuple[Column, ...]:
    return (*(Column(name, typ, True) for name, typ, _ in raw_columns(spec)), *LINEAGE_COLUMNS)


def _definitions(columns: tuple[Column, ...], engine: Engine) -> str:
    return ", ".join(
        f'"{c.name}" {c.pg_type if engine == "postgres" else c.duckdb_type}'
        f"{'' if c.nullable else ' NOT NULL'}"
        for c in columns
    )


def manifest_ddl(engine: Engine, catalog: str = "") -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {catalog}audit.load_manifest ({_definitions(MANIFEST_COLUMNS, engine)})"
    )


def raw_ddl(spec: SourceSpec, engine: Engine, catalog: str = "") -> str:
    columns = _definitions(raw_table_columns(spec), engine)
    return f"CREATE TABLE IF NOT EXISTS {catalog}raw.{spec.name} ({columns})"


def create_statements(engine: Engine, catalog: str = "") -> list[str]:
    """CREATE SCHEMA / TABLE IF NOT EXISTS for the raw and audit tables; `catalog` prefixes the
    schemas (DuckDB's attached warehouse, `wh.`)."""
    return [
        f"CREATE SCHEMA IF NOT EXISTS {catalog}raw",
        f"CREATE SCHEMA IF NOT EXISTS {catalog}audit",
        manifest_ddl(engine, catalog),
        *(raw_ddl(spec, engine, catalog) for spec in SOURCES.values()),
    ]
