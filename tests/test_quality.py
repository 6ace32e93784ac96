"""The quality gate on raw data: suite files, batch queries, and Great Expectations runs (slow).

The mart suites need a dbt build; they are tested in test_quality_marts.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import corrupted_copy, failed_checks
from slf_warehouse.quality import SuiteFileError, load_suites, run_quality_checks
from slf_warehouse.quality.checkpoint import read_batches
from slf_warehouse.quality.suites import is_personal_suite

PROJECT = Path(__file__).resolve().parents[1]
EXPECTATIONS = PROJECT / "expectations"
RAW_SOURCES = ("enheder", "bevillinger", "posteringer", "loen", "social_kapital", "aktiviteter")


# ------------------------------------------------------------------------------------------
# Suite files (no Great Expectations)
# ------------------------------------------------------------------------------------------


def test_every_suite_file_loads_and_covers_the_sources() -> None:
    specs = {s.name: s for s in load_suites(EXPECTATIONS)}
    assert {f"raw_{source}" for source in RAW_SOURCES} <= set(specs)
    assert {
        "marts_fct_allocations",
        "marts_rpt_survey_unit_scores",
        "marts_fct_payroll",
        "marts_rpt_survey_fit",
    } <= set(specs)
    for spec in specs.values():
        assert spec.batch_query.strip().upper().startswith(("SELECT", "WITH")), spec.name
        assert spec.layer in ("raw", "marts"), spec.name
        assert spec.expectations, spec.name
        for expectation in spec.expectations:
            assert expectation["severity"] in ("critical", "warning")
        # Every suite checks that its batch is not empty.
        assert any(e["type"] == "expect_table_row_count_to_be_between" for e in spec.expectations), spec.name


def test_advisory_checks_are_warnings() -> None:
    (budget,) = load_suites(EXPECTATIONS, ["marts_rpt_budget_vs_actual"])
    (overspend,) = [
        e for e in budget.expectations if e["type"] == "expect_column_pair_values_a_to_be_greater_than_b"
    ]
    assert overspend["meta"]["severity"] == "warning" and overspend["severity"] == "warning"
    assert any(e["severity"] == "critical" for e in budget.expectations)


def test_suites_are_selected_by_name_or_glob() -> None:
    assert [s.name for s in load_suites(EXPECTATIONS, ["raw_*"])] == sorted(f"raw_{s}" for s in RAW_SOURCES)
    assert [s.name for s in load_suites(EXPECTATIONS, ["raw_loen", "raw_loen"])] == ["raw_loen"]
    with pytest.raises(SuiteFileError, match="no suite named 'raw_nothing'"):
        load_suites(EXPECTATIONS, ["raw_nothing"])


GOOD_SUITE = {
    "name": "probe",
    "meta": {"batch_query": "SELECT 1 AS x", "layer": "raw"},
    "expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(name="other"), "'name' must equal the file name"),
        (lambda s: s["meta"].pop("batch_query"), "batch_query"),
        (lambda s: s["expectations"][0].update(meta={"severity": "fatal"}), "meta.severity must be one of"),
        (lambda s: s["expectations"][0].update(type="row_count"), "must name a GE expectation"),
        (lambda s: s["expectations"][0].update(kwarg={}), "unknown keys"),
        (lambda s: s["meta"].update(row_id_columns=["employee_key"]), "personal data"),
        (lambda s: s.update(expectations=[]), "non-empty list"),
    ],
)
def test_malformed_suite_files_are_refused(tmp_path: Path, change, message: str) -> None:
    suite = json.loads(json.dumps(GOOD_SUITE))
    change(suite)
    (tmp_path / "probe.json").write_text(json.dumps(suite), encoding="utf-8")
    with pytest.raises(SuiteFileError, match=message):
        load_suites(tmp_path)


def test_importing_the_package_does_not_import_great_expectations() -> None:
    code = "import sys, slf_warehouse.quality; assert 'great_expectations' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------
# Batch queries on the sample warehouse (DuckDB only)
# ------------------------------------------------------------------------------------------


def test_raw_batch_queries_run_on_the_sample(raw_warehouse: Path) -> None:
    specs = load_suites(EXPECTATIONS, ["raw_*"])
    batches = read_batches(raw_warehouse, specs)
    for spec in specs:
        batch = batches[spec.name]
        assert not isinstance(batch, str), f"{spec.name}: {batch}"
        assert len(batch) > 0
        assert not {"medarbejder_key", "medarbejdernr", "navn"} & set(batch.columns)
    with duckdb.connect(str(raw_warehouse), read_only=True) as con:
        postings = con.execute("SELECT count(*) FROM raw.posteringer").fetchall()[0][0]
    # The ledger is checked through an aggregate, not line by line.
    assert len(batches["raw_posteringer"]) < postings
    assert batches["raw_posteringer"]["postings"].sum() == postings


def test_missing_table_gives_a_message_not_an_exception(raw_warehouse: Path) -> None:
    specs = load_suites(EXPECTATIONS, ["marts_fct_payroll"])
    message = read_batches(raw_warehouse, specs)["marts_fct_payroll"]
    assert isinstance(message, str)
    assert "missing from the warehouse" in message and "fct_payroll" in message and "dbt build" in message


def test_batch_selecting_personal_data_is_refused(raw_warehouse: Path, tmp_path: Path) -> None:
    suite = json.loads(json.dumps(GOOD_SUITE))
    suite["meta"]["batch_query"] = "SELECT medarbejder_key, rolle FROM raw.loen"
    (tmp_path / "probe.json").write_text(json.dumps(suite), encoding="utf-8")
    message = read_batches(raw_warehouse, load_suites(tmp_path))["probe"]
    assert isinstance(message, str) and "personal data (medarbejder_key)" in message


def test_missing_warehouse_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_batches(tmp_path / "nowhere.duckdb", load_suites(EXPECTATIONS, ["raw_enheder"]))


# ------------------------------------------------------------------------------------------
# Great Expectations runs
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_raw_suites_pass_on_the_sample(raw_warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "quality"
    result = run_quality_checks(raw_warehouse, out, "test-run-1", EXPECTATIONS, suites=["raw_*"])

    assert result.success, result.failed
    assert result.failed == [] and result.warnings == []
    assert {s.name for s in result.suites} == {f"raw_{source}" for source in RAW_SOURCES}
    assert all(s.success and s.batch_rows for s in result.suites)
    specs = load_suites(EXPECTATIONS, ["raw_*"])
    assert len(result.results) == sum(len(s.expectations) for s in specs)
    assert all(r.success for r in result.results)

    assert result.data_docs_index == out / "data_docs" / "index.html"
    assert result.data_docs_index.is_file()
    index = result.data_docs_index.read_text(encoding="utf-8")
    assert "raw_posteringer" in index and "test-run-1" in index

    assert result.results_path == out / "quality_results.json"
    report = json.loads(result.results_path.read_text(encoding="utf-8"))
    assert report["success"] is True and report["run_id"] == "test-run-1"
    assert len(report["results"]) == len(result.results)

    # A second run into the same folder works and keeps the first run's results for Data Docs.
    again = run_quality_checks(raw_warehouse, out, "test-run-2", EXPECTATIONS, suites=["raw_*"])
    assert again.success
    stored = list((out / "gx" / "uncommitted" / "validations" / "raw_loen").rglob("*.json"))
    assert len(stored) == 2

    # No pseudonym (let alone a name or employee number) leaves the warehouse.
    with duckdb.connect(str(raw_warehouse), read_only=True) as con:
        keys = {k for (k,) in con.execute("SELECT DISTINCT medarbejder_key FROM raw.loen").fetchall()}
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".html", ".yml"):
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not any(k in text for k in keys), path


CORRUPTIONS = {
    "invalid funding source": (
        "UPDATE raw.bevillinger SET finansieringskilde = 'SPONSOR' WHERE _source_line = 2",
        ("raw_bevillinger", "expect_column_values_to_be_in_set", "finansieringskilde"),
        "SPONSOR",
    ),
    "survey answer of 7": (
        "UPDATE raw.social_kapital SET sk3 = 7 WHERE _source_line = 5 AND aar = 2023",
        ("raw_social_kapital", "expect_column_values_to_be_in_set", "sk3"),
        7,
    ),
    "employment fraction above 1": (
        "UPDATE raw.loen SET beskaeftigelsesgrad = 1.2 WHERE _source_line = 2 AND _period = '2022-03'",
        ("raw_loen", "expect_column_values_to_be_between", "beskaeftigelsesgrad"),
        1.2,
    ),
    "names stored with payroll": (
        "ALTER TABLE raw.loen ADD COLUMN navn VARCHAR",
        ("raw_loen", "expect_column_max_to_be_between", "clear_identity_columns"),
        None,
    ),
    "duplicate allocation id": (
        "UPDATE raw.bevillinger SET bevilling_id = 'BEV-2022-001' WHERE _source_line = 3",
        ("raw_bevillinger", "expect_column_values_to_be_unique", "bevilling_id"),
        "BEV-2022-001",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corruption_fails_exactly_the_expected_check(case: str, raw_warehouse: Path, tmp_path: Path) -> None:
    statement, expected, example = CORRUPTIONS[case]
    warehouse = corrupted_copy(raw_warehouse, tmp_path / "corrupt.duckdb", statement)

    result = run_quality_checks(
        warehouse, tmp_path / "quality", f"corrupt-{case}", EXPECTATIONS, suites=["raw_*"]
    )

    assert not result.success
    assert failed_checks(result) == {expected}
    assert len(result.failed) == 1
    assert result.failed[0].startswith(f"{expected[0]}: {expected[1]} on {expected[2]}")
    (record,) = [r for r in result.results if not r.success]
    if example is not None and is_personal_suite(expected[0]):
        # payroll and survey suites: the rule, the column and the count, never values or rows
        assert record.unexpected_count == 1
        assert record.unexpected_examples == [] and record.unexpected_rows == []
        assert record.observed_value is None
    elif example is not None:
        assert example in record.unexpected_examples
        assert record.unexpected_count == 1 or expected[1].endswith("_unique")
        # The offending line is named: its file and line (raw_loen is aggregated: the group's first line).
        assert record.unexpected_rows and {"_source_file"} < set(record.unexpected_rows[0])
        assert set(record.unexpected_rows[0]) & {"_source_line", "first_line"}
    report = json.loads(result.results_path.read_text(encoding="utf-8"))
    assert report["success"] is False and report["failed"] == result.failed


@pytest.mark.slow
def test_warning_is_reported_but_does_not_fail_the_gate(raw_warehouse: Path, tmp_path: Path) -> None:
    warehouse = corrupted_copy(
        raw_warehouse,
        tmp_path / "warn.duckdb",
        "UPDATE raw.posteringer SET finansieringskilde = 'PULJE' "
        "WHERE projekt = 'DRIFT' AND _period = '2022-01' AND _source_line = 2",
    )

    result = run_quality_checks(
        warehouse, tmp_path / "quality", "warn", EXPECTATIONS, suites=["raw_posteringer"]
    )

    assert result.success and result.failed == []
    assert len(result.warnings) == 1 and "funding_outside_programme" in result.warnings[0]
    (record,) = [r for r in result.results if not r.success]
    assert record.severity == "warning" and record.observed_value == 1


@pytest.mark.slow
def test_suite_whose_table_is_missing_fails_with_a_clear_message(raw_warehouse: Path, tmp_path: Path) -> None:
    result = run_quality_checks(
        raw_warehouse,
        tmp_path / "quality",
        "no-marts",
        EXPECTATIONS,
        suites=["raw_enheder", "marts_fct_payroll"],
    )

    assert not result.success
    assert len(result.failed) == 1
    assert result.failed[0].startswith("marts_fct_payroll: batch_query")
    assert "missing from the warehouse" in result.failed[0]
    assert all(r.success for r in result.results if r.suite == "raw_enheder")
    assert result.data_docs_index.is_file()
    outcome = {s.name: s for s in result.suites}["marts_fct_payroll"]
    assert not outcome.success and outcome.batch_rows is None and "fct_payroll" in outcome.message
