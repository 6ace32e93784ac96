"""SLF_PG_CONN_ID: inside an Airflow task the warehouse's connection comes from the Airflow
Connection it names (here `AIRFLOW_CONN_<ID>` as JSON, Airflow 3's environment form), not from the
SLF_PG_* variables, which are set to a server that does not exist: a real task (dag.test in its own
process) loads a source into a real PostgreSQL server, and dbt started by a task with the
pre_execute hook the dbt tasks carry connects there too. Outside a task, SLF_PG_* stay.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from leak_scan import files_under, find_leaks
from pg_server import PgServer, fresh_database, pg_server_fixture  # noqa: F401 - registers the `pg_server` fixture
from postgres_server import free_port

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1]

# A DAG file of its own, run by the project's runner (slf_warehouse.airflow_runner: DagBag, dag.test)
PROBE_DAG = """
import os, subprocess, sys
from pathlib import Path

from airflow.sdk import DAG, task

from slf_warehouse.pg_connection import export_airflow_connection

with DAG("slf_pg_connection_probe", schedule=None) as dag:

    @task
    def load() -> int:
        from slf_warehouse import pipeline
        from slf_warehouse.settings import Settings
        from slf_warehouse.warehouse_pg import PgBuild

        settings = Settings.from_env()
        return pipeline.ingest_source(settings, PgBuild("probe", "probe"), "enheder", "probe-run")["rows"]

    @task(pre_execute=export_airflow_connection)  # as the dbt tasks carry it (dbt_tasks.py)
    def dbt_connects() -> None:
        dbt = str(Path(sys.executable).with_name("dbt"))
        project = os.environ["SLF_PROJECT_DIR"] + "/dbt_project"
        args = ["debug", "--connection", "--target", "postgres", "--project-dir", project,
                "--profiles-dir", project, "--log-path", os.environ["SLF_OUTPUT_DIR"] + "/dbt-logs"]
        r = subprocess.run([dbt, *args], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-3000:]

    load() >> dbt_connects()
"""


def test_an_airflow_connection_names_the_warehouse_inside_a_task(
    pg_server: PgServer,  # noqa: F811 - the fixture above
    airflow_db: None,
    tmp_path: Path,
) -> None:
    from slf_warehouse.pg_raw import conninfo_from_env, server_name
    from slf_warehouse.sample_data import write_sample_data

    pg = fresh_database(pg_server)
    landing, out = tmp_path / "landing", tmp_path / "out"
    write_sample_data(landing)
    connection = {
        "conn_type": "postgres",
        "host": pg.host,
        "port": pg.port,
        "login": pg.user,
        "password": pg.password,
        "schema": pg.database,
    }
    nowhere = {
        "SLF_PG_HOST": "127.0.0.1",
        "SLF_PG_PORT": str(free_port()),  # nothing listens there
        "SLF_PG_USER": "nobody",
        "SLF_PG_PASSWORD": "not-the-password",
        "SLF_PG_DATABASE": "nowhere",
    }
    env = {
        **os.environ,
        **nowhere,
        "SLF_WAREHOUSE_ENGINE": "postgres",
        "SLF_PG_CONN_ID": "slf_warehouse_probe",
        "AIRFLOW_CONN_SLF_WAREHOUSE_PROBE": json.dumps(connection),
    }
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "probe_dag.py").write_text(PROBE_DAG, encoding="utf-8")
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "SLF_LANDING_DIR": str(landing),
            "SLF_OUTPUT_DIR": str(out),
            "SLF_PROJECT_DIR": str(PROJECT),
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "slf_warehouse.airflow_runner", "slf_pg_connection_probe"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-6000:]
    assert '"state": "success"' in result.stdout, said[-6000:]

    # the rows are in the server the connection names
    con = psycopg2.connect(pg.conninfo())
    try:
        with con, con.cursor() as cur:
            cur.execute("select count(*) from raw.enheder")
            assert cur.fetchone()[0] > 0
    finally:
        con.close()
    # outside a task the SLF_PG_* variables stay (the CLI's view)
    assert server_name(conninfo_from_env(env)) == f"127.0.0.1:{nowhere['SLF_PG_PORT']}/nowhere"
    # the password reached neither the run's output nor anything it wrote
    assert pg.password not in said
    assert find_leaks(files_under(out) + files_under(tmp_path / "landing"), [pg.password]) == {}
