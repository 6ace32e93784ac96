"""A project-local Airflow: its home, SQLite metadata and DAGs folder, set before airflow is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from slf_warehouse.settings import project_dir


def airflow_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(base if base is not None else os.environ)
    project = project_dir()
    home = Path(env.get("AIRFLOW_HOME") or project / ".airflow")
    home.mkdir(parents=True, exist_ok=True)
    env.setdefault("AIRFLOW_HOME", str(home))
    env.setdefault("SLF_PROJECT_DIR", str(project))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(project / "dags"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'airflow.db'}")
    env.setdefault("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    env.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    env.setdefault("AIRFLOW__COSMOS__CACHE_DIR", str(home / "cosmos_cache"))
    env.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
    # Task logs may quote what a task saw: owner-only, like every output (file_modes.py).
    env.setdefault("AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS", "0o600")
    env.setdefault("AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS", "0o700")
    # `airflow standalone` and Cosmos start `airflow`/`dbt` by name: this venv's must come first.
    bin_dir = str(Path(sys.executable).parent)
    if not env.get("PATH", "").startswith(bin_dir):
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("NO_PROXY", "*")  # macOS/proxy quirk in forked task processes; harmless elsewhere
    return env


WRITER_POOL = ("slf_warehouse_writer", "1", "tasks that write the DuckDB build file (one writer at a time)")


def setup_metadata_db(env: dict[str, str]) -> None:
    """`airflow db migrate` and the writer pool; idempotent (the shared deployment runs it at each start)."""
    airflow = Path(sys.executable).with_name("airflow")
    for command in (["db", "migrate"], ["pools", "set", *WRITER_POOL]):
        result = subprocess.run([str(airflow), *command], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )


def migrate_metadata_db(env: dict[str, str]) -> None:
    """The local metadata database set up once per AIRFLOW_HOME (dag.test needs the tables)."""
    marker = Path(env["AIRFLOW_HOME"]) / ".migrated-3.3.2-pool"
    if marker.exists():
        return
    setup_metadata_db(env)
    marker.touch()
