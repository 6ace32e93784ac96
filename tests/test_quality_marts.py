"""The quality gate on the marts: the sample ingested, built with dbt, then every suite run (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import corrupted_copy, failed_checks
from slf_warehouse.quality import load_suites, run_quality_checks

PROJECT = Path(__file__).resolve().parents[1]
EXPECTATIONS = PROJECT / "expectations"

pytestmark = pytest.mark.slow


def test_every_suite_passes_on_the_built_sample(built_warehouse: Path, tmp_path: Path) -> None:
    result = run_quality_checks(built_warehouse, tmp_path / "quality", "marts-ok", EXPECTATIONS)

    assert result.success, result.failed
    assert result.failed == [] and result.warnings == []
    names = {s.name for s in load_suites(EXPECTATIONS)}
    assert {s.name for s in result.suites} == names
    assert all(s.success and s.batch_rows for s in result.suites), [s for s in result.suites if not s.success]
    assert all(r.expectation_type != "batch_query" for r in result.results)
    assert result.data_docs_index.is_file()


MART_CORRUPTIONS = {
    "suppressed unit shown with a score": (
        [
            "UPDATE marts.rpt_survey_unit_scores SET social_capital_index = 9.5 "
            "WHERE rowid = (SELECT min(rowid) FROM marts.rpt_survey_unit_scores WHERE is_suppressed)"
        ],
        {
            (
                "marts_rpt_survey_unit_scores",
                "expect_column_values_to_be_in_set",
                "suppressed_unit_shows_scores",
            )
        },
    ),
    "R² above 1": (
        ["UPDATE marts.rpt_survey_fit SET r_squared = 1.3 WHERE is_latest_year"],
        {
            ("marts_rpt_survey_fit", "expect_column_values_to_be_between", "r_squared"),
            (
                "marts_rpt_survey_fit",
                "expect_column_values_to_be_in_set",
                "r_squared_excludes_suppressed_units",
            ),
        },
    ),
    "FTE above 1": (
        ["UPDATE marts.fct_payroll SET fte = 1.5 WHERE rowid = 0"],
        {("marts_fct_payroll", "expect_column_values_to_be_between", "fte")},
    ),
    "negative allocation": (
        ["UPDATE marts.fct_allocations SET amount_dkk = -1 WHERE rowid = 0"],
        {("marts_fct_allocations", "expect_column_values_to_be_between", "amount_dkk")},
    ),
}


@pytest.mark.parametrize("case", list(MART_CORRUPTIONS))
def test_mart_corruption_fails_exactly_the_expected_checks(
    case: str, built_warehouse: Path, tmp_path: Path
) -> None:
    statements, expected = MART_CORRUPTIONS[case]
    warehouse = corrupted_copy(built_warehouse, tmp_path / "corrupt.duckdb", *statements)
    suites = sorted({suite for suite, _, _ in expected})

    result = run_quality_checks(warehouse, tmp_path / "quality", "corrupt", EXPECTATIONS, suites=suites)

    assert not result.success
    assert failed_checks(result) == expected
    assert len(result.failed) == len(expected)


def test_overspending_is_a_warning_only(built_warehouse: Path, tmp_path: Path) -> None:
    warehouse = corrupted_copy(
        built_warehouse,
        tmp_path / "overspent.duckdb",
        "UPDATE marts.rpt_budget_vs_actual SET spent_dkk = allocated_dkk + 1000, remaining_dkk = -1000 "
        "WHERE rowid = 0",
    )

    result = run_quality_checks(
        warehouse, tmp_path / "quality", "overspent", EXPECTATIONS, suites=["marts_rpt_budget_vs_actual"]
    )

    assert result.success and result.failed == []
    assert len(result.warnings) == 1
    assert (
        "expect_column_pair_values_a_to_be_greater_than_b on allocated_dkk, spent_dkk" in result.warnings[0]
    )
    (record,) = [r for r in result.results if not r.success]
    assert record.severity == "warning" and record.unexpected_rows
