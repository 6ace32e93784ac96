"""`slf airflow` serves the project's DAGs; a client triggers slf_refresh through the REST API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from airflow_rest import trigger_first_refresh

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, step: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := predicate()) is not None:
            return value
        time.sleep(step)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def _listening(pgid: int) -> list[tuple[str, int, str]]:
    """(address, port, process) of every listening TCP socket of the process group `pgid`."""
    import psutil

    found = []
    for p in psutil.process_iter(["pid", "name"]):
        try:
            if os.getpgid(p.pid) != pgid:
                continue
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    found.append((c.laddr.ip, c.laddr.port, " ".join(p.cmdline()[1:4])))
        except (psutil.Error, ProcessLookupError):
            continue
    return found


@pytest.fixture()
def airflow_server(tmp_path: Path, sample_landing: Path):
    port = _free_port()
    home = tmp_path / "airflow-home"
    env = os.environ.copy()
    env.pop("SLF_DBT_MODE", None)  # what `slf airflow` runs by default
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            # The deployment's folders come from its configuration (no run may name one).
            "SLF_LANDING_DIR": str(sample_landing),
            "SLF_OUTPUT_DIR": str(tmp_path / "out"),
        }
    )
    log = (tmp_path / "airflow.log").open("w")
    # Its own process group: standalone starts scheduler, api-server, dag-processor and triggerer,
    # and only stopping the whole group stops them all.
    proc = subprocess.Popen(
        [sys.executable, "-m", "slf_warehouse.cli", "airflow", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up():
            try:
                return requests.get(f"{base}/api/v2/version", timeout=2).json()
            except (requests.RequestException, ValueError):
                return None

        _wait(up, 240, "the Airflow API server answering")
        password_file = home / "simple_auth_manager_passwords.json.generated"
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600  # plain-text passwords: this user only
        _wait(lambda: _listening(proc.pid) or None, 120, "the components listening")
        time.sleep(5)  # the scheduler's and triggerer's log servers (if any) start after their job
        listening = _listening(proc.pid)
        assert listening and all(host in ("127.0.0.1", "::1") for host, _port, _name in listening), listening
        password = json.loads(password_file.read_text())["admin"]
        token = requests.post(
            f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=10
        ).json()["access_token"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        yield base, session
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # LocalExecutor workers ignore SIGTERM
        log.close()


def test_trigger_refresh_through_rest_api(airflow_server, sample_landing: Path, tmp_path: Path) -> None:
    base, session = airflow_server
    out = tmp_path / "out"

    def dag_listed():
        r = session.get(f"{base}/api/v2/dags/slf_refresh", timeout=10)
        return r.json() if r.status_code == 200 else None

    _wait(dag_listed, 180, "slf_refresh parsed by the dag-processor")
    run_id = trigger_first_refresh(session, base)

    from slf_warehouse.run_progress import StepBoard, rest_task_states

    board, seen = StepBoard(), []  # `slf run`'s progress, fed from the REST API's task states

    def finished():
        state = session.get(f"{base}/api/v2/dags/slf_refresh/dagRuns/{run_id}", timeout=10).json()["state"]
        tis = session.get(
            f"{base}/api/v2/dags/slf_refresh/dagRuns/{run_id}/taskInstances",
            params={"limit": 500},
            timeout=10,
        ).json()["task_instances"]
        seen.extend((s.name, s.status) for s in board.update(rest_task_states(tis)))
        return state if state in ("success", "failed") else None

    state = _wait(finished, 900, "the triggered run finishing", step=5)
    tis = session.get(
        f"{base}/api/v2/dags/slf_refresh/dagRuns/{run_id}/taskInstances", params={"limit": 500}, timeout=10
    ).json()["task_instances"]
    states = {t["task_id"]: t["state"] for t in tis}
    if state != "success":
        pytest.fail(
            f"run {run_id} {state}: " + ", ".join(f"{t}={s}" for t, s in states.items() if s != "success")
        )
    assert (out / "answers" / "enhedslisten-slf.pdf").exists()
    assert (out / "warehouse" / "published.json").exists()
    for step in ("prepare build", "ingest posteringer", "dbt build", "quality checks", "publish", "answers"):
        assert (step, "ok") in seen and board.steps[step].seconds > 0, (step, seen)
    # Under the scheduler dbt runs in Cosmos' watcher mode: one producer, and a sensor per model
    # (and per model's tests) showing that model's result.
    assert states["dbt.dbt_producer_watcher"] == "success"
    sensors = {
        t: s
        for t, s in states.items()
        if t.startswith("dbt.") and t.endswith((".run", ".test", ".seed", ".snapshot"))
    }
    assert len(sensors) >= 50 and set(sensors.values()) == {"success"}, sensors
