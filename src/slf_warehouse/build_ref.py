"""Which build a refresh works on, as it goes from one Airflow task to the next (XCom).

One text form on both engines: ``duckdb:<absolute path of the build file>`` or
``postgres:<build version>`` (warehouse_pg.PgBuild.version). Never a connection string or a
password: a task finds the server from its own SLF_PG_* settings, so an XCom, a rendered template
or a log line naming the build gives nothing away.

Light on purpose: the DAG's template macros import this when Cosmos renders a task's environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENGINES = ("duckdb", "postgres")
# Read by dbt_project/macros/generate_schema_name.sql: the build's schemas are <prefix>_<layer>.
BUILD_PREFIX_ENV = "SLF_DBT_BUILD_SCHEMA_PREFIX"
# warehouse_pg's version format; checked here too, because the version becomes schema names.
_PG_VERSION = re.compile(r"[0-9]{20}_[0-9a-f]{6}")


@dataclass(frozen=True)
class BuildRef:
    engine: str
    key: str  # the build file's absolute path, or the PostgreSQL build's version

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(
                f"build reference with engine {self.engine!r}: expected one of {', '.join(ENGINES)}"
            )
        if self.engine == "duckdb" and not Path(self.key).is_absolute():
            raise ValueError(f"build reference {self.to_xcom()!r}: a DuckDB build is an absolute file path")
        if self.engine == "postgres" and not _PG_VERSION.fullmatch(self.key):
            raise ValueError(f"build reference {self.to_xcom()!r}: not a PostgreSQL build version")

    @classmethod
    def of(cls, build: Any) -> BuildRef:
        """The reference of a build as the stores make them: a Path (DuckDB) or a PgBuild."""
        if isinstance(build, (str, Path)):
            return cls("duckdb", str(Path(build).resolve()))
        version = getattr(build, "version", None)
        if isinstance(version, str):
            return cls("postgres", version)
        raise TypeError(f"not a build: {type(build).__name__}")

    def to_xcom(self) -> str:
        return f"{self.engine}:{self.key}"

    @classmethod
    def from_xcom(cls, text: object) -> BuildRef:
        engine, sep, key = str(text).partition(":")
        if not sep or not isinstance(text, str):
            raise ValueError(
                f"{text!r} is not a build reference (expected 'duckdb:<path>' or 'postgres:<version>')"
            )
        return cls(engine, key)

    @property
    def warehouse_path(self) -> str:
        """What dbt's duckdb target reads from SLF_WAREHOUSE_PATH ('' on PostgreSQL, where the
        duckdb target is not used: no file may be created by mistake)."""
        return self.key if self.engine == "duckdb" else ""

    @property
    def schema_prefix(self) -> str:
        """What the generate_schema_name macro reads from SLF_DBT_BUILD_SCHEMA_PREFIX ('' on DuckDB,
        where a build is a file of its own)."""
        return f"b_{self.key}" if self.engine == "postgres" else ""

    def dbt_env(self) -> dict[str, str]:
        return {"SLF_WAREHOUSE_PATH": self.warehouse_path, BUILD_PREFIX_ENV: self.schema_prefix}
