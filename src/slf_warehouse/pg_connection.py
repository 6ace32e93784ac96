"""The PostgreSQL warehouse from an Airflow Connection, where `SLF_PG_CONN_ID` names one.

Inside an Airflow task, a set `SLF_PG_CONN_ID` names the connection (type postgres; in the metadata
database, a secrets backend, or `AIRFLOW_CONN_<ID>` as a URI or JSON, Airflow 3's ways) whose host,
port, login, password and schema (PostgreSQL's database) replace the `SLF_PG_*` variables: for
`pg_raw.conninfo_from_env` (every step that opens the server), and, exported into the task's
environment by `export_airflow_connection` before dbt starts, for dbt's `postgres` target
(profiles.yml reads `SLF_PG_*`). A field the connection leaves empty keeps its `SLF_PG_*` value.
Outside a task (the `slf` CLI, tests, the bench), `SLF_PG_*` stay what they are.

The connection is read with the Task SDK's `Connection.get`, which goes through the task's
supervisor (the worker asks the API server) and registers the password with Airflow's log masking.
The password is never logged here, nor put into a message.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

CONN_ID_ENV = "SLF_PG_CONN_ID"


class WrongConnection(ValueError):
    """SLF_PG_CONN_ID names a connection that is not a PostgreSQL one."""


def in_airflow_task() -> bool:
    """True while an Airflow task runs in this process (the Task SDK has a current context)."""
    if "airflow.sdk" not in sys.modules:  # a task has imported it; importing it here costs ≈ 3 s
        return False
    from airflow.sdk import get_current_context

    try:
        get_current_context()
    except Exception:  # the Task SDK raises its own AirflowException outside a task
        return False
    return True


def airflow_connection_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The `SLF_PG_*` values from the Airflow connection `SLF_PG_CONN_ID` names, inside a task;
    {} outside one or when it is not set."""
    env = os.environ if environ is None else environ
    conn_id = env.get(CONN_ID_ENV, "").strip()
    if not conn_id or not in_airflow_task():
        return {}
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    if conn.conn_type not in ("postgres", "postgresql"):
        raise WrongConnection(
            f"{CONN_ID_ENV}={conn_id}: the Airflow connection is of type {conn.conn_type!r}; the "
            f"warehouse needs a postgres connection (host, port, login, password, schema = the database)"
        )
    values = {
        "SLF_PG_HOST": conn.host,
        "SLF_PG_PORT": str(conn.port) if conn.port else None,
        "SLF_PG_USER": conn.login,
        "SLF_PG_PASSWORD": conn.password,
        "SLF_PG_DATABASE": conn.schema,
    }
    return {name: value for name, value in values.items() if value}


def export_airflow_connection(*_: Any, **__: Any) -> None:
    """A task's pre_execute hook: the connection's `SLF_PG_*` into this process's environment, so a
    dbt the task starts (Cosmos passes its environment on) connects where the connection says."""
    os.environ.update(airflow_connection_env())
