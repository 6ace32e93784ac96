"""Run one DAG end to end in this process with `dag.test()` and exit non-zero unless it succeeded.

Called by `slf run` in a subprocess whose environment already points Airflow at the project, while
`slf run` holds the output folder's lock (run_lock): so a dag.test run of this DAG on this folder
still "running" in Airflow's database is one whose process was killed, and is marked failed here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from slf_warehouse.refresh_run import embedded_run
from slf_warehouse.run_lock import TOKEN_ENV


def fail_orphaned_runs(dag_id: str, output_dir: str) -> list[str]:
    """dag.test runs of `dag_id` on `output_dir` left running by a killed `slf run`: failed, with their
    unfinished tasks. Only while holding the folder's lock (no live run of ours can be among them)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy import select

    failed = []
    with create_session() as session:
        runs = session.scalars(
            select(DagRun).where(
                DagRun.dag_id == dag_id,
                DagRun.state == DagRunState.RUNNING,
                DagRun.triggered_by == DagRunTriggeredByType.TEST,
            )
        ).all()
        for run in runs:
            if (run.conf or {}).get("output_dir") != output_dir:
                continue
            for ti in run.get_task_instances(state=list(State.unfinished), session=session):
                ti.state = TaskInstanceState.FAILED
            run.set_state(DagRunState.FAILED)
            failed.append(run.run_id)
    return failed


def record_orphans_without_lease(conf: dict, run_ids: list[str]) -> None:
    """A run killed before its first step claimed the folder left no lease for prepare_build to find:
    its history line is written here (a leased one is recorded, with its build, by prepare_build)."""
    from slf_warehouse import run_lock
    from slf_warehouse.quality.step import finish_failed_run
    from slf_warehouse.settings import Settings

    settings = Settings.from_env(conf.get("landing_dir"), conf["output_dir"])
    leased = run_lock.lease(settings.output_dir)
    for run_id in run_ids:
        if leased is None or leased.run_id != run_id:
            finish_failed_run(
                settings.quality_dir,
                run_id,
                failed_steps=["interrupted before prepare_build"],
                render_report=False,
            )


def _test_watched(dag, conf: dict):
    """dag.test(), its task states reported as they change to the fd `slf run` reads (run_progress)."""
    from slf_warehouse.run_progress import PROGRESS_FD_ENV, TaskStateWatcher

    fd = os.environ.get(PROGRESS_FD_ENV)
    if not fd or not conf.get("output_dir"):
        return dag.test(run_conf=conf)
    with TaskStateWatcher(int(fd), dag.dag_id, conf["output_dir"]):
        return dag.test(run_conf=conf)


def ingested_sources(dag_id: str, run_id: str) -> dict[str, dict]:
    """What each source's load task returned (files and rows by status; pipeline.ingest_source), for
    the run's summary. Counts only: no file content or personal data is in these values."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=run_id, key="return_value", dag_ids=dag_id)).all()
        # get_many is annotated as selecting tuples; scalars() yields the XComModel rows themselves
        values = {row.task_id: XComModel.deserialize_value(row) for row in rows}  # type: ignore[attr-defined]
    return {
        v["source"]: v
        for task_id, v in values.items()
        if task_id.startswith("ingest_")
        and task_id.endswith(".load")
        and isinstance(v, dict)
        and "source" in v
    }


def main(argv: list[str]) -> int:
    dag_id, conf = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"DAG import error in {path}:\n{error}", file=sys.stderr)
        return 2
    dag = bag.get_dag(dag_id)
    if dag is None:
        print(f"no DAG {dag_id!r} in {bag.dag_folder}", file=sys.stderr)
        return 2
    if conf.get("output_dir") and os.environ.get(TOKEN_ENV):
        orphans = fail_orphaned_runs(dag_id, conf["output_dir"])
        if orphans:
            print(
                f"marked failed: {', '.join(orphans)} (left running by a killed `slf run`)", file=sys.stderr
            )
            record_orphans_without_lease(conf, orphans)
    with embedded_run():  # the folders in conf are honoured, a failing gate fails (refresh_run)
        run = _test_watched(dag, conf)
    tis = sorted(run.get_task_instances(), key=lambda ti: (ti.start_date is None, ti.start_date))
    failed = [ti.task_id for ti in tis if ti.state not in ("success", "skipped")]
    # What each task took (the benchmark reads it), and each DAG file's parse time as the
    # dag-processor measures it (DagBag's own statistics).
    tasks = [
        {
            "task_id": ti.task_id,
            "state": str(ti.state),
            "start": ti.start_date.timestamp() if ti.start_date else None,
            "end": ti.end_date.timestamp() if ti.end_date else None,
        }
        for ti in tis
    ]
    parse = {Path(stat.file).name: stat.duration.total_seconds() for stat in bag.dagbag_stats}
    print(
        json.dumps(
            {
                "dag_id": dag_id,
                "run_id": run.run_id,
                "state": str(run.state),
                "not_succeeded": failed,
                "tasks": tasks,
                "parse_seconds": parse,
                "ingested": ingested_sources(dag_id, run.run_id),
            }
        )
    )
    return 0 if str(run.state) == "success" and not failed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
