"""The REST API calls the deployment tests make as their users: log in, trigger the refresh, answer
human-in-the-loop questions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests


def login(base: str, user: str, password: str) -> requests.Session:
    """A session carrying the JWT that `POST /auth/token` gives ``user``."""
    r = requests.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=30)
    assert r.status_code in (200, 201), (user, r.status_code, r.text[:300])
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return session


def trigger_first_refresh(session: requests.Session, base: str) -> str:
    """Trigger slf_refresh and unpause it; the run id. Unpausing (catchup=False) also schedules the
    last weekday morning's run. Queued runs start in run_after order: this one is dated a week back so
    it goes first; the scheduled one, on the same folders, waits behind it (max_active_runs=1) and is
    stopped with the deployment."""
    run_after = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    run = session.post(
        f"{base}/api/v2/dags/slf_refresh/dagRuns",
        timeout=30,
        json={"logical_date": None, "run_after": run_after, "conf": {}},
    )
    assert run.status_code == 200, run.text[:500]
    unpaused = session.patch(f"{base}/api/v2/dags/slf_refresh", json={"is_paused": False}, timeout=30)
    assert unpaused.status_code == 200, unpaused.text[:300]
    return run.json()["dag_run_id"]


def task_states(session: requests.Session, base: str, dag: str, run_id: str) -> dict[str, str]:
    tis = session.get(
        f"{base}/api/v2/dags/{dag}/dagRuns/{run_id}/taskInstances", params={"limit": 500}, timeout=60
    ).json()["task_instances"]
    return {t["task_id"]: t["state"] for t in tis}


def hitl_detail(session: requests.Session, base: str, dag: str, task: str, run_id: str) -> dict | None:
    """The run's question of ``task``, None while there is none (AssertionError if the run ended)."""
    try:  # SQLite under a busy scheduler can keep a read waiting: ask again
        r = session.get(f"{base}/api/v2/dags/{dag}/dagRuns/{run_id}/hitlDetails", timeout=60)
    except requests.Timeout:
        return None
    r.raise_for_status()
    details = [d for d in r.json()["hitl_details"] if d["task_instance"]["task_id"] == task]
    if details:
        return details[0]
    state = session.get(f"{base}/api/v2/dags/{dag}/dagRuns/{run_id}", timeout=60).json()["state"]
    assert state not in ("failed", "success"), f"run {run_id} {state} before asking ({task})"
    return None


def wait_until_asked(
    session: requests.Session,
    base: str,
    scheduler_log: Path,
    dag: str,
    task: str,
    run_id: str,
    what: str,
    pauses: int = 1,
    timeout: float = 240,
) -> dict:
    """The question's details once ``task`` waits for input and the scheduler has seen it pause
    (``pauses`` times: a refused answer asks again). Airflow 3.3's LocalExecutor reports the paused
    workload's exit as an event; an answer that arrives before the scheduler handled that event
    re-queues the task, and the late event then fails it ("finished with state success, but the task
    instance's state attribute is queued"). A person answers minutes after being asked; the test waits
    for the scheduler's own log line that it handled the event (seconds after the pause here)."""
    from service_processes import wait_for

    handled = f"TaskInstance Finished: dag_id={dag}, task_id={task}, run_id={run_id},"

    def paused():
        detail = hitl_detail(session, base, dag, task, run_id)
        if detail is None or detail["response_received"]:
            return None
        if task_states(session, base, dag, run_id).get(task) != "awaiting_input":
            return None
        seen = scheduler_log.read_text(encoding="utf-8", errors="replace").count(handled)
        return detail if seen >= pauses else None

    return wait_for(paused, timeout, what)


def respond(
    session: requests.Session, base: str, dag: str, task: str, run_id: str, choice: str, form: dict
) -> requests.Response:
    return session.patch(
        f"{base}/api/v2/dags/{dag}/dagRuns/{run_id}/taskInstances/{task}/-1/hitlDetails",
        json={"chosen_options": [choice], "params_input": form},
        timeout=30,
    )


def run_finished(session: requests.Session, base: str, dag: str, run_id: str, timeout: float = 300) -> str:
    from service_processes import wait_for

    def done():
        state = session.get(f"{base}/api/v2/dags/{dag}/dagRuns/{run_id}", timeout=60).json()["state"]
        return state if state in ("success", "failed") else None

    return wait_for(done, timeout, f"run {run_id} finishing", step=2)
