"""No quality output shows one person's pay, a pseudonym, a name or an employee number.

The sample's sektionsleder is the only one in the role: `rpt_staff_by_role_month`'s cost for that
role is one person's salary. A payroll warning (a month where the sektionsleder's pay is negative,
as after a large correction) and a failure on the staff mart go through the real quality step (GE,
reconciliations, audit tables, history, the PDF report); then every file it wrote, GE's own
validation files and Data Docs included, and the audit tables are searched for the amounts of every
group of fewer than five people.
"""

from __future__ import annotations

import json
import logging
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from conftest import corrupted_copy
from leak_scan import amount_forms, files_under, find_leaks
from slf_warehouse.quality.gate import QualityGateRefused
from slf_warehouse.quality.step import check_build
from slf_warehouse.quality.suites import default_suites_dir

MONTH = "2024-06-01"
# An extra suite over the small groups whose name does not say "staff": the rule also reads the
# query. Its aggregate check returns an observed value (the largest small-group cost) even in GE's
# BASIC result format.
SMALL_GROUPS_SUITE = {
    "name": "marts_small_groups",
    "meta": {
        "layer": "marts",
        "row_id_columns": ["payroll_month", "role"],
        "batch_query": "SELECT * FROM marts.rpt_staff_by_role_month WHERE headcount < 5",
    },
    "expectations": [
        {
            "type": "expect_column_max_to_be_between",
            "kwargs": {"column": "cost_dkk", "max_value": 1},
            "meta": {"severity": "warning"},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "cost_dkk", "max_value": 1},
            "meta": {"severity": "warning"},
        },
    ],
}


def payroll_identities(landing: Path) -> tuple[set[str], set[str]]:
    """Employee numbers and names in the delivered payroll files."""
    numbers, names = set(), set()
    for path in sorted((landing / "loen").glob("*.csv")):
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        header = lines[0].split(";")
        for line in lines[1:]:
            row = dict(zip(header, line.split(";"), strict=True))
            numbers.add(row["medarbejdernr"])
            names.add(row["navn"])
    return numbers, names


def dump_audit_tables(warehouse: Path, target: Path) -> Path:
    """Every audit table as text (what a reader of the warehouse's audit schema sees)."""
    lines = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [
            t
            for (t,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'audit' ORDER BY 1"
            ).fetchall()
        ]
        for table in tables:
            for row in con.execute(f"SELECT * FROM audit.{table}").fetchall():
                lines.append(f"{table}: " + " | ".join(str(v) for v in row))
    target.write_text("\n".join(lines), encoding="utf-8")
    return target


# The sektionsleder's pay of the month turned negative: the cost_dkk > 0 warning fires, the staff
# mart fails (fte 1,5 for one person) ...
SMALL_GROUP_PAY_SHOWN = (
    f"UPDATE marts.fct_payroll SET cost_dkk = -cost_dkk WHERE role = 'sektionsleder' "
    f"AND payroll_month = DATE '{MONTH}'",
    f"UPDATE marts.rpt_staff_by_role_month SET cost_dkk = -cost_dkk, fte = 1.5 "
    f"WHERE role = 'sektionsleder' AND payroll_month = DATE '{MONTH}'",
    # ... and the ledger agrees (so the reconciliation's difference does not tell the amount)
    f"""UPDATE marts.fct_programme_postings SET amount_dkk = amount_dkk - 2 * (
                SELECT -cost_dkk FROM marts.fct_payroll WHERE role = 'sektionsleder'
                AND payroll_month = DATE '{MONTH}')
            WHERE posting_id = (SELECT min(posting_id) FROM marts.fct_programme_postings
                                WHERE main_type = 1 AND posting_month = DATE '{MONTH}')""",
)


def suites_with_small_groups(suites: Path) -> Path:
    """The project's suites plus one over groups under five people that no name marks as personal."""
    shutil.copytree(default_suites_dir(), suites, ignore=shutil.ignore_patterns("*.md"))
    (suites / "marts_small_groups.json").write_text(json.dumps(SMALL_GROUPS_SUITE), encoding="utf-8")
    return suites


@pytest.fixture()
def checked(built_warehouse: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """The quality step run on a build with a payroll warning and a staff-mart failure."""
    build = corrupted_copy(built_warehouse, tmp_path / "build.duckdb", *SMALL_GROUP_PAY_SHOWN)
    suites = suites_with_small_groups(tmp_path / "expectations")
    quality = tmp_path / "out" / "quality"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(QualityGateRefused) as refused:
        check_build(build, quality, "run-pii", expectations_dir=suites)
    (tmp_path / "gate-message.txt").write_text(str(refused.value), encoding="utf-8")
    (tmp_path / "log.txt").write_text(caplog.text, encoding="utf-8")
    return build, quality


def test_no_quality_output_shows_small_group_pay_or_identities(
    checked, sample_landing_master: Path, tmp_path: Path
) -> None:
    build, quality = checked
    with duckdb.connect(str(build), read_only=True) as con:
        small_group_pay = {
            Decimal(v)
            for (v,) in con.execute(
                "SELECT cost_dkk FROM marts.rpt_staff_by_role_month WHERE headcount < 5"
            ).fetchall()
        }
        person_pay = {
            Decimal(v)
            for (v,) in con.execute(
                "SELECT cost_dkk FROM marts.fct_payroll WHERE role IN (SELECT role FROM "
                "marts.rpt_staff_by_role_month GROUP BY role HAVING max(headcount) < 5)"
            ).fetchall()
        }
        keys = {k for (k,) in con.execute("SELECT DISTINCT employee_key FROM marts.fct_payroll").fetchall()}
        ((sektionsleder,),) = con.execute(
            "SELECT cost_dkk FROM marts.fct_payroll WHERE role = 'sektionsleder' "
            f"AND payroll_month = DATE '{MONTH}'"
        ).fetchall()
        # what the run must still say: which rule, which column, how many
        recorded = con.execute(
            "SELECT suite, column_name, unexpected_count, success, severity FROM audit.expectation_results "
            "WHERE run_id = 'run-pii' AND NOT success ORDER BY ALL"
        ).fetchall()
    assert ("marts_fct_payroll", "cost_dkk", 1, False, "warning") in recorded
    assert ("marts_rpt_staff_by_role_month", "headcount, fte", 1, False, "error") in recorded
    assert any(r[0] == "marts_small_groups" for r in recorded)
    assert sektionsleder < 0 and len(small_group_pay) > 3
    numbers, names = payroll_identities(sample_landing_master)
    assert "Søren Jensen" in names

    files = files_under(quality)
    # GE's own validation results and Data Docs pages of the payroll suite are among them
    assert [
        f
        for f in files
        if "validations" in f.parts and "marts_fct_payroll" in f.parts and f.suffix == ".json"
    ]
    assert [
        f for f in files if "data_docs" in f.parts and "marts_fct_payroll" in f.parts and f.suffix == ".html"
    ]
    assert quality / "quality_results.json" in files and quality / "report.pdf" in files
    assert quality / "history.jsonl" in files
    files += [
        dump_audit_tables(build, tmp_path / "audit.txt"),
        tmp_path / "gate-message.txt",
        tmp_path / "log.txt",
    ]

    needles = {form for pay in small_group_pay | person_pay for form in amount_forms(pay)}
    needles |= keys | numbers | names
    leaks = find_leaks(files, needles)
    assert not leaks, {k: sorted(set(v))[:4] for k, v in sorted(leaks.items())[:10]}
    # the payroll check is still counted in the results everyone reads
    results = json.loads((quality / "quality_results.json").read_text(encoding="utf-8"))
    payroll = [
        r
        for r in results["results"]
        if r["suite"] == "marts_fct_payroll" and r["column"] == "cost_dkk" and not r["success"]
    ]
    assert payroll and payroll[0]["unexpected_count"] == 1
    assert payroll[0]["unexpected_examples"] == [] and payroll[0]["unexpected_rows"] == []


def test_one_rule_says_which_suites_are_personal() -> None:
    from slf_warehouse.quality.suites import is_personal_suite

    personal = {p.stem for p in default_suites_dir().glob("*.json") if is_personal_suite(p.stem)}
    assert personal == {
        "raw_loen",
        "raw_social_kapital",
        "marts_fct_payroll",
        "marts_rpt_staff_by_role_month",
        "marts_rpt_survey_fit",
        "marts_rpt_survey_unit_scores",
    }
    assert is_personal_suite("marts_small_groups", SMALL_GROUPS_SUITE["meta"]["batch_query"])
    assert not is_personal_suite("marts_fct_allocations", "SELECT * FROM marts.fct_allocations")
