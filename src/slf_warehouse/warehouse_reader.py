"""Reading one published warehouse version, on DuckDB or PostgreSQL: what the answers query through.

The figure registry, the appendix and the source-file list write their SQL once, with ``?``
placeholders, and read through a ``WarehouseReader``:

- ``execute(sql, params)`` binds every value (DuckDB natively; PostgreSQL through psycopg2, the
  ``?`` turned into ``%s`` here and nowhere else); no value is ever formatted into the SQL text.
- ``relation(schema, table)`` names a table of the version being read. On DuckDB a version is its
  own file, so the names stay as written. On PostgreSQL a version's dbt layers live in
  ``b_<version>_<layer>`` (``warehouse_pg``); the reader reads those schemas directly, not the
  stable ``marts`` views, so an answer reads one version even when a publication happens while it
  runs, and an old answer can be regenerated from a kept version. Schemas a build does not have
  (``audit``, ``raw``) are read as they are.
- ``columns(schema, table)`` gives the column types spelled as DuckDB spells them (``DECIMAL(18,2)``,
  ``VARCHAR``, ``INTEGER`` …) on both engines, for the figures' identifier and type checks.
- ``text_order(expression)``: text sorted by code point on both engines (PostgreSQL's database
  collation, e.g. da_DK, would sort differently from DuckDB's binary order).

PostgreSQL sessions are read-only, REPEATABLE READ (one snapshot for the whole answer) and UTC.

    with open_reader(PostgresSource(conninfo)) as reader:   # the published version
        reader.execute("select count(*) from " + reader.relation("marts", "fct_allocations"))
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENGINES = ("duckdb", "postgres")
ENGINE_ENV = "SLF_WAREHOUSE_ENGINE"


class WarehouseReadError(Exception):
    """The warehouse (version) asked for cannot be read."""


@dataclass(frozen=True)
class DuckDBSource:
    """A warehouse file, opened read-only."""

    path: Path

    engine = "duckdb"


@dataclass(frozen=True)
class PostgresSource:
    """A PostgreSQL warehouse in the ``warehouse_pg`` layout; ``version`` None: the one published
    when the reader opens."""

    conninfo: str
    version: str | None = None

    engine = "postgres"


WarehouseSource = DuckDBSource | PostgresSource


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def engine_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``SLF_WAREHOUSE_ENGINE``: duckdb (the default) or postgres."""
    value = ((os.environ if environ is None else environ).get(ENGINE_ENV) or "duckdb").strip().lower()
    if value not in ENGINES:
        raise ValueError(f"{ENGINE_ENV}={value!r}: expected one of {', '.join(ENGINES)}")
    return value


def to_pyformat(sql: str, n_params: int) -> str:
    """``?`` placeholders as psycopg2's ``%s`` (and a literal ``%`` as ``%%``), outside quoted
    strings and identifiers. The one place the placeholder style is translated."""
    out, quote, count = [], None, 0
    for ch in sql:
        if quote:
            quote = None if ch == quote else quote
            out.append("%%" if ch == "%" else ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            count += 1
            out.append("%s")
        else:
            out.append("%%" if ch == "%" else ch)
    if quote:
        raise ValueError("unterminated quote in SQL")
    if count != n_params:
        raise ValueError(f"the SQL has {count} placeholder(s) for {n_params} parameter(s)")
    return "".join(out)


# information_schema.columns.data_type on PostgreSQL -> DuckDB's spelling
_PG_TYPES = {
    "text": "VARCHAR",
    "character varying": "VARCHAR",
    "character": "VARCHAR",
    "boolean": "BOOLEAN",
    "smallint": "SMALLINT",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "real": "FLOAT",
    "double precision": "DOUBLE",
    "date": "DATE",
    "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
}


class WarehouseReader:
    """One open, read-only view of one warehouse version (use ``open_reader``)."""

    engine: str = ""

    def __init__(self) -> None:
        self._columns: dict[tuple[str, str], dict[str, str]] = {}

    # what the appendix and the sidecar say about the source
    version: str | None = None
    run_id: str | None = None
    published_at: str | None = None

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        raise NotImplementedError

    def physical_schema(self, schema: str) -> str:
        return schema

    def relation(self, schema: str, table: str) -> str:
        """The quoted name to read ``schema.table`` of this version by (plain identifiers only)."""
        return f"{_quote(self.physical_schema(schema))}.{_quote(table)}"

    def text_order(self, expression: str) -> str:
        return expression

    def columns(self, schema: str, table: str) -> dict[str, str]:
        """Column name -> type (DuckDB's spelling), in order; empty when there is no such table."""
        key = (schema, table)
        if key not in self._columns:
            self._columns[key] = self._read_columns(self.physical_schema(schema), table)
        return self._columns[key]

    def has_table(self, schema: str, table: str) -> bool:
        return bool(self.columns(schema, table))

    def _read_columns(self, schema: str, table: str) -> dict[str, str]:
        raise NotImplementedError


def _quote(name: str) -> str:
    if not name or '"' in name or "\x00" in name:
        raise ValueError(f"not a plain identifier: {name!r}")
    return '"' + name + '"'


class DuckDBReader(WarehouseReader):
    engine = "duckdb"

    def __init__(self, con, path: Path | None = None) -> None:
        super().__init__()
        self._con = con
        self.path = path

    def describe(self) -> dict[str, Any]:
        return {"engine": "duckdb", "file": self.path.name if self.path else None}

    def execute(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        cursor = self._con.execute(sql, list(params))
        rows = cursor.fetchall()
        return QueryResult(tuple(d[0] for d in cursor.description or ()), rows)

    def _read_columns(self, schema: str, table: str) -> dict[str, str]:
        rows = self.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, table],
        ).rows
        return {name: dtype.upper() for name, dtype in rows}


class PostgresReader(WarehouseReader):
    engine = "postgres"

    def __init__(self, con, version: str | None) -> None:
        super().__init__()
        self._con = con
        self._cur = con.cursor()
        self._resolve(version)

    def _resolve(self, version: str | None) -> None:
        from slf_warehouse.warehouse import NoPublishedWarehouse
        from slf_warehouse.warehouse_pg import REGISTRY_SCHEMA, PgPublished

        # the first statement takes the transaction's snapshot: the registry and the data agree
        self._cur.execute("select to_regclass(%s) is not null", (f"{REGISTRY_SCHEMA}.versions",))
        if not self._cur.fetchone()[0]:
            raise NoPublishedWarehouse(
                "no warehouse has been published in PostgreSQL yet "
                f"({REGISTRY_SCHEMA}.versions does not exist): run a refresh first"
            )
        registry = f'"{REGISTRY_SCHEMA}"."versions"'
        if version is None:
            self._cur.execute(f"select version, run_id, published_at from {registry} where is_current")
        else:
            self._cur.execute(
                f"select version, run_id, published_at from {registry} where version = %s "
                "and published_at is not null and dropped_at is null",
                (version,),
            )
        row = self._cur.fetchone()
        if row is None:
            if version is None:
                raise NoPublishedWarehouse(
                    "no warehouse has been published in PostgreSQL yet: run a refresh first"
                )
            self._cur.execute(
                f"select version from {registry} where published_at is not null "
                "and dropped_at is null order by published_at desc"
            )
            kept = ", ".join(r[0] for r in self._cur.fetchall()) or "none"
            raise WarehouseReadError(
                f"warehouse version {version!r} is not a kept published version (kept: {kept})"
            )
        published = PgPublished(row[0], row[1], row[2].isoformat())
        self.version, self.run_id = published.version, published.run_id
        self.published_at = published.published_at
        self._prefix = published.schema("")
        self._cur.execute("select nspname from pg_namespace where starts_with(nspname, %s)", (self._prefix,))
        self._layers = {name[len(self._prefix) :] for (name,) in self._cur.fetchall()}
        self._cur.execute("select current_database()")
        self._database = self._cur.fetchone()[0]

    def describe(self) -> dict[str, Any]:
        return {"engine": "postgres", "database": self._database, "schema": self.physical_schema("marts")}

    def physical_schema(self, schema: str) -> str:
        return self._prefix + schema if schema in self._layers else schema

    def text_order(self, expression: str) -> str:
        return f'{expression} COLLATE "C"'

    def execute(self, sql: str, params: Sequence[Any] = ()) -> QueryResult:
        params = list(params)
        self._cur.execute(to_pyformat(sql, len(params)), params)
        rows = self._cur.fetchall() if self._cur.description else []
        return QueryResult(tuple(d[0] for d in self._cur.description or ()), rows)

    def _read_columns(self, schema: str, table: str) -> dict[str, str]:
        rows = self.execute(
            "SELECT column_name, data_type, numeric_precision, numeric_scale "
            "FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [schema, table],
        ).rows
        out = {}
        for name, dtype, precision, scale in rows:
            if dtype == "numeric":
                out[name] = f"DECIMAL({precision},{scale})" if precision is not None else "DECIMAL"
            else:
                out[name] = _PG_TYPES.get(dtype, dtype.upper())
        return out


@contextmanager
def open_reader(source: WarehouseSource | Path | str) -> Iterator[WarehouseReader]:
    """The source opened read-only for one answer; closed (PostgreSQL: rolled back) after."""
    if isinstance(source, (str, Path)):
        source = DuckDBSource(Path(source))
    if isinstance(source, DuckDBSource):
        import duckdb

        path = Path(source.path)
        if not path.is_file():
            raise FileNotFoundError(f"warehouse {path} does not exist")
        with duckdb.connect(str(path), read_only=True) as con:
            yield DuckDBReader(con, path)
        return
    import psycopg2
    from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ

    con = psycopg2.connect(source.conninfo, options="-c TimeZone=UTC -c default_transaction_read_only=on")
    try:
        con.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        yield PostgresReader(con, source.version)
    finally:
        con.rollback()
        con.close()


def reader_for_connection(con) -> WarehouseReader:
    """A reader over an open DuckDB connection (the registry's tests and callers holding one)."""
    if isinstance(con, WarehouseReader):
        return con
    return DuckDBReader(con)
