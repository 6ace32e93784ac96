"""The `pg_server` fixture: a throw-away PostgreSQL server (tests/postgres_server.py) for one test
module, the superuser `slf` owning an empty database `slf_warehouse`. Import both names:

    from pg_server import PgServer, pg_server  # noqa: F401 - pytest finds the fixture by name
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from postgres_server import PgServer, throwaway_postgres

__all__ = ["PgServer", "pg_server", "fresh_database", "dbt_command", "dbt_build", "run_dbt", "PG_USER", "PG_DATABASE"]

DBT_PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"

PG_USER, PG_DATABASE = "slf", "slf_warehouse"


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    with throwaway_postgres(tmp_path_factory, PG_USER, PG_DATABASE) as server:
        yield server


def fresh_database(server: PgServer) -> PgServer:
    """A new empty database of its own on `server` (same superuser), for one test."""
    import uuid

    database = f"t_{uuid.uuid4().hex[:12]}"
    server.execute(f"CREATE DATABASE {database}")
    return PgServer(server.host, server.port, server.user, server.password, database)


# --- dbt on the server: the one way the tests invoke it ---------------------------------------------

def dbt_command(work: Path, name: str, target: str, env: dict[str, str], *args: str) -> tuple[list[str], dict[str, str]]:
    """`dbt ARGS --target TARGET` on the project, with target and log folders `work/target-NAME`
    and `work/logs-NAME`; the environment is os.environ with `env` on top."""
    dbt_exe = Path(sys.executable).with_name("dbt")
    command = [str(dbt_exe) if dbt_exe.exists() else "dbt", *args, "--project-dir", str(DBT_PROJECT),
               "--profiles-dir", str(DBT_PROJECT), "--target", target,
               "--target-path", str(work / f"target-{name}"), "--log-path", str(work / f"logs-{name}")]
    return command, {**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}


def run_dbt(target: str, work: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run dbt (see dbt_command, NAME = TARGET) to success; its run_results.json."""
    command, full_env = dbt_command(work, target, target, env, *args)
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=full_env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return json.loads((work / f"target-{target}" / "run_results.json").read_text())


def dbt_build(work: Path, name: str, server: PgServer, build: Any) -> tuple[list[str], dict[str, str]]:
    """The command and environment of `dbt build --target postgres` into a warehouse_pg.PgBuild's schemas."""
    return dbt_command(work, name, "postgres", {**server.env(), **build.dbt_env(),
                                                 "SLF_WAREHOUSE_PATH": str(work / "unused.duckdb")}, "build")
