"""Reconciliations on a small hand-made warehouse (DuckDB only, fast).

`make_warehouse` is also used by test_quality_history.py and test_quality_report.py.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from slf_warehouse.quality.reconciliations import (
    compute_reconciliations,
    read_reconciliations,
    run_reconciliations,
)

BASELINE = """
CREATE SCHEMA raw; CREATE SCHEMA marts; CREATE SCHEMA audit;
CREATE TABLE raw.posteringer (bilagsnr VARCHAR, art VARCHAR, projekt VARCHAR, finansieringskilde VARCHAR,
    beloeb DECIMAL(18, 2), _period VARCHAR, _source_file VARCHAR, _source_line INTEGER, _load_id VARCHAR);
CREATE TABLE raw.loen (medarbejder_key VARCHAR, beloeb DECIMAL(18, 2), _period VARCHAR, _source_file VARCHAR,
    _source_line INTEGER, _load_id VARCHAR);
CREATE TABLE raw.enheder (enhed_id VARCHAR);
INSERT INTO raw.enheder VALUES ('SKOLE-001'), ('FF-SLF');
INSERT INTO raw.posteringer VALUES
    ('1', '1.1', 'SLF', 'OPSPARING', 100000, '2024-01', 'posteringer_2024-01.csv', 2, 'l1'),
    ('2', '4.0', 'SLF', 'APMF', 20000, '2024-01', 'posteringer_2024-01.csv', 3, 'l1'),
    ('3', '7.9', 'SLF', 'APMF', -50000, '2024-01', 'posteringer_2024-01.csv', 4, 'l1'),
    ('4', '1.1', 'SLF', 'OPSPARING', 100000, '2024-02', 'posteringer_2024-02.csv', 2, 'l2');
INSERT INTO raw.loen SELECT person, 20000, period, 'loen_' || period || '.csv', line, load_id
    FROM (VALUES ('2024-01', 'p1'), ('2024-02', 'p2')) AS m(period, load_id),
         (VALUES ('aaaa', 2), ('bbbb', 3), ('cccc', 4), ('dddd', 5), ('eeee', 6)) AS p(person, line);
CREATE TABLE marts.fct_programme_postings AS
    SELECT _source_file || ':' || _source_line AS posting_id, bilagsnr AS voucher_no,
           CAST(_period || '-01' AS DATE) AS posting_month, CAST(left(_period, 4) AS INTEGER) AS budget_year,
           art AS economic_type, CAST(left(art, 1) AS INTEGER) AS main_type,
           finansieringskilde AS funding_source, beloeb AS amount_dkk,
           CASE WHEN beloeb < 0 THEN 'income' ELSE 'expense' END AS flow,
           _source_file AS source_file, _source_line AS source_line
    FROM raw.posteringer WHERE projekt = 'SLF';
CREATE TABLE marts.fct_payroll AS
    SELECT medarbejder_key AS employee_key, CAST(_period || '-01' AS DATE) AS payroll_month,
           sum(beloeb) AS cost_dkk FROM raw.loen GROUP BY ALL;
CREATE TABLE marts.fct_allocations (allocation_id VARCHAR, funding_source VARCHAR, budget_year INTEGER,
    amount_dkk DECIMAL(18, 2));
INSERT INTO marts.fct_allocations VALUES ('B1', 'OPSPARING', 2024, 300000), ('B2', 'APMF', 2024, 50000);
"""

REBUILD_MARTS = """
CREATE OR REPLACE TABLE marts.fct_programme_postings AS
    SELECT _source_file || ':' || _source_line AS posting_id, bilagsnr AS voucher_no,
           CAST(_period || '-01' AS DATE) AS posting_month, CAST(left(_period, 4) AS INTEGER) AS budget_year,
           art AS economic_type, CAST(left(art, 1) AS INTEGER) AS main_type,
           finansieringskilde AS funding_source, beloeb AS amount_dkk,
           CASE WHEN beloeb < 0 THEN 'income' ELSE 'expense' END AS flow,
           _source_file AS source_file, _source_line AS source_line
    FROM raw.posteringer WHERE projekt = 'SLF';
CREATE OR REPLACE TABLE marts.fct_payroll AS
    SELECT medarbejder_key AS employee_key, CAST(_period || '-01' AS DATE) AS payroll_month,
           sum(beloeb) AS cost_dkk FROM raw.loen GROUP BY ALL;
"""


def make_warehouse(path: Path, *changes: str) -> Path:
    """A warehouse with two months of a tiny programme (five people) that reconciles; `changes` (SQL)
    break it, and the two fact tables are rebuilt from raw afterwards."""
    with duckdb.connect(str(path)) as con:
        con.execute(BASELINE)
        for sql in changes:
            con.execute(sql)
        if changes:
            con.execute(REBUILD_MARTS)
    return path


def rows_by_check(rows):
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r.check, []).append(r)
    return out


def compute(path: Path):
    with duckdb.connect(str(path), read_only=True) as con:
        return compute_reconciliations(con)


def test_a_consistent_warehouse_reconciles(tmp_path: Path) -> None:
    rows = compute(make_warehouse(tmp_path / "w.duckdb"))

    assert all(r.passed for r in rows), [r.describe() for r in rows if not r.passed]
    by = rows_by_check(rows)
    assert [r.key for r in by["salaries_vs_payroll"]] == ["2024-01", "2024-02"]
    assert [r.key for r in by["spending_within_allocation"]] == ["APMF 2024", "OPSPARING 2024"]
    assert [r.key for r in by["apmf_donation_received"]] == ["2024", "i alt"]
    assert [r.key for r in by["apmf_not_on_salaries"]] == ["antal", "beløb"]
    january = by["salaries_vs_payroll"][0]
    assert (january.left_value, january.right_value, january.difference) == (Decimal("100000.00"),) * 2 + (0,)
    assert january.tolerance == Decimal("500.00") and january.severity == "error"
    donation = by["apmf_donation_received"][0]
    assert donation.left_value == Decimal("50000.00") == donation.right_value  # the income's sign turned
    spent = by["spending_within_allocation"][0]
    assert (spent.left_value, spent.right_value, spent.difference) == (
        Decimal(20000),
        Decimal(50000),
        Decimal(-30000),
    )


@pytest.mark.parametrize(
    ("ledger", "passes"), [("100500.00", True), ("99500.00", True), ("100500.01", False)]
)
def test_salaries_within_half_a_percent_of_payroll(tmp_path: Path, ledger: str, passes: bool) -> None:
    path = make_warehouse(
        tmp_path / "w.duckdb", f"UPDATE raw.posteringer SET beloeb = {ledger} WHERE bilagsnr = '4'"
    )
    (february,) = [r for r in compute(path) if r.check == "salaries_vs_payroll" and r.key == "2024-02"]
    assert february.passed is passes
    assert february.blocking is (not passes)
    assert february.difference == Decimal(ledger) - Decimal(100000)


def test_a_month_delivered_by_one_source_only_is_a_warning(tmp_path: Path) -> None:
    path = make_warehouse(tmp_path / "w.duckdb", "DELETE FROM raw.loen WHERE _period = '2024-02'")
    (february,) = [r for r in compute(path) if r.check == "salaries_vs_payroll" and r.key == "2024-02"]
    assert not february.passed and february.severity == "warning" and not february.blocking
    assert "lønsystemet" in february.detail


@pytest.mark.parametrize(("ledger", "passes"), [("40000.00", True), ("40500.00", False)])
def test_a_month_paying_fewer_than_five_people_shows_no_amounts(
    tmp_path: Path, ledger: str, passes: bool
) -> None:
    """Two people's pay is as good as one's: the month is checked, but its money is not shown."""
    path = make_warehouse(
        tmp_path / "w.duckdb",
        "DELETE FROM raw.loen WHERE _period = '2024-02' AND _source_line > 3",
        f"UPDATE raw.posteringer SET beloeb = {ledger} WHERE bilagsnr = '4'",
    )
    with duckdb.connect(str(path)) as con:
        rows = run_reconciliations(con, "run-1")
        stored = con.execute(
            "SELECT left_value, right_value, difference, tolerance, detail FROM audit.reconciliations "
            "WHERE check_name = 'salaries_vs_payroll' AND key = '2024-02'"
        ).fetchall()
    (february,) = [r for r in rows if r.check == "salaries_vs_payroll" and r.key == "2024-02"]
    assert february.passed is passes and february.blocking is (not passes)
    assert (february.left_value, february.right_value, february.difference, february.tolerance) == (None,) * 4
    assert "færre end 5 personer" in february.detail
    assert stored[0][:4] == (None,) * 4 and "færre end 5 personer" in stored[0][4]
    assert "40000" not in february.describe() and "40.000" not in february.describe()
    (january,) = [r for r in rows if r.check == "salaries_vs_payroll" and r.key == "2024-01"]
    assert january.right_value == Decimal("100000.00")  # five people: shown


def test_overspending_is_a_warning(tmp_path: Path) -> None:
    path = make_warehouse(
        tmp_path / "w.duckdb",
        "INSERT INTO raw.posteringer VALUES ('9', '4.0', 'SLF', 'OPSPARING', 150000, '2024-02', "
        "'posteringer_2024-02.csv', 3, 'l2')",
    )
    (opsparing,) = [r for r in compute(path) if r.key == "OPSPARING 2024"]
    assert not opsparing.passed and opsparing.severity == "warning"
    assert opsparing.difference == Decimal(50000)  # 350.000 spent of 300.000


def test_donation_differing_from_the_allocation_is_a_warning(tmp_path: Path) -> None:
    path = make_warehouse(
        tmp_path / "w.duckdb", "UPDATE raw.posteringer SET beloeb = -40000 WHERE bilagsnr = '3'"
    )
    donation = [r for r in compute(path) if r.check == "apmf_donation_received"]
    assert [(r.key, r.passed, r.severity) for r in donation] == [
        ("2024", False, "warning"),
        ("i alt", False, "warning"),
    ]
    assert donation[0].difference == Decimal(-10000)


def test_apmf_money_on_salaries_is_an_error_naming_the_lines(tmp_path: Path) -> None:
    path = make_warehouse(
        tmp_path / "w.duckdb",
        "INSERT INTO raw.posteringer VALUES ('8', '1.1', 'SLF', 'APMF', 12000, '2024-02', "
        "'posteringer_2024-02.csv', 7, 'l2')",
    )
    rows = compute(path)
    apmf = [r for r in rows if r.check == "apmf_not_on_salaries"]
    assert [(r.key, r.left_value, r.passed, r.blocking) for r in apmf] == [
        ("antal", Decimal(1), False, True),
        ("beløb", Decimal("12000.00"), False, True),
    ]
    assert apmf[0].detail == "posteringer_2024-02.csv linje 7"
    # The salary posting also puts the month's ledger salaries above the payroll.
    assert {r.key for r in rows if r.blocking} == {"antal", "beløb", "2024-02"}


def test_a_missing_mart_gives_a_failed_row_at_the_checks_severity(tmp_path: Path) -> None:
    path = make_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE marts.fct_payroll")
        rows = compute_reconciliations(con)
    by = rows_by_check(rows)
    (salaries,) = by["salaries_vs_payroll"]
    assert not salaries.passed and salaries.blocking and "kunne ikke beregnes" in salaries.detail
    assert "fct_payroll" in salaries.detail
    assert all(r.passed for r in by["spending_within_allocation"])


def test_reconciliations_are_written_once_per_run(tmp_path: Path) -> None:
    path = make_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(path)) as con:
        first = run_reconciliations(con, "run-1")
        run_reconciliations(con, "run-1")  # the step run again
        run_reconciliations(con, "run-2")
        counts = dict(con.execute("SELECT run_id, count(*) FROM audit.reconciliations GROUP BY 1").fetchall())
        stored = read_reconciliations(con, "run-1")
    assert counts == {"run-1": len(first), "run-2": len(first)}
    assert [r.as_dict() for r in stored] == [r.as_dict() for r in first]
