"""The shared deployment's Celery profile, run as real processes on loopback, as docker-compose.yml says.

PostgreSQL (Debian's 15: the Airflow metadata database and the warehouse database), Redis, and
the compose file's airflow-init, api-server, scheduler, dag-processor, triggerer and two Celery
workers. Every setting and command comes from docker-compose.yml with a generated .env: service
host names become 127.0.0.1 and this test's ports, container paths become folders here
(tests/compose_env.py). Each worker gets its own host name (a UTS namespace, as a container has),
so the task instances show where they ran; both share the output folder and the writer pool, as
on one host.

Then, through the REST API, as each role: the auditor lists runs and reads logs but its trigger is
refused (403), the answer writer cannot trigger slf_refresh, the finance user's slf_refresh on the
sample data succeeds on both workers and the letter states the sample's figures.

The warehouse is PostgreSQL (the compose file's `SLF_WAREHOUSE_ENGINE=postgres`, the second
database `SLF_PG_DATABASE`): the published marts' totals equal those of a DuckDB refresh of the same
data, and after a second delivery (one corrected month) the next refresh loads only that file and
the totals follow the DuckDB refresh of the corrected data.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

import compose_env
from airflow_rest import login, trigger_first_refresh
from postgres_server import free_port, throwaway_postgres
from service_processes import ProcessGroups, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]  # starts a throw-away PostgreSQL server

PROJECT = Path(__file__).resolve().parents[1]
IMAGE_AIRFLOW_HOME = "/opt/airflow"  # the image's AIRFLOW_HOME (Dockerfile: ENV AIRFLOW_HOME)
SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
WORKERS = ("slf-worker-1", "slf-worker-2")
USERS = {"ops": "Admin", "finance": "slf_finance", "writer": "slf_answer_writer", "auditor": "slf_auditor"}


def dotenv(work: Path) -> dict[str, str]:
    """The operator's .env: .env.example with every secret generated and the Celery executor."""
    from cryptography.fernet import Fernet

    values = compose_env.read_env_file(PROJECT / ".env.example")
    values.update(
        {
            "AIRFLOW_DB_PASSWORD": secrets.token_hex(16),
            "SLF_PG_PASSWORD": secrets.token_hex(16),
            "SLF_READER_PASSWORD": secrets.token_hex(16),
            "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW_API_SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
            "SLF_PSEUDONYM_KEY": secrets.token_hex(32),
            "AIRFLOW_EXECUTOR": "CeleryExecutor",
            "AIRFLOW_WORKER_CONCURRENCY": "4",
            "SLF_USERS_PATH": str(work / "users"),
            "SLF_LANDING_PATH": str(work / "landing"),
            "SLF_OUTPUT_PATH": str(work / "output"),
        }
    )
    return values


@dataclass
class Deployment:
    base: str
    passwords: dict[str, str]
    output: Path
    procs: ProcessGroups
    users_file: Path
    run_init: object  # () -> CompletedProcess: airflow-init once more
    landing: Path
    warehouse_conninfo: str  # the warehouse database, as the deployment's SLF_PG_* name it
    sessions: dict[str, requests.Session] = field(default_factory=dict)

    def session(self, user: str) -> requests.Session:
        if user not in self.sessions:
            self.sessions[user] = login(self.base, user, self.passwords[user])
        return self.sessions[user]


def _in_own_uts_namespace(hostname: str, argv: list[str]) -> list[str]:
    """argv run with its own host name, as in a container of its own."""
    prefix = ["unshare", "--uts"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--uts"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"cannot give the workers host names of their own: {probe.stderr.decode()[:200]}")
    return [*prefix, "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *argv]


def _command(service: dict) -> list[str]:
    """The compose command as this machine runs it: the image's entrypoint runs `python …` as given."""
    argv = list(service["command"])
    assert argv[0] == "python", argv
    return [sys.executable, *argv[1:]]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory):
    if not shutil.which("redis-server"):
        pytest.skip("Debian's redis-server is not installed (make system-deps)")
    started = time.monotonic()
    work = tmp_path_factory.mktemp("celery-deployment")
    (work / "logs").mkdir()
    variables = dotenv(work)
    (work / ".env").write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
    passwords = {user: secrets.token_urlsafe(18) for user in USERS}
    users_file = Path(variables["SLF_USERS_PATH"])
    users_file.write_text(
        "# username role password\n" + "".join(f"{u} {USERS[u]} {p}\n" for u, p in passwords.items())
    )
    users_file.chmod(0o600)
    subprocess.run(
        [sys.executable, "-m", "slf_warehouse.cli", "sample-data", "--out", variables["SLF_LANDING_PATH"]],
        check=True,
        capture_output=True,
        timeout=120,
    )
    Path(variables["SLF_OUTPUT_PATH"]).mkdir()
    compose = compose_env.load(compose_env.read_env_file(work / ".env"))
    services = compose["services"]

    procs = ProcessGroups(work / "logs")
    with throwaway_postgres(tmp_path_factory, "test_admin", "test_admin") as pg:
        try:
            # The two database servers of the compose file are two databases of one server here.
            db_env = {**services["airflow-db"]["environment"]}
            wh_env = {**services["warehouse-db"]["environment"]}
            pg.execute(
                (
                    f'create role "{db_env["POSTGRES_USER"]}" login password %s',
                    (db_env["POSTGRES_PASSWORD"],),
                ),
                f'create database "{db_env["POSTGRES_DB"]}" owner "{db_env["POSTGRES_USER"]}"',
                # the postgres image makes POSTGRES_USER its server's superuser
                (
                    f'create role "{wh_env["POSTGRES_USER"]}" login superuser password %s',
                    (wh_env["POSTGRES_PASSWORD"],),
                ),
                f'create database "{wh_env["POSTGRES_DB"]}" owner "{wh_env["POSTGRES_USER"]}"',
            )
            redis_port, api_port = free_port(), free_port()
            procs.start(
                "redis",
                [
                    "redis-server",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(redis_port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(work),
                ],
                env={"PATH": os.environ["PATH"]},
            )
            hosts = {
                "airflow-db": (5432, pg.port),
                "warehouse-db": (5432, pg.port),
                "redis": (6379, redis_port),
                "airflow-apiserver": (8080, api_port),
            }
            named_volumes = {"airflow-logs": work / "logs" / "airflow"}
            home = work / "airflow-home"
            home.mkdir()

            def service_env(name: str) -> dict[str, str]:
                return _service_env(compose, name, hosts, named_volumes, home, api_port)

            def run_init() -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    _command(services["airflow-init"]),
                    env=service_env("airflow-init"),
                    capture_output=True,
                    text=True,
                    timeout=300,
                )

            init = run_init()
            assert init.returncode == 0, (init.stdout + init.stderr)[-5000:]
            for password in passwords.values():
                assert password not in init.stdout + init.stderr
            init_seconds = time.monotonic() - started
            for name in SERVICES:
                procs.start(name, _command(services[name]), service_env(name), cwd=work)
            worker = services["airflow-worker"]
            for hostname in WORKERS:
                procs.start(
                    hostname,
                    _in_own_uts_namespace(hostname, _command(worker)),
                    service_env("airflow-worker"),
                    cwd=work,
                )
            base = f"http://127.0.0.1:{api_port}"

            def api_up():
                try:
                    return requests.get(f"{base}/api/v2/version", timeout=3).json()
                except (requests.RequestException, ValueError):
                    return None

            wait_for(api_up, 240, "the api-server answering", alive=procs.check_running)
            print(f"deployment up in {time.monotonic() - started:.1f} s (init {init_seconds:.1f} s)")
            from psycopg2.extensions import make_dsn

            warehouse = make_dsn(
                host="127.0.0.1",
                port=pg.port,
                user=wh_env["POSTGRES_USER"],
                password=wh_env["POSTGRES_PASSWORD"],
                dbname=wh_env["POSTGRES_DB"],
            )
            yield Deployment(
                base,
                passwords,
                Path(variables["SLF_OUTPUT_PATH"]),
                procs,
                users_file,
                run_init,
                Path(variables["SLF_LANDING_PATH"]),
                warehouse,
            )
        finally:
            procs.stop_all()
            leftovers = [n for n, p in procs.procs.items() if p.poll() is None]
            assert not leftovers, f"still running after the stop: {leftovers}"


def _service_env(
    compose: dict, name: str, hosts: dict, named_volumes: dict[str, Path], home: Path, api_port: int
) -> dict[str, str]:
    """The environment of compose service `name` as this machine runs it: its hosts, paths (image
    paths, volumes, secrets) and ports mapped to the local ones."""
    service = compose["services"][name]
    paths = {
        **compose_env.image_paths(),
        IMAGE_AIRFLOW_HOME: home,
        **compose_env.volume_paths(service, named_volumes),
    }
    for secret in service.get("secrets", []):
        paths[f"/run/secrets/{secret}"] = Path(compose["secrets"][secret]["file"])
    env = compose_env.localise(service["environment"], hosts, paths)
    env.update(
        {
            # What the image sets, here: its AIRFLOW_HOME, DAGs folder and the log volume.
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(paths[f"{IMAGE_AIRFLOW_HOME}/dags"]),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(named_volumes["airflow-logs"]),
            # `ports: 127.0.0.1:8080:8080` publishes the api-server on loopback only
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": os.environ.get("HOME", str(home.parent)),
            "LANG": "C.UTF-8",
            "NO_PROXY": "*",
            "no_proxy": "*",
        }
    )
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _dag_parsed(d: Deployment, dag_id: str) -> None:
    admin = d.session("ops")
    wait_for(
        lambda: True if admin.get(f"{d.base}/api/v2/dags/{dag_id}", timeout=10).status_code == 200 else None,
        240,
        f"{dag_id} parsed by the dag-processor",
        alive=d.procs.check_running,
    )


def _trigger(
    session: requests.Session, d: Deployment, dag_id: str, conf: dict | None = None
) -> requests.Response:
    return session.post(
        f"{d.base}/api/v2/dags/{dag_id}/dagRuns", timeout=30, json={"logical_date": None, "conf": conf or {}}
    )


def test_logins_and_roles(deployment: Deployment) -> None:
    d = deployment
    bad = requests.post(
        f"{d.base}/auth/token", json={"username": "auditor", "password": "wrong-" + "x" * 12}, timeout=30
    )
    assert bad.status_code == 401, bad.text[:300]
    _dag_parsed(d, "slf_refresh")
    _dag_parsed(d, "slf_answer_inquiry")
    auditor, writer, finance = d.session("auditor"), d.session("writer"), d.session("finance")

    assert auditor.get(f"{d.base}/api/v2/dags/slf_refresh/dagRuns", timeout=30).status_code == 200
    for dag_id in ("slf_refresh", "slf_answer_inquiry"):
        refused = _trigger(auditor, d, dag_id)
        assert refused.status_code == 403, (dag_id, refused.status_code, refused.text[:300])
    assert (
        auditor.patch(f"{d.base}/api/v2/dags/slf_refresh", json={"is_paused": False}, timeout=30).status_code
        == 403
    )
    refused = _trigger(writer, d, "slf_refresh")
    assert refused.status_code == 403, refused.text[:300]
    refused = _trigger(finance, d, "slf_answer_inquiry")
    assert refused.status_code == 403, refused.text[:300]

    # The one-slot DuckDB writer pool exists in the new metadata database.
    from slf_warehouse.airflow_env import WRITER_POOL

    pool = auditor.get(f"{d.base}/api/v2/pools/{WRITER_POOL[0]}", timeout=30)
    assert pool.status_code == 200 and pool.json()["slots"] == int(WRITER_POOL[1]), pool.text[:300]


def test_pseudonym_key_variable_is_masked(deployment: Deployment) -> None:
    from slf_warehouse.ingest.pseudonym import KEY_VARIABLE

    d = deployment
    admin, value = d.session("ops"), secrets.token_hex(32)
    created = admin.post(f"{d.base}/api/v2/variables", json={"key": KEY_VARIABLE, "value": value}, timeout=30)
    assert created.status_code in (200, 201), created.text[:300]
    try:
        r = admin.get(f"{d.base}/api/v2/variables/{KEY_VARIABLE}", timeout=30)
        assert r.status_code == 200 and value not in r.text and r.json()["value"] == "***", r.text[:300]
        listed = admin.get(f"{d.base}/api/v2/variables", timeout=30)
        assert listed.status_code == 200 and value not in listed.text, listed.text[:300]
        # Auditors do not read Variables at all.
        assert (
            d.session("auditor").get(f"{d.base}/api/v2/variables/{KEY_VARIABLE}", timeout=30).status_code
            == 403
        )
    finally:
        admin.delete(f"{d.base}/api/v2/variables/{KEY_VARIABLE}", timeout=30)


def _pdf_text(path: Path) -> str:
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return re.sub(r"\s+", " ", text.replace("\u00a0", " ").replace("\u202f", " "))


def _refresh_finished(d: Deployment, session: requests.Session, run_id: str, what: str) -> str:
    def finished():
        r = session.get(f"{d.base}/api/v2/dags/slf_refresh/dagRuns/{run_id}", timeout=30)
        state = r.json()["state"] if r.status_code == 200 else None
        return state if state in ("success", "failed") else None

    return wait_for(finished, 900, what, step=5, alive=d.procs.check_running)


# --- the published marts' totals, on PostgreSQL and on DuckDB ---------------------------------------

MONEY_COLUMN = re.compile(r".*_(dkk|kr)$")


def pg_mart_totals(conninfo: str) -> dict[str, tuple]:
    """Per published mart (the `marts` views): its row count and the sum of each money column."""
    import psycopg2
    from psycopg2 import sql

    con = psycopg2.connect(conninfo)
    try:
        with con, con.cursor() as cur:
            cur.execute(
                "select table_name, column_name from information_schema.columns "
                "where table_schema = 'marts' order by table_name, ordinal_position"
            )
            columns: dict[str, list[str]] = {}
            for table, column in cur.fetchall():
                columns.setdefault(table, []).extend([column] if MONEY_COLUMN.match(column) else [])
            totals = {}
            for table, money in columns.items():
                cur.execute(
                    sql.SQL("select count(*){} from {}").format(
                        sql.SQL("").join(sql.SQL(", sum({})").format(sql.Identifier(c)) for c in money),
                        sql.Identifier("marts", table),
                    )
                )
                totals[table] = _rounded(cur.fetchone())
            return totals
    finally:
        con.close()


def duckdb_mart_totals(warehouse: Path) -> dict[str, tuple]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns: dict[str, list[str]] = {}
        for table, column in con.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'marts' order by table_name, ordinal_position"
        ).fetchall():
            columns.setdefault(table, []).extend([column] if MONEY_COLUMN.match(column) else [])
        return {
            table: _rounded(
                con.execute(
                    "select count(*)" + "".join(f', sum("{c}")' for c in money) + f' from marts."{table}"'
                ).fetchone()
            )
            for table, money in columns.items()
        }


def _rounded(row: tuple) -> tuple:
    from decimal import Decimal

    return tuple(None if v is None else Decimal(str(v)).quantize(Decimal("0.01")) for v in row)


def duckdb_refresh(landing: Path, out: Path, run_id: str) -> dict[str, tuple]:
    """The same data refreshed on DuckDB by the pipeline's functions (test_concurrent_runs.REFRESH:
    load, dbt build, publish) in a process of its own; the published marts' totals."""
    from slf_warehouse.warehouse import WarehouseStore
    from test_concurrent_runs import REFRESH

    env = {k: v for k, v in os.environ.items() if k != "SLF_WAREHOUSE_ENGINE" and not k.startswith("SLF_PG_")}
    done = subprocess.run(
        [sys.executable, "-c", REFRESH, str(landing), str(out), run_id, "publish"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    return duckdb_mart_totals(WarehouseStore(out / "warehouse").published().path)


def test_finance_refresh_runs_on_both_workers(deployment: Deployment) -> None:
    d = deployment
    _dag_parsed(d, "slf_refresh")
    finance, auditor = d.session("finance"), d.session("auditor")
    d.session("ops")  # the admin logs in too
    started = time.monotonic()
    run_id = trigger_first_refresh(finance, d.base)

    state = _refresh_finished(d, finance, run_id, "the finance user's refresh finishing")
    seconds = time.monotonic() - started
    tis = auditor.get(
        f"{d.base}/api/v2/dags/slf_refresh/dagRuns/{run_id}/taskInstances", params={"limit": 500}, timeout=30
    ).json()["task_instances"]
    states = {t["task_id"]: t["state"] for t in tis}
    assert state == "success", (
        f"run {run_id} {state}: "
        + ", ".join(f"{t}={s}" for t, s in states.items() if s != "success")
        + "\n"
        + d.procs.log_tail("slf-worker-1")
    )
    print(f"refresh {seconds:.1f} s, {len(tis)} task instances")
    # Every task ran on one of the two workers, and both workers ran some; the scheduler marks
    # EmptyOperator tasks done without sending them to a worker.
    unhosted = {t["task_id"]: t["operator"] for t in tis if not t["hostname"]}
    assert set(unhosted.values()) <= {"EmptyOperator"}, unhosted
    per_host = {
        h: sum(1 for t in tis if t["hostname"] == h) for h in {t["hostname"] for t in tis if t["hostname"]}
    }
    assert set(per_host) == set(WORKERS), per_host
    print(f"task instances per worker: {per_host}, not sent to a worker: {sorted(unhosted)}")

    text = _pdf_text(d.output / "answers" / "enhedslisten-slf.pdf")
    for figure in ("26 mio. kr.", "6,6 mio. kr."):
        assert figure in text, figure
    # The auditor reads a task's log (written by a worker into the shared log folder).
    publish = next(t for t in tis if t["task_id"] == "publish")
    log = auditor.get(
        f"{d.base}/api/v2/dags/slf_refresh/dagRuns/{run_id}/taskInstances/publish/logs/"
        f"{publish['try_number']}",
        headers={"Accept": "application/json"},
        timeout=60,
    )
    assert log.status_code == 200 and "publish" in log.text, log.text[:500]
    # no warehouse file: the refresh wrote PostgreSQL, and its published marts equal DuckDB's
    assert not (d.output / "warehouse").exists()
    started = time.monotonic()
    on_duckdb = duckdb_refresh(d.landing, d.output.parent / "duckdb-side", "duckdb-first")
    print(f"the DuckDB refresh of the same data in-process: {time.monotonic() - started:.1f} s")
    on_postgres = pg_mart_totals(d.warehouse_conninfo)
    assert len(on_postgres) >= 15 and on_postgres == on_duckdb


def test_a_corrected_month_refreshes_incrementally(deployment: Deployment) -> None:
    """A second delivery: one month of the ledger corrected. The next refresh loads that file only
    (the others are skipped as unchanged), and the published totals follow DuckDB's on the same data."""
    import psycopg2

    d = deployment
    finance, admin = d.session("finance"), d.session("ops")

    # Unpausing queued the last weekday morning's run behind the first: let every run finish first.
    def idle():
        runs = admin.get(
            f"{d.base}/api/v2/dags/slf_refresh/dagRuns", params={"limit": 100}, timeout=30
        ).json()
        return all(r["state"] in ("success", "failed") for r in runs["dag_runs"]) or None

    wait_for(idle, 900, "the earlier refreshes finishing", step=5, alive=d.procs.check_running)
    before = pg_mart_totals(d.warehouse_conninfo)
    month = d.landing / "posteringer" / "posteringer_2023-03.csv"
    month.write_bytes(month.read_bytes().replace(b";SLF;", b";DRIFT;", 1))
    run = finance.post(
        f"{d.base}/api/v2/dags/slf_refresh/dagRuns", timeout=30, json={"logical_date": None, "conf": {}}
    )
    assert run.status_code == 200, run.text[:500]
    run_id = run.json()["dag_run_id"]
    started = time.monotonic()
    state = _refresh_finished(d, finance, run_id, "the second delivery's refresh finishing")
    assert state == "success", f"run {run_id} {state}\n" + d.procs.log_tail("slf-worker-1")
    print(f"incremental refresh {time.monotonic() - started:.1f} s")

    con = psycopg2.connect(d.warehouse_conninfo)
    try:
        with con, con.cursor() as cur:
            cur.execute(
                "select file_name, status from audit.load_manifest where run_id = %s and status <> "
                "'skipped-duplicate'",
                (run_id,),
            )
            loaded = cur.fetchall()
            cur.execute("select count(*) from audit.load_manifest where run_id = %s", (run_id,))
            seen = cur.fetchone()[0]
            cur.execute("select status from audit.runs where run_id = %s", (run_id,))
            status = cur.fetchone()
    finally:
        con.close()
    assert loaded == [(month.name, "loaded")] and seen > 60, loaded
    assert status == ("published",)
    after = pg_mart_totals(d.warehouse_conninfo)
    assert after != before
    assert after == duckdb_refresh(d.landing, d.output.parent / "duckdb-side", "duckdb-corrected")


def _token_status(d: Deployment, user: str, password: str) -> int:
    return requests.post(
        f"{d.base}/auth/token", json={"username": user, "password": password}, timeout=30
    ).status_code


def test_init_again_follows_the_users_file(deployment: Deployment) -> None:
    """Every `docker compose up` runs airflow-init again: a changed password replaces the old one, a user
    taken out of the file can no longer log in, the others stay as they were."""
    d = deployment
    old, new = d.passwords["finance"], secrets.token_urlsafe(18)
    kept = {u: p for u, p in d.passwords.items() if u != "auditor"}
    kept["finance"] = new
    d.users_file.write_text("".join(f"{u} {USERS[u]} {p}\n" for u, p in kept.items()))
    init = d.run_init()
    assert init.returncode == 0, (init.stdout + init.stderr)[-3000:]
    assert "user finance: password updated" in init.stdout and "user ops: unchanged" in init.stdout, (
        init.stdout
    )
    assert "user auditor: deactivated" in init.stdout, init.stdout
    assert new not in init.stdout + init.stderr
    assert _token_status(d, "finance", old) == 401
    assert _token_status(d, "finance", new) in (200, 201)
    assert _token_status(d, "auditor", d.passwords["auditor"]) == 401
    assert _token_status(d, "ops", d.passwords["ops"]) in (200, 201)
