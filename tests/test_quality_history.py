"""Run history in the warehouse's audit schema and OUT/quality/history.jsonl (DuckDB only, fast)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from slf_warehouse.ingest.loading import MANIFEST_DDL
from slf_warehouse.quality import history
from slf_warehouse.quality.checkpoint import CheckRecord
from slf_warehouse.quality.reconciliations import run_reconciliations
from test_quality_reconciliations import make_warehouse


def add_manifest(path: Path, run_id: str, files: list[tuple[str, str, int, str, str | None]]) -> None:
    """(source, file, rows, status, error text) per delivered file, as ingestion records them."""
    with duckdb.connect(str(path)) as con:
        con.execute(MANIFEST_DDL.replace("wh.audit.", "audit."))
        for i, (source, file, rows, status, error) in enumerate(files):
            con.execute(
                "INSERT INTO audit.load_manifest VALUES (?, ?, ?, ?, NULL, ?, 10, ?, NULL, now(), ?, NULL, "
                "?, NULL)",
                [f"{run_id}-{i}", run_id, source, file, "ab" * 32, rows, status, error],
            )


RUN1_FILES = [
    ("posteringer", "posteringer_2024-01.csv", 3, "loaded", None),
    ("posteringer", "posteringer_2024-02.csv", 1, "loaded", None),
    (
        "loen",
        "loen_2024-03.csv",
        40,
        "rejected",
        "loen_2024-03.csv, line 4: bad\nloen_2024-03.csv, line 9: bad",
    ),
    ("enheder", "enheder.csv", 0, "skipped-duplicate", None),
]

RECORDS = [
    CheckRecord(
        "raw_posteringer", "expect_table_row_count_to_be_between", None, True, "error", observed_value=4
    ),
    CheckRecord(
        "raw_posteringer",
        "expect_column_sum_to_be_between",
        "apmf_salary_postings",
        False,
        "error",
        observed_value=1,
    ),
    CheckRecord(
        "marts_fct_programme_postings",
        "expect_column_values_to_be_in_set",
        "apmf_pays_salary",
        False,
        "error",
        unexpected_count=1,
        unexpected_examples=[True],
        unexpected_rows=[{"posting_id": "posteringer_2024-02.csv:7"}],
    ),
    CheckRecord(
        "marts_rpt_budget_vs_actual",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "allocated_dkk, spent_dkk",
        False,
        "warning",
        unexpected_count=1,
    ),
]


@pytest.fixture()
def build(tmp_path: Path) -> Path:
    path = make_warehouse(tmp_path / "build.duckdb")
    add_manifest(path, "run-1", RUN1_FILES)
    return path


def test_a_run_is_recorded_with_its_files_and_summary(build: Path, tmp_path: Path) -> None:
    quality = tmp_path / "quality"
    history.start_run(build, "run-1")
    with duckdb.connect(str(build)) as con:
        history.record_expectation_results(con, "run-1", RECORDS)
        run_reconciliations(con, "run-1")
    summary = history.record_run(
        build, "run-1", status="refused", finished=True, quality_success=False, history_dir=quality
    )

    assert summary["status"] == "refused" and summary["quality_success"] is False
    assert (summary["checks"], summary["checks_failed"], summary["checks_warned"]) == (4, 2, 1)
    assert summary["reconciliations"] == 8 and summary["reconciliations_failed"] == 0
    assert (summary["files_loaded"], summary["files_rejected"]) == (2, 1)
    assert (summary["rows_loaded"], summary["rows_rejected"]) == (4, 40)
    assert summary["failed"] == [
        "marts_fct_programme_postings: expect_column_values_to_be_in_set on apmf_pays_salary",
        "raw_posteringer: expect_column_sum_to_be_between on apmf_salary_postings",
    ]
    with duckdb.connect(str(build), read_only=True) as con:
        runs = con.execute(
            "SELECT run_id, status, started_at < finished_at, override_reason, build_file FROM audit.runs"
        ).fetchall()
        files = con.execute(
            "SELECT source, file, rows, status, errors FROM audit.run_files WHERE run_id = 'run-1' "
            "ORDER BY file"
        ).fetchall()
        stored = con.execute(
            "SELECT suite, column_name, success, severity, unexpected_rows FROM "
            "audit.expectation_results WHERE NOT success ORDER BY suite"
        ).fetchall()
    assert runs == [("run-1", "refused", True, None, "build.duckdb")]
    assert files == [
        ("enheder", "enheder.csv", 0, "skipped-duplicate", 0),
        ("loen", "loen_2024-03.csv", 40, "rejected", 2),
        ("posteringer", "posteringer_2024-01.csv", 3, "loaded", 0),
        ("posteringer", "posteringer_2024-02.csv", 1, "loaded", 0),
    ]
    assert stored[0][0] == "marts_fct_programme_postings"
    assert json.loads(stored[0][4]) == [{"posting_id": "posteringer_2024-02.csv:7"}]
    lines = (quality / "history.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["run_id"] == "run-1"


def test_a_later_status_keeps_the_start_and_records_the_override(build: Path, tmp_path: Path) -> None:
    history.start_run(build, "run-1", started_at=datetime(2026, 11, 23, 6, 0))
    history.record_run(
        build,
        "run-1",
        status="passed_with_override",
        override_reason="Kendt fejl, rettes i april",
        history_dir=tmp_path,
    )
    history.record_run(build, "run-1", status="published", finished=True, history_dir=tmp_path)

    summary = history.run_summary(build, "run-1")
    assert summary["status"] == "published" and summary["started_at"] == "2026-11-23T06:00:00Z"
    assert summary["override_reason"] == "Kendt fejl, rettes i april"
    assert history.override_for(build, "run-1") == "Kendt fejl, rettes i april"
    assert history.override_for(build, "run-other") is None
    assert [e["status"] for e in map(json.loads, (tmp_path / "history.jsonl").read_text().splitlines())] == [
        "passed_with_override",
        "published",
    ]
    # The last line per run counts.
    (entry,) = history.read_history(tmp_path)
    assert entry["status"] == "published"


def test_an_unknown_status_is_refused(build: Path) -> None:
    with pytest.raises(ValueError, match="expected one of"):
        history.record_run(build, "run-1", status="done")


def test_history_accumulates_across_published_builds_and_failed_runs_stay_in_jsonl(
    build: Path, tmp_path: Path
) -> None:
    quality = tmp_path / "quality"
    history.record_run(build, "run-1", status="published", finished=True, history_dir=quality)
    # The next run's build is a copy of the published warehouse (WarehouseStore.new_build).
    second = tmp_path / "build-2.duckdb"
    shutil.copyfile(build, second)
    history.record_run(second, "run-2", status="refused", finished=True, history_dir=quality)
    third = tmp_path / "build-3.duckdb"
    shutil.copyfile(build, third)  # run-2 was not published: run-3 starts from run-1's warehouse
    history.record_run(third, "run-3", status="published", finished=True, history_dir=quality)

    with duckdb.connect(str(third), read_only=True) as con:
        assert [r[0] for r in con.execute("SELECT run_id FROM audit.runs ORDER BY run_id").fetchall()] == [
            "run-1",
            "run-3",
        ]
    assert history.run_summary(second, "run-2")["status"] == "refused"
    runs = history.read_history(quality, third)
    assert [(r["run_id"], r["status"]) for r in runs] == [
        ("run-1", "published"),
        ("run-2", "refused"),
        ("run-3", "published"),
    ]
    assert [r["run_id"] for r in history.read_history(quality, third, limit=2)] == ["run-2", "run-3"]
    # Without history.jsonl the warehouse's own runs are still there.
    (quality / "history.jsonl").unlink()
    assert [r["run_id"] for r in history.read_history(quality, third)] == ["run-1", "run-3"]


RUN_RESULTS = {
    "metadata": {"invocation_id": "inv-1", "generated_at": "2026-11-23T06:01:00Z"},
    "results": [
        {
            "unique_id": "model.slf_warehouse.fct_payroll",
            "status": "success",
            "execution_time": 0.4,
            "message": "OK",
            "failures": None,
        },
        {
            "unique_id": "test.slf_warehouse.assert_no_apmf_salary_postings",
            "status": "fail",
            "execution_time": 0.03,
            "message": "Got 1 result, configured to fail if != 0",
            "failures": 1,
        },
    ],
}


def test_dbt_results_from_run_results_json(build: Path, tmp_path: Path) -> None:
    path = tmp_path / "target" / "run_results.json"
    path.parent.mkdir()
    path.write_text(json.dumps(RUN_RESULTS), encoding="utf-8")

    assert history.record_dbt_results(build, "run-1", path) == 2
    assert history.record_dbt_results(build, "run-1", path) == 2  # replaced, not added
    with duckdb.connect(str(build), read_only=True) as con:
        rows = con.execute(
            "SELECT unique_id, resource_type, status, failures, invocation_id FROM audit.dbt_results "
            "ORDER BY unique_id"
        ).fetchall()
    assert rows == [
        ("model.slf_warehouse.fct_payroll", "model", "success", None, "inv-1"),
        ("test.slf_warehouse.assert_no_apmf_salary_postings", "test", "fail", 1, "inv-1"),
    ]


def test_cosmos_callback_keeps_run_results_per_task(
    build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "cosmos-tmp-project"
    (project / "target").mkdir(parents=True)
    (project / "target" / "run_results.json").write_text(json.dumps(RUN_RESULTS), encoding="utf-8")
    out = tmp_path / "out"
    monkeypatch.setenv("SLF_OUTPUT_DIR", str(out))  # the deployment's folder: no param names one
    context = {
        "params": {"quality_override": ""},
        "run_id": "manual__2026-11-23T06:00:00+00:00",
        "ti": SimpleNamespace(task_id="dbt_build"),
    }

    saved = history.save_dbt_run_results(str(project), context=context)

    folder = history.dbt_run_results_dir(out / "quality", context["run_id"])
    assert saved == folder / "run_results.dbt_build.json" and saved.is_file()
    assert history.record_dbt_results(build, "run-1", folder) == 2
    assert history.save_dbt_run_results(str(tmp_path / "nothing"), dest_dir=tmp_path / "x") is None


def test_a_run_that_stopped_before_publication_is_recorded(build: Path, tmp_path: Path) -> None:
    from slf_warehouse.quality.step import finish_failed_run

    quality = tmp_path / "quality"
    history.start_run(build, "run-1")
    summary = finish_failed_run(
        quality, "run-1", build=build, failed_steps=["dbt_build"], render_report=False
    )
    assert summary["status"] == "failed" and summary["failed_steps"] == ["dbt_build"]
    assert history.run_summary(build, "run-1")["status"] == "failed"
    # A run the gate refused stays "refused".
    history.record_run(build, "run-2", status="refused", finished=True)
    assert finish_failed_run(quality, "run-2", build=build, render_report=False)["status"] == "refused"
    # No build file (prepare_build itself failed): history.jsonl still gets the run.
    finish_failed_run(quality, "run-3", build=tmp_path / "gone.duckdb", failed_steps=["prepare_build"])
    runs = {e["run_id"]: e for e in history.read_history(quality)}
    assert [runs[r]["status"] for r in ("run-1", "run-2", "run-3")] == ["failed", "refused", "failed"]
    assert runs["run-3"]["failed_steps"] == ["prepare_build"]
