"""Copy the raw layer of a DuckDB warehouse into PostgreSQL, so dbt can build it with `--target postgres`.

Ingestion writes `raw.*` into the DuckDB file (docs/architecture.md); the dbt models run unchanged on
PostgreSQL. This module carries the raw tables across:

- `CREATE SCHEMA raw`, one `CREATE TABLE` per DuckDB table with the matching PostgreSQL types
  (VARCHAR -> text, DECIMAL(p,s) -> numeric(p,s), DATE, INTEGER, ...) and the NOT NULL columns;
- the rows in bulk: DuckDB writes each table as CSV to a temporary file (`COPY ... TO`), PostgreSQL
  reads it with `COPY ... FROM STDIN` (psycopg2 `copy_expert`). DuckDB's CSV writes NULL as an
  unquoted empty field and an empty string as `""`, which is exactly how PostgreSQL's CSV format
  tells them apart.

Everything happens in one PostgreSQL transaction: a failed copy leaves the previous raw tables as
they were. A table whose columns are unchanged is emptied (TRUNCATE) and refilled, so the dbt
staging views built on it survive; a table whose columns changed is dropped with what depends on
it (`DROP TABLE ... CASCADE`; the next `dbt build` recreates the views) and created anew.

    from slf_warehouse.pg_raw import copy_raw_to_postgres, conninfo_from_env
    copy_raw_to_postgres("warehouse.duckdb", conninfo_from_env())

or `python -m slf_warehouse.pg_raw warehouse.duckdb` (connection from SLF_PG_* as for dbt).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from slf_warehouse.pg_types import Column, UnsupportedType, pg_type  # noqa: F401 - re-exported


@dataclass(frozen=True)
class CopiedTable:
    table: str
    rows: int
    recreated: bool  # True when the table was (re)created, False when truncated and refilled


def server_name(conninfo: str) -> str:
    """host:port/database of a connection string, for messages and descriptions (never the password)."""
    from psycopg2.extensions import parse_dsn

    dsn = parse_dsn(conninfo)
    return f"{dsn.get('host', 'localhost')}:{dsn.get('port', 5432)}/{dsn.get('dbname', '')}"


def conninfo_from_env(environ: Mapping[str, str] | None = None) -> str:
    """A libpq connection string from the variables dbt's `postgres` target reads (profiles.yml);
    inside an Airflow task, from the Airflow connection SLF_PG_CONN_ID names where it is set
    (pg_connection)."""
    from psycopg2.extensions import make_dsn

    from slf_warehouse.pg_connection import airflow_connection_env

    env = {**(os.environ if environ is None else environ)}
    env.update(airflow_connection_env(env))

    return make_dsn(
        host=env.get("SLF_PG_HOST", "localhost"),
        port=env.get("SLF_PG_PORT", "5432"),
        user=env.get("SLF_PG_USER", "slf"),
        password=env.get("SLF_PG_PASSWORD") or None,
        dbname=env.get("SLF_PG_DATABASE") or env.get("SLF_PG_DBNAME") or "slf_warehouse",
    )


def duckdb_tables(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, list[Column]]:
    """The base tables of a DuckDB schema and their columns, in order."""
    rows = con.execute(
        """
        select c.table_name, c.column_name, c.data_type, c.is_nullable
        from duckdb_columns() as c
        join duckdb_tables() as t
            on t.database_name = c.database_name and t.schema_name = c.schema_name
            and t.table_name = c.table_name
        where c.database_name = current_database() and c.schema_name = ?
        order by c.table_name, c.column_index
        """,
        [schema],
    ).fetchall()
    tables: dict[str, list[Column]] = {}
    for table, column, data_type, nullable in rows:
        tables.setdefault(table, []).append(Column(column, data_type, bool(nullable)))
    return tables


def _duck_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_columns(cur, schema: str, table: str) -> list[tuple[str, str, bool]]:
    cur.execute(
        """
        select a.attname, format_type(a.atttypid, a.atttypmod), not a.attnotnull
        from pg_attribute as a
        join pg_class as c on c.oid = a.attrelid
        join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = %s and c.relname = %s and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
        order by a.attnum
        """,
        (schema, table),
    )
    return [(name, type_, nullable) for name, type_, nullable in cur.fetchall()]


def _normalised(pg_type_: str) -> str:
    return (
        pg_type_.replace(" ", "")
        .replace("timestampwithouttimezone", "timestamp")
        .replace("timestampwithtimezone", "timestamptz")
        .replace("timewithouttimezone", "time")
    )


def copy_raw_to_postgres(
    warehouse: str | Path,
    conninfo: str,
    *,
    schema: str = "raw",
    tables: Iterable[str] | None = None,
) -> list[CopiedTable]:
    """Copies `schema` (default `raw`) of the DuckDB file `warehouse` into PostgreSQL at `conninfo`.

    Only the named `tables` when given, else every base table of the schema. Returns one entry per
    table with the rows copied. Raises UnsupportedType before touching PostgreSQL when a column's
    type has no mapping.
    """
    import psycopg2
    from psycopg2 import sql

    with duckdb.connect(str(warehouse), read_only=True) as duck:
        found = duckdb_tables(duck, schema)
        wanted = sorted(found) if tables is None else list(tables)
        missing = [t for t in wanted if t not in found]
        if missing:
            raise KeyError(f"not in {warehouse}:{schema}: {', '.join(missing)}")
        for table in wanted:  # fail on an unmapped type before anything is written
            for column in found[table]:
                column.pg_type  # noqa: B018 - raises UnsupportedType

        copied: list[CopiedTable] = []
        with tempfile.TemporaryDirectory(prefix="slf-pg-raw-") as tmp:
            pg = psycopg2.connect(conninfo)
            try:
                pg.set_client_encoding("UTF8")
                with pg, pg.cursor() as cur:  # one transaction: commit on success, rollback on error
                    cur.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
                    for table in wanted:
                        columns = found[table]
                        target = sql.Identifier(schema, table)
                        wanted_shape = [(c.name, _normalised(c.pg_type), c.nullable) for c in columns]
                        existing = [(n, _normalised(t), nl) for n, t, nl in _pg_columns(cur, schema, table)]
                        recreated = existing != wanted_shape
                        if recreated:
                            if existing:
                                cur.execute(sql.SQL("drop table {} cascade").format(target))
                            cur.execute(
                                sql.SQL("create table {} ({})").format(
                                    target,
                                    sql.SQL(", ").join(
                                        sql.SQL("{} {}{}").format(
                                            sql.Identifier(c.name),
                                            sql.SQL(c.pg_type),
                                            sql.SQL("" if c.nullable else " not null"),
                                        )
                                        for c in columns
                                    ),
                                )
                            )
                        else:
                            cur.execute(sql.SQL("truncate table {}").format(target))

                        csv_path = Path(tmp) / f"{table}.csv"
                        column_list = ", ".join(_duck_ident(c.name) for c in columns)
                        source = f"{_duck_ident(schema)}.{_duck_ident(table)}"
                        duck.execute(
                            f"copy (select {column_list} from {source}) to "
                            f"'{csv_path.as_posix()}' (format csv, header false)"
                        )
                        copy = sql.SQL("copy {} ({}) from stdin with (format csv)").format(
                            target, sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
                        )
                        with csv_path.open("rb") as handle:
                            cur.copy_expert(copy.as_string(cur), handle, size=1 << 20)
                        rows = cur.rowcount
                        csv_path.unlink()
                        cur.execute(sql.SQL("analyze {}").format(target))
                        copied.append(CopiedTable(table, rows, recreated))
            finally:
                pg.close()
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("warehouse", help="the DuckDB warehouse file")
    parser.add_argument("--schema", default="raw")
    parser.add_argument("--conninfo", help="libpq connection string (default: from SLF_PG_*)")
    args = parser.parse_args(argv)
    conninfo = args.conninfo or conninfo_from_env()
    for entry in copy_raw_to_postgres(args.warehouse, conninfo, schema=args.schema):
        print(f"{args.schema}.{entry.table}: {entry.rows} rows{' (created)' if entry.recreated else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
