"""`make bench ENGINE=postgres`: what benchmark.py reads and measures differently on PostgreSQL.

The refresh itself is the same `slf run` (SLF_WAREHOUSE_ENGINE=postgres); here are the side
measurements' PostgreSQL counterparts, each a function a stage's child process calls:

- the ingest's limit: the server's own `COPY ... FROM STDIN` of the same ledger files into a plain
  table of text columns, reading Windows-1252 itself (`ENCODING 'WIN1252'`; DuckDB needs a UTF-8
  copy), in a scratch database so the refresh's raw.* is not touched;
- the biggest mart's compiled SQL as a plain `CREATE TEMP TABLE AS` on the server;
- the next month: loaded into the server's raw.* (where the next refresh loads it) and built
  incrementally into a new build's schemas, its totals checked against raw.*.

Every identifier is composed with psycopg2.sql; the connection string (it holds the password) is
never printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg2 import sql

# the ledger's limit table: the header's columns, all text (the ingest types them; COPY only parses)
LIMIT_TABLE = "bench_copy_limit"


@contextmanager
def _cursor(conninfo: str) -> Iterator[Any]:
    """A cursor in one transaction on its own connection, committed on success and closed after."""
    import psycopg2

    con = psycopg2.connect(conninfo)
    try:
        with con, con.cursor() as cur:
            yield cur
    finally:
        con.close()


def loaded_rows(conninfo: str, run_id: str) -> dict[str, int]:
    """Rows loaded per source by the run, from the server's audit.load_manifest."""
    with _cursor(conninfo) as cur:
        cur.execute(
            "select source, sum(rows)::bigint from audit.load_manifest "
            "where run_id = %s and status = 'loaded' group by source",
            (run_id,),
        )
        return {source: int(rows) for source, rows in cur.fetchall()}


def biggest_mart(conninfo: str) -> str:
    """The biggest table (by size on disk) of the published version's marts."""
    from slf_warehouse.warehouse_pg import PgWarehouseStore

    schema = PgWarehouseStore(conninfo).published().schema("marts")
    with _cursor(conninfo) as cur:
        cur.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind in ('r', 'p') "
            "order by pg_total_relation_size(c.oid) desc limit 1",
            (schema,),
        )
        return str(cur.fetchone()[0])


def copy_limit(conninfo: str, files: list[str]) -> dict[str, int]:
    """The server's COPY of the ledger files (Windows-1252, `;`, a header line) into one text table,
    in one transaction, as the ingest's COPY also runs in the server."""
    with open(files[0], encoding="cp1252") as f:
        header = f.readline().rstrip("\r\n").split(";")
    with _cursor(conninfo) as cur:
        table = sql.Identifier(LIMIT_TABLE)
        cur.execute(sql.SQL("drop table if exists {}").format(table))
        cur.execute(
            sql.SQL("create table {} ({})").format(
                table, sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in header)
            )
        )
        copy = sql.SQL(
            "copy {} from stdin with (format csv, delimiter ';', header true, encoding 'WIN1252')"
        ).format(table)
        for name in files:
            with open(name, "rb") as f:
                cur.copy_expert(copy.as_string(cur), f)
        cur.execute(sql.SQL("select count(*) from {}").format(table))
        return {"rows": int(cur.fetchone()[0])}


def ctas_limit(conninfo: str, compiled_sql: str) -> dict[str, float | int]:
    """The mart's compiled SQL as a plain CREATE TEMP TABLE AS on the server; its rows and seconds."""
    import time

    with _cursor(conninfo) as cur:
        started = time.perf_counter()
        cur.execute(sql.SQL("create temp table bench_ctas as ") + sql.SQL(compiled_sql))
        seconds = time.perf_counter() - started
        cur.execute("select count(*) from bench_ctas")
        return {"rows": int(cur.fetchone()[0]), "query_seconds": seconds}


def incremental_totals(conninfo: str, intermediate_schema: str) -> dict[str, bool]:
    """After an incremental build: does every incremental model still add up to all of raw?"""
    checks = {
        "ledger_totals_equal_raw": (
            "select count(*), sum(beloeb) from raw.posteringer",
            "select count(*), sum(amount_dkk) from {}.int_postings_classified",
        ),
        "payroll_totals_equal_raw": (
            "select count(*), sum(beloeb) from raw.loen",
            "select sum(pay_lines), sum(cost_dkk) from {}.int_payroll_person_month",
        ),
    }
    with _cursor(conninfo) as cur:
        result = {}
        for name, (raw, built) in checks.items():
            cur.execute(raw)
            expected = cur.fetchone()
            cur.execute(sql.SQL(built).format(sql.Identifier(intermediate_schema)))
            result[name] = tuple(cur.fetchone()) == tuple(expected)
        return result


def incremental_month(a: dict[str, Any]) -> dict[str, object]:
    """The next delivery's monthly files into the server's raw.*, then dbt's incremental build into
    the build `a['version']` (made, and later dropped, by the bench)."""
    import time

    from slf_warehouse import pipeline
    from slf_warehouse.ingest import PostgresTarget, ingest_source
    from slf_warehouse.settings import Settings
    from slf_warehouse.warehouse_pg import PgBuild

    settings = Settings.from_env(a["landing"], a["out"])
    conninfo = settings.pg_conninfo
    started = time.perf_counter()
    rows = sum(
        f.rows
        for source in a["sources"]
        for f in ingest_source(
            source, Path(a["landing"]), PostgresTarget(conninfo), Path(a["quarantine"])
        ).files
        if f.status == "loaded"
    )
    ingest_seconds = time.perf_counter() - started
    build = PgBuild(a["version"], a["run_id"])
    started = time.perf_counter()
    pipeline.dbt_build(settings, build, Path(a["target"]))
    dbt_seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "ingest_seconds": round(ingest_seconds, 3),
        "dbt_seconds": round(dbt_seconds, 3),
        **incremental_totals(conninfo, build.schema("intermediate")),
    }


def scratch_database(conninfo: str, name: str) -> None:
    """A new empty database `name` on the server (dropped first if a killed bench left it). Needs
    the CREATEDB right: psycopg2.Error when the bench's login lacks it."""
    drop_database(conninfo, name)
    _autocommit(conninfo, sql.SQL("create database {}").format(sql.Identifier(name)))


def drop_database(conninfo: str, name: str) -> None:
    _autocommit(conninfo, sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _autocommit(conninfo: str, statement: sql.Composable) -> None:
    import psycopg2

    con = psycopg2.connect(conninfo)
    try:
        con.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with con.cursor() as cur:
            cur.execute(statement)
    finally:
        con.close()


def lock_holders(conninfo: str, schema_prefix: str) -> list[str]:
    """Which other sessions hold locks on relations in schemas starting with `schema_prefix`: their
    backend type and the start of their query (the bench's own build, never personal data)."""
    with _cursor(conninfo) as cur:
        cur.execute(
            "select distinct a.backend_type || ': ' || left(a.query, 60) from pg_locks l "
            "join pg_class c on c.oid = l.relation join pg_namespace n on n.oid = c.relnamespace "
            "join pg_stat_activity a on a.pid = l.pid "
            "where n.nspname like %s and l.granted and a.pid <> pg_backend_pid()",
            (schema_prefix.replace("_", "\\_") + "%",),
        )
        return [row[0] for row in cur.fetchall()]


def on_database(database: str | None) -> str:
    """The connection string of SLF_PG_* (as the refresh's), on `database` when given."""
    from psycopg2.extensions import make_dsn, parse_dsn

    from slf_warehouse.pg_raw import conninfo_from_env

    conninfo = conninfo_from_env()
    return conninfo if database is None else str(make_dsn(**{**parse_dsn(conninfo), "dbname": database}))
