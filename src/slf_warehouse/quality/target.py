"""Where the build is that the quality step checks: a DuckDB build file or a PostgreSQL build.

    as_target(build)                       a Path (or str) -> DuckDBTarget; a QualityTarget as it is
    DuckDBTarget(path)                     the build file; connect() is a plain duckdb connection
    PgTarget(conninfo, build)              a warehouse_pg.PgBuild (or PgPublished) on a server;
                                           connect() is a PgConnection

Every module of the quality step talks to ``target.connect()`` with ``con.execute(query,
params).fetchall()`` and queries written once, in SQL both engines run, naming the layers as the
DuckDB file does (``raw.loen``, ``marts.fct_payroll``, ``audit.runs``) with ``?`` for bound values.
On PostgreSQL, PgConnection.sql() is the ONE place where those names become the build's schemas
(``marts`` -> ``b_<version>_marts``; see LAYER_SCHEMAS) and ``?`` becomes psycopg2's ``%s``: the
schema names are composed with ``psycopg2.sql.Identifier``; string literals, quoted identifiers and
comments are left as they are; values are only ever bound parameters.

Which schemas a PostgreSQL build owns: dbt's layers (staging, intermediate, marts, snapshots) are
the build's own (``PgBuild.schema(layer)``), and so is ``b_<version>_quality``, where the quality
step puts one view per suite for Great Expectations (checkpoint.py). ``raw`` and ``audit`` are
shared by every build on the server: ingestion loads ``raw.*`` and ``audit.load_manifest`` once for
all builds, and the run history (``audit.runs``, ``run_files``, ``dbt_results``,
``expectation_results``, ``reconciliations``) keeps every run, published, refused or failed, keyed
by run id, with the build's schema prefix in ``audit.runs.build_file`` (see history.py). The reader
role (warehouse_pg.ensure_reader_role) has no right on either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import duckdb

# The schema names the suites' and the step's queries use, and what they are on PostgreSQL.
BUILD_LAYERS = ("staging", "intermediate", "marts", "snapshots")  # the build's own schemas
SHARED_SCHEMAS = ("raw", "audit")  # one for every build on the server

# String literals, quoted identifiers and comments: never rewritten.
_VERBATIM = re.compile(r"('(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/)", re.S)
_LAYER_QUALIFIER = re.compile(
    r"(?<![\w.\"$])(" + "|".join(BUILD_LAYERS + SHARED_SCHEMAS) + r")(?=\s*\.)", re.I
)


@runtime_checkable
class QualityTarget(Protocol):
    @property
    def engine(self) -> str:  # "duckdb" or "postgres" (read-only: the targets are frozen dataclasses)
        ...

    @property
    def name(self) -> str:
        """What audit.runs.build_file records: the build file's name, or the build's schema prefix."""

    def describe(self) -> str:
        """Where the build is, for logs and quality_results.json (never a password)."""

    def exists(self) -> bool: ...

    def connect(self, read_only: bool = False) -> Any:
        """A connection with execute(query, params).fetchall(), executemany, close, and `with`."""


@dataclass(frozen=True)
class DuckDBTarget:
    path: Path
    engine: str = "duckdb"

    @property
    def name(self) -> str:
        return Path(self.path).name

    def describe(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return Path(self.path).is_file()

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.path), read_only=read_only)


@dataclass(frozen=True)
class PgTarget:
    """A build on PostgreSQL. `build` is a warehouse_pg.PgBuild or PgPublished (its .prefix and
    .schema(layer) are used)."""

    conninfo: str
    build: Any
    engine: str = "postgres"

    @property
    def name(self) -> str:
        return self.build.prefix

    def schema(self, layer: str) -> str:
        """The real schema of a layer name used in the queries."""
        layer = layer.lower()
        if layer in SHARED_SCHEMAS:
            return layer
        if layer in BUILD_LAYERS:
            return self.build.schema(layer)
        raise KeyError(f"no such layer: {layer!r}")

    def quality_schema(self) -> str:
        """The build's own schema for the quality step's views of the suites' batches."""
        return self.build.schema("quality")

    def describe(self) -> str:
        from slf_warehouse.pg_raw import server_name

        return f"postgresql://{server_name(self.conninfo)} (build {self.build.prefix}_*)"

    def exists(self) -> bool:
        with self.connect(read_only=True) as con:
            return bool(
                con.execute(
                    "SELECT count(*) FROM pg_namespace WHERE nspname = ?", [self.schema("marts")]
                ).fetchall()[0][0]
            )

    def connect(self, read_only: bool = False) -> PgConnection:
        return PgConnection(self, read_only=read_only)

    def sqlalchemy_url(self, search_path: str | None = None) -> str:
        """The connection as a SQLAlchemy URL (for Great Expectations' SQL data source), its
        sessions' search_path set to `search_path` when given."""
        from psycopg2.extensions import parse_dsn
        from sqlalchemy.engine import URL

        dsn = parse_dsn(self.conninfo)
        query = {k: v for k, v in dsn.items() if k not in ("host", "port", "user", "password", "dbname")}
        options = "-c DateStyle=ISO,YMD"  # what CAST(date AS VARCHAR) gives, as on DuckDB
        if search_path is not None:
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", search_path):  # PgBuild schemas always are
                raise ValueError(f"not a plain schema name for search_path: {search_path!r}")
            options += f" -c search_path={search_path}"
        query["options"] = options
        return URL.create(
            "postgresql+psycopg2",
            username=dsn.get("user"),
            password=dsn.get("password"),
            host=dsn.get("host"),
            port=int(dsn["port"]) if dsn.get("port") else None,
            database=dsn.get("dbname"),
            query=query,
        ).render_as_string(hide_password=False)


def as_target(where: Any) -> QualityTarget:
    """The caller's "where the build is": a build file's path, or a QualityTarget."""
    if isinstance(where, (str, Path)):
        return DuckDBTarget(Path(where))
    if isinstance(where, QualityTarget):
        return where
    raise TypeError(
        f"not a build the quality step can check: {where!r} (give a DuckDB file's path or a PgTarget)"
    )


def db_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a query on either engine raises."""
    import psycopg2

    return (duckdb.Error, psycopg2.Error)


class PgConnection:
    """A psycopg2 connection that speaks like the duckdb one the quality modules use: execute()
    returns itself (fetchall/fetchone), `?` marks bound values, layers are named as in DuckDB.
    Autocommit: each statement is its own transaction unless the caller issues BEGIN ... COMMIT."""

    def __init__(self, target: PgTarget, read_only: bool = False):
        import psycopg2

        self.target = target
        self._con = psycopg2.connect(target.conninfo, options="-c DateStyle=ISO,YMD")
        self._con.autocommit = True
        self._cur = self._con.cursor()
        if read_only:
            self._cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")

    def sql(self, query: str, with_params: bool = False) -> str:
        """The query as PostgreSQL runs it on this build (see the module docstring)."""
        from psycopg2 import sql

        def qualifier(match: re.Match[str]) -> str:
            return sql.Identifier(self.target.schema(match.group(1))).as_string(self._con)

        parts = []
        for i, part in enumerate(_VERBATIM.split(query)):
            if i % 2 == 0:  # plain SQL between literals
                part = _LAYER_QUALIFIER.sub(qualifier, part)
                if with_params:
                    part = part.replace("%", "%%").replace("?", "%s")
            elif with_params:
                part = part.replace("%", "%%")
            parts.append(part)
        return "".join(parts)

    def execute(self, query: str, params: Any = None) -> PgConnection:
        params = list(params) if params is not None else []
        self._cur.execute(self.sql(query, with_params=bool(params)), params or None)
        return self

    def executemany(self, query: str, seq: Any) -> PgConnection:
        self._cur.executemany(self.sql(query, with_params=True), [list(p) for p in seq])
        return self

    def fetchall(self) -> list[tuple]:
        return self._cur.fetchall() if self._cur.description else []

    def fetchone(self) -> tuple | None:
        return self._cur.fetchone() if self._cur.description else None

    @property
    def description(self) -> Any:
        return self._cur.description

    @property
    def raw(self) -> Any:
        """The psycopg2 connection (for psycopg2.sql's quoting)."""
        return self._con

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def is_postgres(con: Any) -> bool:
    return isinstance(con, PgConnection)


def insertion_order(con: Any) -> str:
    """The column that orders audit.expectation_results as its rows were written."""
    return "seq" if is_postgres(con) else "rowid"


def table_exists(con: Any, schema: str, table: str) -> bool:
    """Whether `schema`.`table` exists (a layer name, as the queries use it: raw, marts, audit ...)."""
    if is_postgres(con):
        schema = con.target.schema(schema)
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )
