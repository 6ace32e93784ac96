"""Refreshes on one output folder, with real processes: one at a time, a second refused naming the
holder, and a killed one recorded as failed with its build removed by the next."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from slf_warehouse import run_lock
from slf_warehouse.quality.history import read_history
from slf_warehouse.settings import project_dir
from slf_warehouse.warehouse import WarehouseStore

SLF = [sys.executable, "-m", "slf_warehouse.cli"]

# The pipeline's steps as the DAG runs them, in one process (argv: landing, out, run id, last step).
REFRESH = """
import sys
from slf_warehouse import pipeline
from slf_warehouse.settings import Settings
landing, out, run_id, last = sys.argv[1:5]
settings = Settings.from_env(landing, out)
build = pipeline.prepare_build(settings, run_id)
print("prepared", build, flush=True)
for source in ("enheder", "bevillinger", "aktiviteter", "posteringer", "loen", "social_kapital"):
    pipeline.ingest_source(settings, build, source, run_id)
    print("ingested", source, flush=True)
pipeline.dbt_build(settings, build)
if last == "publish":  # (the quality gate, its own task under Airflow, is not what is tested here)
    pipeline.publish(settings, build, run_id)
    pipeline.end_run(settings, run_id)
"""


def _wait_for(condition, seconds: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {seconds} s")
        time.sleep(0.2)


def _kill(proc: subprocess.Popen) -> None:
    """The process and whatever it started (its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _model_relations() -> set[str]:
    """Every dbt model the project builds, as schema.name (from the parsed manifest)."""
    manifest = json.loads((project_dir() / "dbt_project" / "target" / "manifest.json").read_text())
    return {
        f"{n['schema']}.{n['alias'] or n['name']}"
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"]["materialized"] != "ephemeral"
    }


HOLD = """
import subprocess, sys, time
from slf_warehouse.run_lock import hold_output
with hold_output(sys.argv[1]) as lock:
    # a child sharing the lock, as slf run's Airflow process does
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(lock.fd,))
    print("held", flush=True)
    time.sleep(60)
"""


def test_the_lock_names_its_holder_and_outlives_a_killed_holder_while_its_child_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(run_lock.RunInProgress) as refused, run_lock.hold_output(out):
            pass
        message = str(refused.value)
        assert str(out) in message and f"pid {holder.pid}" in message and "since 20" in message
        os.kill(holder.pid, signal.SIGKILL)  # the holder only; its child keeps the lock
        holder.wait(timeout=30)
        with pytest.raises(run_lock.RunInProgress), run_lock.hold_output(out):
            pass
    finally:
        _kill(holder)  # the child is in the holder's process group

    def free() -> bool:  # once every process holding it is gone (the child's exit closes its copy)
        try:
            with run_lock.hold_output(out) as lock:
                return lock.holder.pid == os.getpid()
        except run_lock.RunInProgress:
            return False

    _wait_for(free, 10, "free lock")


def test_a_killed_run_is_recorded_as_failed_and_its_build_removed_by_the_next(
    sample_landing: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    store = WarehouseStore(out / "warehouse")
    refresh = [sys.executable, "-c", REFRESH, str(sample_landing), str(out)]
    killed = subprocess.Popen(
        [*refresh, "killed-run", "dbt"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        line = killed.stdout.readline()
        assert line.startswith("prepared"), line
        orphan = Path(line.split(" ", 1)[1].strip())
        line = killed.stdout.readline()  # into ingestion: the first source loaded, the next loading
        assert line.startswith("ingested"), line
        assert killed.poll() is None, "the run finished before it could be killed"
    finally:
        _kill(killed)
    assert orphan.exists() and run_lock.lease(out).run_id == "killed-run"

    from slf_warehouse import pipeline
    from slf_warehouse.settings import Settings

    build = pipeline.prepare_build(Settings.from_env(sample_landing, out), "next-run")
    runs = {r["run_id"]: r for r in read_history(out / "quality")}
    assert runs["killed-run"]["status"] == "failed" and runs["killed-run"]["finished_at"]
    assert runs["killed-run"]["failed_steps"][0].startswith("interrupted")
    assert not orphan.exists() and not orphan.with_name(orphan.name + ".wal").exists()
    assert store.builds_of("killed-run") == []
    assert build.exists() and run_lock.lease(out).run_id == "next-run"


@pytest.mark.slow
def test_two_refreshes_at_once_one_is_refused_and_the_published_warehouse_is_whole(
    sample_landing: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    refresh = [sys.executable, "-c", REFRESH, str(sample_landing), str(out)]
    first = subprocess.Popen(
        [*refresh, "run-a", "publish"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(
            lambda: (lease := run_lock.lease(out)) is not None and lease.run_id == "run-a",
            120,
            "lease of run-a",
            first,
        )
        second = subprocess.run([*refresh, "run-b", "publish"], capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "run-a ended before run-b started: nothing was concurrent"
        stdout, stderr = first.communicate(timeout=600)
    finally:
        _kill(first)
    assert second.returncode != 0
    assert (
        "RunInProgress" in second.stderr
        and f"in use by run run-a (process, pid {first.pid}, since" in second.stderr
    ), second.stderr[-2000:]
    assert first.returncode == 0, stderr[-3000:]

    published = WarehouseStore(out / "warehouse").published()
    assert published.run_id == "run-a"
    with duckdb.connect(str(published.path), read_only=True) as con:
        relations = {
            f"{s}.{n}"
            for s, n in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
            ).fetchall()
        }
        statuses = dict(con.execute("SELECT run_id, status FROM audit.runs").fetchall())
    assert _model_relations() <= relations
    assert statuses == {"run-a": "published"}  # run-b never started a build
    assert not list((out / "warehouse" / "builds").glob("*.duckdb"))
    assert run_lock.lease(out) is None  # freed for the next refresh


def _dagrun_state(run_id: str) -> str | None:
    from sqlalchemy import create_engine, text

    engine = create_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    try:
        with engine.connect() as con:
            row = con.execute(text("SELECT state FROM dag_run WHERE run_id = :r"), {"r": run_id}).first()
    finally:
        engine.dispose()
    return row[0] if row else None


@pytest.mark.slow
def test_slf_run_refuses_a_second_run_and_the_next_one_retires_a_killed_run(
    sample_landing: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    store = WarehouseStore(out / "warehouse")
    cmd = [*SLF, "run", "--landing", str(sample_landing), "--out", str(out)]
    first = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        _wait_for(
            lambda: (lease := run_lock.lease(out)) is not None and store.builds_of(lease.run_id),
            300,
            "the first run's prepared build",
            first,
        )
        run_id = run_lock.lease(out).run_id
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first run ended before the second started"
        # Killed as a person's Ctrl-\ or the OOM killer would: the CLI and its Airflow process at once.
    finally:
        _kill(first)
    assert second.returncode == 3, second.stdout + second.stderr
    assert f"in use by run {run_id} (slf run, pid {first.pid}, since " in second.stderr, second.stderr
    assert "Cannot add ExpectationSuite" not in second.stderr
    assert not (out / "warehouse" / "published.json").exists()
    orphans = store.builds_of(run_id)
    assert orphans and _dagrun_state(run_id) == "running"

    third = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert third.returncode == 0, third.stdout + third.stderr
    assert _dagrun_state(run_id) == "failed"
    runs = {r["run_id"]: r for r in read_history(out / "quality")}
    assert runs[run_id]["status"] == "failed" and runs[run_id]["failed_steps"][0].startswith("interrupted")
    assert not any(build.exists() for build in orphans) and store.builds_of(run_id) == []
    published = store.published()
    assert published.run_id != run_id and runs[published.run_id]["status"] == "published"
    assert _dagrun_state(published.run_id) == "success"
    assert run_lock.lease(out) is None  # the teardown freed the folder


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_dag_frees_the_folder_in_a_teardown_that_does_not_decide_the_runs_state(monkeypatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SLF_DBT_MODE", "build")
    dag = DagBag().get_dag("slf_refresh")
    end = dag.get_task("end_run")
    assert end.is_teardown and not end.on_failure_fail_dagrun
    assert {"render_answers", "record_outcome"} <= end.upstream_task_ids
    # every other task finishes before the folder is freed
    assert set(dag.task_ids) - {"end_run"} <= end.get_flat_relative_ids(upstream=True)


@pytest.mark.airflow  # imports airflow.sdk
def test_a_scheduler_runs_lease_holds_while_its_dagrun_is_queued_or_running(tmp_path: Path) -> None:
    """Under the scheduler each task is its own process: the lease, not a process, is the run."""
    from airflow.sdk import DagRunState

    out = tmp_path / "out"
    states = {"scheduled__1": DagRunState.RUNNING}

    def alive(run_id: str) -> bool:  # what the DAG asks Airflow (ti.get_dagrun_state)
        return run_lock.dagrun_state_is_live(states[run_id])

    assert run_lock.claim(out, "scheduled__1", alive) is None
    assert run_lock.lease(out).via == "airflow"
    for state in (DagRunState.RUNNING, DagRunState.QUEUED):
        states["scheduled__1"] = state
        with pytest.raises(run_lock.RunInProgress, match=r"in use by run scheduled__1 \(airflow, pid \d+"):
            run_lock.claim(out, "manual__2", alive)
    states["scheduled__1"] = DagRunState.FAILED  # e.g. marked failed in the UI before its teardown ran
    orphan = run_lock.claim(out, "manual__2", alive)
    assert orphan is not None and orphan.run_id == "scheduled__1"
    assert run_lock.lease(out).run_id == "manual__2"
    assert not run_lock.release(out, "scheduled__1") and run_lock.release(out, "manual__2")
    assert run_lock.lease(out) is None
