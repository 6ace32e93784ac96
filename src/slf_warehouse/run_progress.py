"""What `slf run` shows while the refresh runs: its steps, each as it starts and ends, with durations.

The refresh's truth is its task instances' states in Airflow. Whoever watches the run (the embedded
`dag.test()` process, airflow_runner, polling the metadata database; a run through the REST API,
polling ``GET /api/v2/dags/{dag}/dagRuns/{run}/taskInstances``) hands the task list, as
``{"task_id", "state", "start", "end"}`` dicts (epoch seconds), to a ``StepBoard``; the board folds
tasks into the steps a finance officer knows (ingest per source, dbt, quality, publish, answers),
and a display prints them: a live table on a terminal (Rich, which Airflow depends on), a plain line
per step start and end otherwise (CI, cron, a pipe).

The watcher side writes one JSON line per change to a file descriptor (``PROGRESS_FD_ENV``), so the
`slf run` process never imports Airflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import IO, Any, ClassVar, Self

PROGRESS_FD_ENV = "SLF_PROGRESS_FD"
POLL_SECONDS = 0.4

DONE_STATES = {"success", "skipped", "failed", "upstream_failed", "removed"}
FAILED_STATES = {"failed", "upstream_failed"}
FINISHED = ("ok", "failed", "skipped", "not run")  # a step's statuses once all its tasks are done
RUNNING_STATES = {"running", "deferred", "up_for_retry", "up_for_reschedule", "restarting", "awaiting_input"}


def step_of(task_id: str) -> str | None:
    """The step a task belongs to; None for bookkeeping the officer need not see (the teardown)."""
    if task_id == "prepare_build":
        return "prepare build"
    if task_id.startswith("ingest_"):
        return "ingest " + task_id.removeprefix("ingest_").split(".")[0]
    if task_id == "dbt_docs":
        return "dbt docs"
    if task_id.startswith("dbt"):  # one `dbt build` task, per-layer tasks or Cosmos' per-model group
        return "dbt build"
    return {
        "quality_checkpoint": "quality checks",
        "quality_decision": "quality checks",  # a refused gate waiting for a finance lead is still that step
        "publish": "publish",
        "render_answers": "answers",
        "record_outcome": "record outcome",
    }.get(task_id)


@dataclass
class Step:
    name: str
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def states(self) -> list[str]:
        return [str(t.get("state") or "none") for t in self.tasks.values()]

    @property
    def status(self) -> str:
        """pending, running, ok, skipped, failed, or "not run" (an earlier step failed)."""
        states = self.states
        if "failed" in states:
            return "failed"
        if "upstream_failed" in states and all(s in DONE_STATES for s in states):
            return "not run"
        if states and all(s == "skipped" for s in states):
            return "skipped"
        if states and all(s in DONE_STATES for s in states):
            return "ok"
        if any(s in RUNNING_STATES or s in DONE_STATES for s in states):
            return "running"
        return "pending"

    @property
    def started(self) -> float | None:
        starts = [t["start"] for t in self.tasks.values() if t.get("start")]
        return min(starts) if starts else None

    @property
    def event_time(self) -> float:
        """When the step's latest change happened: its end once finished, else its start."""
        ends = [t["end"] for t in self.tasks.values() if t.get("end")]
        if self.status in FINISHED and ends:
            return max(ends)
        return self.started or 0.0

    @property
    def seconds(self) -> float | None:
        """The time its tasks ran, added up (a load waiting for the one-slot writer pool is not
        counted); while it runs, the time since it started."""
        if self.started is None:
            return None
        if self.status == "not run":
            return None
        if self.status in FINISHED:
            return sum(t["end"] - t["start"] for t in self.tasks.values() if t.get("start") and t.get("end"))
        return time.time() - self.started


class StepBoard:
    """The steps of one run, in the order they started; ``update`` returns the steps whose status changed."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}

    def update(self, tasks: Iterable[dict[str, Any]]) -> list[Step]:
        before = {name: s.status for name, s in self.steps.items()}
        for task in tasks:
            name = step_of(str(task["task_id"]))
            if name is None:
                continue
            self.steps.setdefault(name, Step(name)).tasks[task["task_id"]] = task
        changed = [s for name, s in self.steps.items() if s.status != before.get(name, "pending")]
        return sorted(changed, key=lambda s: s.event_time)

    def ordered(self) -> list[Step]:
        return sorted(self.steps.values(), key=lambda s: (s.started is None, s.started or 0))

    def failed(self) -> list[Step]:
        return [s for s in self.ordered() if s.status == "failed"]


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


class PlainDisplay:
    """A line per step start and end: for logs, CI and cron (no terminal control codes)."""

    MARK: ClassVar[dict[str, str]] = {
        "running": "started",
        "ok": "done",
        "failed": "FAILED",
        "skipped": "skipped",
        "not run": "not run (an earlier step failed)",
    }

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.board = StepBoard()
        self.announced: set[str] = set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, tasks: list[dict[str, Any]]) -> None:
        for step in self.board.update(tasks):
            if step.status == "pending":
                continue
            # A step quicker than one poll is first seen finished; its start still gets its line, so
            # every step that ran reads "started" then "done" whatever the timing.
            if step.name not in self.announced and step.started is not None and step.status != "running":
                print(f"  {step.name:<26} {self.MARK['running']}", file=self.stream, flush=True)
            if step.started is not None:
                self.announced.add(step.name)
            took = (
                f"  {_seconds(step.seconds)}" if step.seconds is not None and step.status != "running" else ""
            )
            print(f"  {step.name:<26} {self.MARK[step.status]}{took}", file=self.stream, flush=True)


class LiveDisplay:
    """A table that redraws on a terminal, with a spinner on the running steps (Rich)."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.board = StepBoard()
        self.console = Console(file=stream)
        self.live = Live(
            self._render(),
            console=self.console,
            refresh_per_second=8,
            transient=False,
            get_renderable=self._render,
        )

    def _render(self):
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 2))
        table.add_column(width=2)
        table.add_column(min_width=24)
        table.add_column(justify="right", min_width=8)
        marks = {
            "ok": Text("✓", style="green"),
            "failed": Text("✗", style="bold red"),
            "skipped": Text("–", style="dim"),
            "not run": Text("–", style="dim"),
        }
        for step in self.board.ordered():
            mark = Spinner("dots") if step.status == "running" else marks.get(step.status, Text("·"))
            name = step.name + (" (not run: an earlier step failed)" if step.status == "not run" else "")
            table.add_row(
                mark,
                Text(name, style="red" if step.status == "failed" else ""),
                Text(_seconds(step.seconds), style="dim"),
            )
        if not self.board.steps:
            table.add_row(Spinner("dots"), Text("starting Airflow"), Text(""))
        return table

    def __enter__(self) -> Self:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def update(self, tasks: list[dict[str, Any]]) -> None:
        self.board.update(tasks)


def display_for(stream: IO[str], live: bool | None = None) -> PlainDisplay | LiveDisplay:
    """Rich's live table on a terminal, plain lines elsewhere."""
    if live is None:
        live = stream.isatty() and os.environ.get("TERM") != "dumb"
    return LiveDisplay(stream) if live else PlainDisplay(stream)


def follow(stream: IO[str], on_tasks: Callable[[list[dict[str, Any]]], None]) -> threading.Thread:
    """Read the watcher's JSON lines from ``stream`` in a thread; each holds the full task list."""

    def read() -> None:
        for line in stream:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and isinstance(event.get("tasks"), list):
                on_tasks(event["tasks"])

    thread = threading.Thread(target=read, name="slf-progress", daemon=True)
    thread.start()
    return thread


# --- where task states come from ----------------------------------------------------------------


def _epoch(value: str | None) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp() if value else None


def rest_task_states(task_instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``task_instances`` of ``GET /api/v2/dags/{dag}/dagRuns/{run}/taskInstances`` (a run
    triggered through the REST API) as the board takes them."""
    return [
        {
            "task_id": ti["task_id"],
            "state": ti.get("state"),
            "start": _epoch(ti.get("start_date")),
            "end": _epoch(ti.get("end_date")),
        }
        for ti in task_instances
    ]


# The embedded run: a thread inside the process that runs dag.test().


def task_states(dag_id: str, output_dir: str, since: float) -> list[dict[str, Any]]:
    """The task instances of the dag.test run of ``dag_id`` on ``output_dir`` started after ``since``."""
    from datetime import datetime

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy import select

    after = datetime.fromtimestamp(since, tz=UTC)
    with create_session() as session:
        runs = session.scalars(
            select(DagRun)
            .where(
                DagRun.dag_id == dag_id,
                DagRun.triggered_by == DagRunTriggeredByType.TEST,
                DagRun.run_after >= after,
            )
            .order_by(DagRun.id.desc())
        ).all()
        run = next((r for r in runs if (r.conf or {}).get("output_dir") == output_dir), None)
        if run is None:
            return []
        return [
            {
                "task_id": ti.task_id,
                "state": str(ti.state) if ti.state else None,
                "start": ti.start_date.timestamp() if ti.start_date else None,
                "end": ti.end_date.timestamp() if ti.end_date else None,
            }
            for ti in run.get_task_instances(session=session)
        ]


class TaskStateWatcher:
    """Polls the run's task states and writes the list to ``fd`` whenever it changed."""

    def __init__(self, fd: int, dag_id: str, output_dir: str) -> None:
        self.out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self.dag_id, self.output_dir, self.since = dag_id, output_dir, time.time() - 1
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._poll, name="slf-task-states", daemon=True)
        self.last: list[dict[str, Any]] | None = None

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        self.publish()  # the final states, once more
        self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):  # the reader is gone: what was buffered has nowhere to go
            self.out.close()

    def publish(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            tasks = task_states(self.dag_id, self.output_dir, self.since)
        except SQLAlchemyError as e:  # a busy SQLite file: the next poll will see it
            print(f"progress: task states not read this time ({type(e).__name__})", file=sys.stderr)
            return
        if tasks and tasks != self.last and not self.out.closed:
            self.last = tasks
            try:
                self.out.write(json.dumps({"tasks": tasks}) + "\n")
            except OSError:  # `slf run` was killed; the run goes on without anyone watching
                self._close()

    def _poll(self) -> None:
        while not self.stopped.wait(POLL_SECONDS):
            self.publish()
