"""Where ingestion writes the validated rows: the DuckDB warehouse file, or PostgreSQL.

Either way the files are staged and validated in an in-memory DuckDB (`RawSession.staging`): the
contract, the errors naming file/line/column and the payroll read apart are the same for both. A
target only stores what passed, and answers what loading asks of the warehouse:

- `loaded`: the sha256 and size of the content loaded for a source's period (or snapshot), from
  `audit.load_manifest` - what an unchanged re-delivery is skipped by;
- `known_values`: a loaded source's values, that another source's rows must reference;
- `record`: a manifest row on its own (a rejected or skipped file);
- `replace`: the file's rows in place of its period's (or the snapshot's), the previous load marked
  replaced and the new manifest row, in ONE transaction of the warehouse.

`DuckDBTarget` is the warehouse file attached to the staging session as `wh` (an INSERT … SELECT
from staging). `PostgresTarget` streams the rows from the staging session into PostgreSQL's
`COPY … FROM STDIN`: DuckDB writes the result as CSV into a FIFO in the load's private temporary
folder while psycopg2 reads it, so no file is ever written whole nor looped over in Python. DuckDB's
CSV writes NULL as an unquoted empty field and an empty string as `""`, which is how PostgreSQL's
CSV format tells them apart (as in pg_raw).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from slf_warehouse.contract import SourceSpec
from slf_warehouse.ingest.reading import drop_staged
from slf_warehouse.ingest.schema import MANIFEST_COLUMNS, create_statements, raw_table_columns

# psycopg2's connection and cursor: it ships no type hints (and types-psycopg2 is not installed).
PgConnection = Any
PgCursor = Any

# DuckDB writes an insert's full row groups straight to the database file, compressed, as the
# insert runs; rows short of a full group go through the WAL and are compressed again at the next
# checkpoint. A month of the ledger at Børn og Unge's scale is about 100.000 lines, under the
# default 122.880 rows a group, so every month went the slow way twice (WAL, then checkpoint):
# with groups of 32.768 all but a few hundred lines of a month are written once. Measured on the
# scale-100 ledger: 7,5 s → 6,2 s. It applies to this session only; dbt's tables keep the default.
LOAD_ROW_GROUP_SIZE = 32_768

# Serialises schema creation across concurrent loads (one per source in the DAG): PostgreSQL's
# CREATE TABLE IF NOT EXISTS is not safe against itself running at the same time.
_SCHEMA_LOCK = 0x51F_1A6


@dataclass(frozen=True)
class StoredRows:
    """The rows a file stores: a relation in the staging session and the select list over it
    (the stored columns, in raw_columns' order), and what to discard after."""

    relation: str
    selects: str
    folder: Path  # the load's private temporary folder
    staged_table: str | None = None  # read here: the staging view
    parquet: Path | None = None  # read apart: the child's hand-over

    def query(
        self, period: str | None, file_name: str, load_id: str, typed: bool = False
    ) -> tuple[str, list[object]]:
        """The stored columns then the lineage columns (schema.LINEAGE_COLUMNS), with their parameters;
        `typed` casts the parameters (a COPY has no target column to take their types from)."""
        param = "?::VARCHAR" if typed else "?"
        return (
            f"SELECT {self.selects}, {param}, {param}, _line, {param} FROM {self.relation}",
            [period, file_name, load_id, *([str(self.parquet)] if self.parquet else [])],
        )

    def discard(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.staged_table:
            drop_staged(con, self.staged_table)
        if self.parquet:
            self.parquet.unlink(missing_ok=True)


class RawSession(ABC):
    """One loader's connection to the target, with its in-memory staging session. Not thread-safe:
    a thread of its own takes a `worker()`."""

    staging: duckdb.DuckDBPyConnection

    @abstractmethod
    def loaded(self, source: str, period: str | None) -> tuple[str, int | None] | None:
        """(sha256, size_bytes) of the content loaded for the source's period or snapshot."""

    @abstractmethod
    def known_values(self, source: str, column: str) -> list[str]:
        """The distinct non-null values of a loaded source's column."""

    @abstractmethod
    def record(self, manifest_row: list[object]) -> None:
        """Insert one manifest row (MANIFEST_COLUMNS' order) on its own."""

    @abstractmethod
    def replace(
        self,
        spec: SourceSpec,
        period: str | None,
        file_name: str,
        rows: StoredRows,
        load_id: str,
        manifest_row: list[object],
    ) -> None:
        """Replace the file's period (or the whole snapshot) with `rows`, mark the previous load
        replaced and insert `manifest_row`, in one transaction."""

    @abstractmethod
    def worker(self) -> RawSession:
        """A session for another thread: its own staging objects and its own transaction."""

    @abstractmethod
    def close(self) -> None: ...


class RawTarget(ABC):
    @abstractmethod
    def open(self) -> RawSession:
        """A session, the raw and audit tables created if missing."""


def _previous(spec: SourceSpec, placeholder: str) -> str:
    """The manifest rows of what a new load of `spec` supersedes: its period's, or the snapshot's."""
    if spec.replaces == "period":
        return f"source = {placeholder} AND period = {placeholder} AND status = 'loaded'"
    return f"source = {placeholder} AND status = 'loaded'"


def _previous_params(spec: SourceSpec, period: str | None) -> list[object]:
    return [spec.name, period] if spec.replaces == "period" else [spec.name]


# --- DuckDB: the warehouse file ------------------------------------------------------------------


class DuckDBTarget(RawTarget):
    def __init__(self, warehouse: Path) -> None:
        self.warehouse = warehouse

    def open(self) -> DuckDBSession:
        """An in-memory session with the warehouse attached as `wh`: staging stays in memory."""
        self.warehouse.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH ? AS wh (ROW_GROUP_SIZE {LOAD_ROW_GROUP_SIZE})", [str(self.warehouse)])
            for statement in create_statements("duckdb", "wh."):
                con.execute(statement)
        except BaseException:
            con.close()
            raise
        return DuckDBSession(con)

    def __repr__(self) -> str:
        return f"DuckDBTarget({str(self.warehouse)!r})"


class DuckDBSession(RawSession):
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.staging = con

    def loaded(self, source: str, period: str | None) -> tuple[str, int | None] | None:
        row = self.staging.execute(
            "SELECT sha256, size_bytes FROM wh.audit.load_manifest WHERE source = ? AND "
            "period IS NOT DISTINCT FROM ? AND status = 'loaded'",
            [source, period],
        ).fetchall()
        return (row[0][0], row[0][1]) if row else None

    def known_values(self, source: str, column: str) -> list[str]:
        return [
            r[0]
            for r in self.staging.execute(
                f'SELECT DISTINCT "{column}" FROM wh.raw.{source} WHERE "{column}" IS NOT NULL'
            ).fetchall()
        ]

    def record(self, manifest_row: list[object]) -> None:
        self.staging.execute(
            f"INSERT INTO wh.audit.load_manifest VALUES ({', '.join('?' * len(MANIFEST_COLUMNS))})",
            manifest_row,
        )

    def replace(
        self,
        spec: SourceSpec,
        period: str | None,
        file_name: str,
        rows: StoredRows,
        load_id: str,
        manifest_row: list[object],
    ) -> None:
        con = self.staging
        names = ", ".join(f'"{c.name}"' for c in raw_table_columns(spec))
        select, params = rows.query(period, file_name, load_id)
        con.execute("BEGIN TRANSACTION")
        try:
            if spec.replaces == "period":
                con.execute(f"DELETE FROM wh.raw.{spec.name} WHERE _period = ?", [period])
            else:
                con.execute(f"DELETE FROM wh.raw.{spec.name}")
            con.execute(f"INSERT INTO wh.raw.{spec.name} ({names}) {select}", params)
            con.execute(
                f"UPDATE wh.audit.load_manifest SET status = 'replaced', replaced_by = ? "
                f"WHERE {_previous(spec, '?')}",
                [load_id, *_previous_params(spec, period)],
            )
            self.record(manifest_row)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def worker(self) -> DuckDBSession:
        # A cursor is a connection of its own to the same databases: its staging tables and its
        # transaction are its own; DuckDB lets concurrent transactions append to one table.
        return DuckDBSession(self.staging.cursor())

    def close(self) -> None:
        self.staging.close()


# --- PostgreSQL ----------------------------------------------------------------------------------


class PostgresTarget(RawTarget):
    """raw.* and audit.load_manifest in the PostgreSQL database at `conninfo` (a libpq string;
    pg_raw.conninfo_from_env reads the SLF_PG_* variables dbt's `postgres` target reads)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def connect(self) -> PgConnection:  # psycopg2 is imported on use
        import psycopg2

        pg = psycopg2.connect(self.conninfo)
        pg.set_client_encoding("UTF8")
        return pg

    def open(self) -> PostgresSession:
        pg = self.connect()
        try:
            with pg, pg.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
                for statement in create_statements("postgres"):
                    cur.execute(statement)
        except BaseException:
            pg.close()
            raise
        return PostgresSession(self, duckdb.connect(), pg)

    def __repr__(self) -> str:  # never the conninfo: it may hold the password
        return "PostgresTarget(...)"


class PostgresSession(RawSession):
    def __init__(self, target: PostgresTarget, staging: duckdb.DuckDBPyConnection, pg: PgConnection) -> None:
        self.target, self.staging, self.pg = target, staging, pg

    def _fetch(self, query: str, params: list[object]) -> list[tuple[Any, ...]]:
        with self.pg, self.pg.cursor() as cur:  # a transaction of its own, ended at once
            cur.execute(query, params)
            rows: list[tuple[Any, ...]] = cur.fetchall()
            return rows

    def loaded(self, source: str, period: str | None) -> tuple[str, int | None] | None:
        row = self._fetch(
            "SELECT sha256, size_bytes FROM audit.load_manifest WHERE source = %s AND "
            "period IS NOT DISTINCT FROM %s AND status = 'loaded'",
            [source, period],
        )
        return (row[0][0], row[0][1]) if row else None

    def known_values(self, source: str, column: str) -> list[str]:
        return [
            r[0]
            for r in self._fetch(
                f'SELECT DISTINCT "{column}" FROM raw.{source} WHERE "{column}" IS NOT NULL', []
            )
        ]

    def _insert_manifest(self, cur: PgCursor, manifest_row: list[object]) -> None:
        cur.execute(
            f"INSERT INTO audit.load_manifest VALUES ({', '.join(['%s'] * len(MANIFEST_COLUMNS))})",
            manifest_row,
        )

    def record(self, manifest_row: list[object]) -> None:
        with self.pg, self.pg.cursor() as cur:
            self._insert_manifest(cur, manifest_row)

    def replace(
        self,
        spec: SourceSpec,
        period: str | None,
        file_name: str,
        rows: StoredRows,
        load_id: str,
        manifest_row: list[object],
    ) -> None:
        columns = raw_table_columns(spec)
        select, params = rows.query(period, file_name, load_id, typed=True)
        copy = (
            f"COPY raw.{spec.name} ({', '.join(f'{_pg_ident(c.name)}' for c in columns)}) "
            f"FROM STDIN WITH (FORMAT csv)"
        )
        try:
            with self.pg.cursor() as cur:
                if spec.replaces == "period":
                    cur.execute(f"DELETE FROM raw.{spec.name} WHERE _period = %s", [period])
                else:
                    cur.execute(f"DELETE FROM raw.{spec.name}")
                _stream_copy(self.staging, select, params, cur, copy, rows.folder)
                cur.execute(
                    f"UPDATE audit.load_manifest SET status = 'replaced', replaced_by = %s "
                    f"WHERE {_previous(spec, '%s')}",
                    [load_id, *_previous_params(spec, period)],
                )
                self._insert_manifest(cur, manifest_row)
            self.pg.commit()
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        import psycopg2

        # a connection that is gone took its transaction with it: the server rolled it back
        with contextlib.suppress(psycopg2.InterfaceError, psycopg2.OperationalError):
            self.pg.rollback()

    def worker(self) -> PostgresSession:
        return PostgresSession(self.target, self.staging.cursor(), self.target.connect())

    def close(self) -> None:
        try:
            self.pg.close()
        finally:
            self.staging.close()


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stream_copy(
    staging: duckdb.DuckDBPyConnection,
    select: str,
    params: list[object],
    cur: PgCursor,
    copy: str,
    folder: Path,
) -> int:
    """Run `copy` (… FROM STDIN) on `cur` with the rows of `select`, which DuckDB writes as CSV
    into a FIFO that psycopg2 reads: returns the rows PostgreSQL took.

    This thread holds a write end of the FIFO until DuckDB's COPY has ended, so the reader sees the
    end of the data only then - also when DuckDB fails before it opened the FIFO, which would
    otherwise leave the reader waiting for a writer forever. When PostgreSQL fails, the read end is
    closed and DuckDB's next write fails (EPIPE), or - when DuckDB has not opened the FIFO yet -
    what it writes is read and dropped until it ends: neither side is left waiting for the other.
    """
    with tempfile.TemporaryDirectory(prefix="slf-copy-", dir=folder) as tmp:
        fifo = Path(tmp) / f"{uuid.uuid4().hex}.csv"
        os.mkfifo(fifo, 0o600)
        read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        hold_fd = os.open(fifo, os.O_WRONLY)
        os.set_blocking(read_fd, True)
        outcome: dict[str, object] = {}

        def write() -> None:
            try:
                target = fifo.as_posix().replace("'", "''")
                outcome["rows"] = staging.execute(
                    f"COPY ({select}) TO '{target}' (FORMAT csv, HEADER false)", params
                ).fetchall()[0][0]
            except BaseException as e:  # noqa: BLE001 - handed to the reading thread
                outcome["error"] = e
            finally:
                os.close(hold_fd)

        writer = threading.Thread(target=write, name="duckdb-to-postgres", daemon=True)
        writer.start()
        try:
            with os.fdopen(read_fd, "rb") as stream:
                cur.copy_expert(copy, stream, size=1 << 20)
        except BaseException:
            _drain(fifo, writer)
            raise
        writer.join()
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]  # only the BaseException above is stored there
        if outcome.get("rows") != cur.rowcount:
            raise RuntimeError(f"DuckDB wrote {outcome.get('rows')} rows, PostgreSQL took {cur.rowcount}")
        taken: int = cur.rowcount
        return taken


def _drain(fifo: Path, writer: threading.Thread) -> None:
    """Let a writer still opening or writing the FIFO finish into nothing (PostgreSQL has failed)."""
    drain = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while writer.is_alive():
            try:
                if not os.read(drain, 1 << 20):
                    writer.join(0.01)
            except BlockingIOError:
                writer.join(0.01)
    finally:
        os.close(drain)
