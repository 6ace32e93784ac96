"""From draft to signed answer through the REST API, as the users would, with real Airflow processes.

`slf airflow` (api-server, scheduler, dag-processor, triggerer; LocalExecutor on SQLite) with the
deployment's auth manager (FAB, approvals assigned by login) and the users `slf deploy init`
creates: an answer writer, the two signatories of enhedslisten-slf.yaml and a third signatory who is
not one of its. One Airflow start for all of it (each costs 20–40 s here):

- the trigger form lists the inquiries; an inquiry given as a path is refused at the trigger (400),
  and an extra `output_dir` in the run's conf fails the draft task, writing nothing;
- the answer writer triggers enhedslisten-slf; the draft (UDKAST on every page) waits for approval;
  the approval page's body shows its figures and hash; the writer and the unassigned signatory are
  refused (403), the rådmand approves (a second answer: 409) → the final PDF says "Godkendt af
  Thomas Medom … den …", no UDKAST; its PDF/A-3a copy's attachments match the warehouse;
- a second run is rejected by the direktør with a comment → the comment is kept beside the draft
  and the approved letter is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from airflow_rest import login, run_finished, task_states, wait_until_asked
from postgres_server import free_port
from service_processes import wait_for
from test_answer_approval import INQUIRY, check_archive_against_warehouse, pdf_pages, publish
from test_answers_render import SEED

pytestmark = pytest.mark.slow

DAG = "slf_answer_inquiry"
USERS = {
    "ops": "Admin",
    "writer": "slf_answer_writer",
    "tmedom": "slf_signatory",
    "moechristensen": "slf_signatory",
    "peter": "slf_signatory",
}


class Airflow:
    def __init__(self, base: str, passwords: dict[str, str], log: Path) -> None:
        self.base, self.passwords, self.log = base, passwords, log
        self._sessions: dict[str, requests.Session] = {}

    def as_user(self, user: str) -> requests.Session:
        if user not in self._sessions:
            self._sessions[user] = login(self.base, user, self.passwords[user])
        return self._sessions[user]

    def api(self, path: str) -> str:
        return f"{self.base}/api/v2{path}"


@contextlib.contextmanager
def running_airflow(work: Path, users: dict[str, str] = USERS, seed: bool = True):
    """The published seed warehouse in ``work/out`` (unless not ``seed``), the users (login → role),
    and `slf airflow` on a free port in its own process group (stopped as a whole at the end), its
    landing folder ``work/landing``; yields (Airflow, output folder)."""
    from cryptography.fernet import Fernet

    out = work / "out"
    if seed:
        publish(out, SEED, "scheduled__2024-09-06", "20240906T060000")
    passwords = {u: secrets.token_hex(12) for u in users}
    users_file = work / "users"
    users_file.write_text("".join(f"{u} {users[u]} {p}\n" for u, p in passwords.items()))
    users_file.chmod(0o600)
    port = free_port()
    home = work / "airflow-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SLF_WAREHOUSE"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__AUTH_MANAGER": "slf_warehouse.auth_manager.SlfAuthManager",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "SLF_PG_PASSWORD": secrets.token_hex(16),
            "SLF_PSEUDONYM_KEY": secrets.token_hex(32),
            "SLF_USERS_FILE": str(users_file),
            "SLF_OUTPUT_DIR": str(out),
            "SLF_LANDING_DIR": str(work / "landing"),
        }
    )
    init = subprocess.run(
        [sys.executable, "-m", "slf_warehouse.cli", "deploy", "init"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-3000:]
    log = (work / "airflow.log").open("w")
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

        wait_for(up, 240, "the Airflow API server answering")
        yield Airflow(base, passwords, work / "airflow.log"), out
    finally:
        for sig, wait in ((signal.SIGTERM, 25), (signal.SIGKILL, 5)):  # LocalExecutor workers ignore SIGTERM
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        log.close()


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory):
    with running_airflow(tmp_path_factory.mktemp("approval-api")) as running:
        yield running


def _asked(session: requests.Session, af: Airflow, run_id: str, what: str) -> dict:
    """The approval's details once the task waits and the scheduler has seen it pause
    (airflow_rest.wait_until_asked: an earlier answer would meet a LocalExecutor race)."""
    return wait_until_asked(session, af.base, af.log, DAG, "approve", run_id, what)


def _finished(session: requests.Session, af: Airflow, run_id: str):
    return run_finished(session, af.base, DAG, run_id)


def _states(session: requests.Session, af: Airflow, run_id: str) -> dict[str, str]:
    return task_states(session, af.base, DAG, run_id)


def _trigger(session: requests.Session, af: Airflow, conf: dict) -> requests.Response:
    return session.post(af.api(f"/dags/{DAG}/dagRuns"), json={"logical_date": None, "conf": conf}, timeout=30)


def _respond(
    session: requests.Session, af: Airflow, run_id: str, choice: str, comment: str = ""
) -> requests.Response:
    return session.patch(
        af.api(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"),
        json={"chosen_options": [choice], "params_input": {"kommentar": comment}},
        timeout=30,
    )


def test_draft_approval_and_rejection_through_the_rest_api(airflow) -> None:
    af, out = airflow
    writer = af.as_user("writer")
    started = time.monotonic()

    # The HITL paths this test uses are the installed Airflow's.
    paths = requests.get(f"{af.base}/openapi.json", timeout=30).json()["paths"]
    assert (
        "patch"
        in paths["/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}/{map_index}/hitlDetails"]
    )
    assert "get" in paths["/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/hitlDetails"]

    def listed():
        r = writer.get(af.api(f"/dags/{DAG}/details"), timeout=60)
        return r.json() if r.status_code == 200 else None

    details = wait_for(listed, 180, f"{DAG} parsed by the dag-processor")
    schema = details["params"]["inquiry"]["schema"]
    assert schema["enum"] == ["enhedslisten-slf", "konservative-kompetenceaktiviteter"]
    assert "Enhedslisten: Stærkere Læringsfællesskaber" in schema["values_display"]["enhedslisten-slf"]
    assert set(details["params"]) == {"inquiry", "edition_note"}
    writer.patch(af.api(f"/dags/{DAG}"), json={"is_paused": False}, timeout=60).raise_for_status()

    # A path in a param: refused when triggered, or (a param the form does not have) by the first task.
    refused = _trigger(writer, af, {"inquiry": "/work/main/inquiries/enhedslisten-slf.yaml"})
    assert refused.status_code == 400, (refused.status_code, refused.text[:300])
    sneaky = _trigger(writer, af, {"inquiry": INQUIRY, "output_dir": str(out / "elsewhere")})
    sneaky.raise_for_status()
    sneaky_run = sneaky.json()["dag_run_id"]

    first = _trigger(writer, af, {"inquiry": INQUIRY, "edition_note": "1. udgave"})
    first.raise_for_status()
    run_id = first.json()["dag_run_id"]
    detail = _asked(writer, af, run_id, "the approval being asked for")
    assert {u["name"] for u in detail["assigned_users"]} == {"tmedom", "moechristensen"}
    assert detail["options"] == ["Godkend", "Afvis"] and "kommentar" in detail["params"]
    from slf_warehouse.answers.approval import review_folder

    draft = json.loads((review_folder(out / "answers", run_id) / "draft.json").read_text())
    assert draft["pdf_sha256"] in detail["body"] and "26 mio. kr." in detail["body"]
    assert "bestået" in detail["body"] or "ingen kvalitetsresultater" in detail["body"]
    pages = pdf_pages(Path(draft["pdf"]))
    assert all("UDKAST" in p for p in pages) and "Godkendt af" not in "".join(pages)
    assert not (out / "answers" / "approved").exists()

    assert _respond(writer, af, run_id, "Godkend").status_code == 403  # may trigger, may not sign
    assert (
        _respond(af.as_user("peter"), af, run_id, "Godkend").status_code == 403
    )  # a signatory, not of this letter
    r = _respond(af.as_user("tmedom"), af, run_id, "Godkend")
    assert r.status_code == 200, r.text[:300]
    assert _respond(af.as_user("moechristensen"), af, run_id, "Afvis", "for sent").status_code == 409
    state = _finished(writer, af, run_id)
    assert state == "success", _states(writer, af, run_id)
    result = writer.get(
        af.api(f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/conclude/xcomEntries/return_value"), timeout=60
    ).json()["value"]
    assert (
        result["decision"] == "approved"
        and result["by"] == "tmedom"
        and result["draft_sha256"] == draft["pdf_sha256"]
    )
    approved = out / "answers" / "approved"
    final = pdf_pages(approved / f"{INQUIRY}.pdf")
    assert not any("UDKAST" in p for p in final)
    assert "Godkendt af Thomas Medom, Rådmand, den " in "\n".join(final) and draft["pdf_sha256"] in "\n".join(
        final
    )
    warehouse = next((out / "warehouse" / "versions").glob("*.duckdb"))
    record = check_archive_against_warehouse(
        approved / f"{INQUIRY}.arkiv.pdf", warehouse, approved / f"{INQUIRY}.figures.json"
    )
    assert record["edition"]["approval"]["username"] == "tmedom" and record["edition"]["note"] == "1. udgave"

    assert _finished(writer, af, sneaky_run) == "failed"
    assert _states(writer, af, sneaky_run)["render_draft"] == "failed"
    assert not (out / "elsewhere").exists()

    # A second edition, rejected with a comment: kept beside the draft, the approved letter untouched.
    final_bytes = (approved / f"{INQUIRY}.pdf").read_bytes()
    second = _trigger(writer, af, {"inquiry": INQUIRY, "edition_note": "2. udgave"})
    second.raise_for_status()
    run2 = second.json()["dag_run_id"]
    _asked(writer, af, run2, "the second approval being asked for")
    r = _respond(
        af.as_user("moechristensen"), af, run2, "Afvis", "Spørgsmål 4: tjek antallet af læringspartnere."
    )
    assert r.status_code == 200, r.text[:300]
    assert _finished(writer, af, run2) == "success", _states(writer, af, run2)
    rejections = [json.loads(p.read_text()) for p in (out / "answers" / "review").glob("*/rejection.json")]
    assert [(x["by"], x["comment"]) for x in rejections] == [
        ("moechristensen", "Spørgsmål 4: tjek antallet af læringspartnere.")
    ]
    assert (approved / f"{INQUIRY}.pdf").read_bytes() == final_bytes
    print(f"approval flow through the REST API: {time.monotonic() - started:.0f} s after Airflow was up")
