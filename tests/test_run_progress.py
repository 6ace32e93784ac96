"""How task states become the steps `slf run` shows, and how a failed run's summary reads."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

from slf_warehouse.run_progress import PlainDisplay, StepBoard, step_of
from slf_warehouse.run_summary import build_summary, format_summary

T0 = 1_800_000_000.0


def task(task_id: str, state: str | None, start: float | None = None, end: float | None = None) -> dict:
    return {
        "task_id": task_id,
        "state": state,
        "start": T0 + start if start is not None else None,
        "end": T0 + end if end is not None else None,
    }


def test_tasks_fold_into_the_steps_an_officer_knows() -> None:
    assert step_of("ingest_posteringer.pull") == step_of("ingest_posteringer.load") == "ingest posteringer"
    assert step_of("dbt_build") == step_of("dbt.stg_ledger_run") == step_of("dbt_build_marts") == "dbt build"
    assert step_of("dbt_docs") == "dbt docs" and step_of("end_run") is None
    assert step_of("quality_decision") == step_of("quality_checkpoint") == "quality checks"


def test_a_step_runs_from_its_first_task_and_counts_its_tasks_working_time() -> None:
    board = StepBoard()
    changed = board.update([task("ingest_loen.pull", "success", 0, 5), task("ingest_loen.load", "queued")])
    assert [(s.name, s.status) for s in changed] == [("ingest loen", "running")]
    changed = board.update([task("ingest_loen.load", "success", 9, 10)])
    assert [(s.name, s.status) for s in changed] == [("ingest loen", "ok")]
    assert board.steps["ingest loen"].seconds == 6.0  # 5 s pull + 1 s load, not the 4 s waiting for the pool


def test_changes_seen_in_one_poll_are_told_in_the_order_they_happened() -> None:
    board = StepBoard()
    board.update([task("quality_checkpoint", "running", 0)])
    changed = board.update([task("quality_checkpoint", "success", 0, 10), task("dbt_docs", "running", 11)])
    assert [(s.name, s.status) for s in changed] == [("quality checks", "ok"), ("dbt docs", "running")]


def test_steps_after_a_failure_are_not_run_rather_than_failed() -> None:
    out = io.StringIO()
    display = PlainDisplay(out)
    display.update(
        [
            task("ingest_posteringer.pull", "success", 0, 1),
            task("ingest_posteringer.load", "failed", 1, 2),
            task("dbt_build", "upstream_failed"),
            task("publish", "upstream_failed"),
            task("end_run", "success", 3, 4),
        ]
    )
    lines = out.getvalue().splitlines()
    assert "  ingest posteringer         FAILED  2.0 s" in lines
    assert "  dbt build                  not run (an earlier step failed)" in lines
    assert "  publish                    not run (an earlier step failed)" in lines
    assert not any("end_run" in line for line in lines)


def test_a_step_quicker_than_one_poll_still_reads_started_then_done() -> None:
    out = io.StringIO()
    display = PlainDisplay(out)
    display.update([task("prepare_build", "success", 0, 0.2)])  # first seen already finished
    display.update([task("prepare_build", "success", 0, 0.2), task("dbt_build", "running", 1)])
    display.update([task("dbt_build", "success", 1, 3)])
    assert out.getvalue().splitlines() == [
        "  prepare build              started",
        "  prepare build              done  0.2 s",
        "  dbt build                  started",
        "  dbt build                  done  2.0 s",
    ]


def test_failed_runs_summary_says_what_was_rejected_and_that_nothing_was_published(tmp_path: Path) -> None:
    out = tmp_path / "out"
    started = time.time() - 5
    report = out / "quarantine" / "posteringer" / "posteringer_2023-03.csv.errors.txt"
    report.parent.mkdir(parents=True)
    report.write_text("posteringer_2023-03.csv, line 7, column beloeb: …\n", encoding="utf-8")
    old = report.with_name("posteringer_2022-01.csv.errors.txt")  # from an earlier run: not this run's
    old.write_text("…", encoding="utf-8")
    os.utime(old, (started - 3600, started - 3600))
    result = {
        "run_id": "manual__x",
        "state": "failed",
        "not_succeeded": ["ingest_posteringer.load"],
        "ingested": {
            "loen": {"source": "loen", "by_status": {"loaded": {"files": 30, "rows": 1440}}},
            "enheder": {"source": "enheder", "by_status": {"skipped-duplicate": {"files": 1, "rows": 34}}},
        },
    }
    summary = build_summary(result, out, started, 12.0)
    assert summary["sources"]["posteringer"] == {
        "loaded": None,
        "unchanged": None,
        "rejected": 1,
        "rows": None,
    }
    assert summary["sources"]["enheder"] == {"loaded": 0, "unchanged": 1, "rejected": 0, "rows": 0}
    text = "\n".join(format_summary(summary, out / "logs" / "slf_refresh.log"))
    assert text.startswith("Refresh FAILED: not published, in 12 s (run manual__x)")
    assert "  posteringer            –          –         1        –" in text
    assert "  all                   30          1         1     1440" in text
    assert "published  nothing (the published warehouse is unchanged)" in text
    json.dumps(summary)  # what --json prints


def test_task_states_from_the_rest_api_feed_the_same_board() -> None:
    from slf_warehouse.run_progress import rest_task_states

    tis: list[dict] = [
        {
            "task_id": "dbt.dbt_producer_watcher",
            "state": "success",
            "start_date": "2026-12-01T06:00:10.5Z",
            "end_date": "2026-12-01T06:00:40.5Z",
            "map_index": -1,
        },
        {
            "task_id": "dbt.stg_ledger.run",
            "state": "running",
            "start_date": "2026-12-01T06:00:11+00:00",
            "end_date": None,
        },
    ]
    board = StepBoard()
    board.update(rest_task_states(tis))
    assert board.steps["dbt build"].status == "running"
    tis[1].update(state="success", end_date="2026-12-01T06:00:41+00:00")
    board.update(rest_task_states(tis))
    assert board.steps["dbt build"].status == "ok" and board.steps["dbt build"].seconds == 60.0


def test_verbose_before_or_after_the_command(monkeypatch) -> None:
    from slf_warehouse import cli

    seen: list[bool] = []
    monkeypatch.setattr(
        cli, "_status", lambda args: seen.append(args.verbose) or 0
    )  # the parsing is under test
    for argv in (["-v", "status"], ["status", "-v"], ["status", "--verbose"], ["status"]):
        cli.main(argv)
    assert seen == [True, True, True, False]


def test_the_watcher_outlives_a_reader_that_went_away(monkeypatch) -> None:
    """`slf run` killed alone: its Airflow process runs on (run_lock), so the watcher must not fail it."""
    from slf_warehouse import run_progress

    r, w = os.pipe()
    os.close(r)  # nobody reads any more
    watcher = run_progress.TaskStateWatcher(w, "slf_refresh", "/nowhere")
    states = [[task("prepare_build", "running", 0)], [task("prepare_build", "success", 0, 1)]]
    # the metadata database's answers, two polls' worth (the pipe is what is under test)
    monkeypatch.setattr(run_progress, "task_states", lambda *a: states.pop(0) if states else [])
    watcher.publish()
    watcher.publish()
    watcher._close()
    assert watcher.out.closed


def test_the_summary_counts_dbt_nodes_that_ran_not_the_letters_exposures(tmp_path: Path) -> None:
    from slf_warehouse.quality.history import dbt_run_results_dir
    from slf_warehouse.run_summary import _dbt

    folder = dbt_run_results_dir(tmp_path, "manual__1")
    folder.mkdir(parents=True)
    results = [
        {"unique_id": "model.slf_warehouse.fct_postings", "status": "success"},
        {"unique_id": "test.slf_warehouse.not_null_x", "status": "pass"},
        {"unique_id": "test.slf_warehouse.unique_y", "status": "fail"},
        {"unique_id": "exposure.slf_warehouse.enhedslisten_slf", "status": "no-op"},
    ]
    (folder / "run_results.json").write_text(json.dumps({"results": results}))
    assert _dbt(tmp_path, "manual__1") == {"models": {"passed": 1}, "tests": {"passed": 1, "failed": 1}}
