"""DuckDB column types as PostgreSQL spells them: one mapping for everything that writes PostgreSQL
tables from DuckDB's (ingestion's raw and audit tables, pg_raw's copy)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# DuckDB type (as duckdb_columns().data_type spells it) -> PostgreSQL type. DECIMAL is handled apart.
_TYPES = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20, 0)",
    "HUGEINT": "numeric(39, 0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "UUID": "uuid",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


class UnsupportedType(ValueError):
    """A raw column has a DuckDB type this copy does not carry across (BLOB, LIST, STRUCT, ...)."""


@dataclass(frozen=True)
class Column:
    """A table column by its DuckDB type."""

    name: str
    duckdb_type: str
    nullable: bool

    @property
    def pg_type(self) -> str:
        return pg_type(self.duckdb_type)


def pg_type(duckdb_type: str) -> str:
    """The PostgreSQL type for a DuckDB column type."""
    if match := _DECIMAL.fullmatch(duckdb_type.strip()):
        return f"numeric({match.group(1)}, {match.group(2)})"
    try:
        return _TYPES[duckdb_type.strip().upper()]
    except KeyError:
        raise UnsupportedType(f"no PostgreSQL type for DuckDB type {duckdb_type!r}") from None
