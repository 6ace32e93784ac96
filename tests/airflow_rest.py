"""The REST API calls the deployment tests make as their users: log in, trigger the refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
