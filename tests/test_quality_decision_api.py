"""The quality override as a decision, through the REST API with real Airflow processes.

One `slf airflow` stack (LocalExecutor on SQLite, the deployment's auth manager, the users
`slf deploy init` creates) on a landing folder whose March 2023 ledger puts APMF money on salaries,
so every refresh's gate refuses (as in test_end_to_end):

- a run whose conf names a folder is refused by its first task; the folder is never created;
- a triggered refresh waits in quality_decision, assigned to the role slf_finance_lead: finance staff
  and the admin are refused (403); "publish anyway" with a blank reason is refused and asked again;
  with a reason → published, the reason in the run history and on every page of the answers;
- the next (scheduled) refresh waits too; "Stop" → the run fails, nothing new is published.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from airflow_rest import respond, run_finished, task_states, trigger_first_refresh, wait_until_asked
from test_answer_approval_api import running_airflow
from test_end_to_end import check_override_published, put_apmf_money_on_salaries

pytestmark = pytest.mark.slow

DAG, TASK = "slf_refresh", "quality_decision"
PUBLISH, STOP = "Offentliggør alligevel", "Stop"
USERS = {"ops": "Admin", "hanne": "slf_finance", "lead": "slf_finance_lead"}
REASON = "APMF-fejlkonteringen i marts 2023 rettes i næste periode; tallene i svarene er ikke berørt"


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, sample_landing_master: Path):
    work = tmp_path_factory.mktemp("override-api")
    shutil.copytree(sample_landing_master, work / "landing")
    put_apmf_money_on_salaries(work / "landing")
    with running_airflow(work, users=USERS, seed=False) as (af, out):
        yield af, out, work


def _asked(af, run_id: str, what: str, pauses: int = 1) -> dict:
    return wait_until_asked(
        af.as_user("hanne"), af.base, af.log, DAG, TASK, run_id, what, pauses=pauses, timeout=900
    )


def _answer(af, user: str, run_id: str, choice: str, reason: str | None = None) -> requests.Response:
    form = {} if reason is None else {"begrundelse": reason}
    return respond(af.as_user(user), af.base, DAG, TASK, run_id, choice, form)


def test_override_decision_through_the_rest_api(airflow) -> None:
    af, out, work = airflow
    hanne = af.as_user("hanne")
    started = time.monotonic()

    def listed():
        r = hanne.get(af.api(f"/dags/{DAG}/details"), timeout=60)
        return r.json() if r.status_code == 200 else None

    from service_processes import wait_for

    details = wait_for(listed, 180, f"{DAG} parsed by the dag-processor")
    assert not {"landing_dir", "output_dir"} & set(details["params"])  # the form offers no folder

    # A folder in the conf: refused by the first task, before anything is read or written. Dated
    # before the next run, so it goes first.
    elsewhere = work / "elsewhere"
    sneaky = hanne.post(
        af.api(f"/dags/{DAG}/dagRuns"),
        json={
            "logical_date": None,
            "run_after": (datetime.now(UTC) - timedelta(days=8)).isoformat(),
            "conf": {"output_dir": str(elsewhere)},
        },
        timeout=30,
    )
    assert sneaky.status_code == 200, sneaky.text[:300]
    sneaky_run = sneaky.json()["dag_run_id"]
    run_id = trigger_first_refresh(hanne, af.base)

    assert run_finished(hanne, af.base, DAG, sneaky_run, timeout=600) == "failed"
    states = task_states(hanne, af.base, DAG, sneaky_run)
    assert states["prepare_build"] == "failed" and states["publish"] == "upstream_failed", states
    assert not elsewhere.exists()

    # The refused gate waits for a finance lead.
    detail = _asked(af, run_id, "the override decision being asked for")
    assert detail["options"] == [PUBLISH, STOP] and set(detail["params"]) == {"begrundelse"}
    assert [u["id"] for u in detail["assigned_users"]] == ["role:slf_finance_lead"]
    assert "apmf_not_on_salaries" in detail["body"]
    assert task_states(hanne, af.base, DAG, run_id)["publish"] in (None, "none")
    assert not (out / "warehouse" / "published.json").exists()

    assert _answer(af, "hanne", run_id, PUBLISH, REASON).status_code == 403  # may trigger, not decide
    assert _answer(af, "ops", run_id, PUBLISH, REASON).status_code == 403  # the admin is no finance lead
    # A blank reason: Airflow takes the answer, the task refuses it and asks again.
    assert _answer(af, "lead", run_id, PUBLISH, "   ").status_code == 200
    again = _asked(af, run_id, "the decision being asked again after a blank reason", pauses=2)
    assert again["response_received"] is False
    assert not (out / "warehouse" / "published.json").exists()
    r = _answer(af, "lead", run_id, PUBLISH, REASON)
    assert r.status_code == 200, r.text[:300]
    assert _answer(af, "lead", run_id, STOP).status_code == 409  # decided once
    state = run_finished(hanne, af.base, DAG, run_id, timeout=900)
    assert state == "success", task_states(hanne, af.base, DAG, run_id)
    decided = hanne.get(
        af.api(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{TASK}/xcomEntries/return_value"), timeout=60
    ).json()["value"]
    assert decided == {"decision": "publish anyway", "by": "lead", "override": REASON}
    check_override_published(out, REASON)
    published = json.loads((out / "warehouse" / "published.json").read_text())
    print(f"published with the override: {time.monotonic() - started:.0f} s after Airflow was up")

    # The next run (the scheduled one unpausing queued; triggered if there is none) is stopped.
    def next_run():
        runs = hanne.get(af.api(f"/dags/{DAG}/dagRuns"), params={"limit": 50}, timeout=60).json()["dag_runs"]
        waiting = [r["dag_run_id"] for r in runs if r["dag_run_id"] not in (run_id, sneaky_run)]
        return waiting[0] if waiting else None

    second = next_run()
    if second is None:
        r = hanne.post(af.api(f"/dags/{DAG}/dagRuns"), json={"logical_date": None, "conf": {}}, timeout=30)
        assert r.status_code == 200, r.text[:300]
        second = r.json()["dag_run_id"]
    _asked(af, second, "the second run's decision being asked for")
    assert _answer(af, "lead", second, STOP).status_code == 200
    assert run_finished(hanne, af.base, DAG, second, timeout=600) == "failed"
    states = task_states(hanne, af.base, DAG, second)
    assert states[TASK] == "failed" and states["publish"] == "upstream_failed", states
    assert states["record_outcome"] == "success" and states["end_run"] == "success", states
    assert json.loads((out / "warehouse" / "published.json").read_text()) == published
    history = [json.loads(line) for line in (out / "quality" / "history.jsonl").read_text().splitlines()]
    last = history[-1]
    assert last["run_id"] == second and last["status"] == "refused" and not last.get("override_reason")
    assert TASK in last["failed_steps"]
    from slf_warehouse.warehouse import WarehouseStore

    assert WarehouseStore(out / "warehouse").builds_of(second) == []  # the refused build is done with
    print(f"override decision through the REST API: {time.monotonic() - started:.0f} s after Airflow was up")
