"""The dbt project on a real warehouse: sample data -> ingest -> `dbt build` -> facts in the marts.

Each configuration of the sample data is written, ingested into a fresh DuckDB file and built with
the real dbt CLI (every model, seed, schema test, data test and unit test). The marts must then hold
the figures that configuration was generated to produce - computed, never typed in - and exactly
the columns docs/architecture.md promises.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from pg_server import failed_dbt_nodes
from slf_warehouse.sample_data import SampleConfig

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
DBT_PROJECT = PROJECT / "dbt_project"
ARCHITECTURE = PROJECT / "docs" / "architecture.md"
WINDOW_END = "2024-06-30"


@dataclass(frozen=True)
class Case:
    config: SampleConfig
    allocated_in_window_kr: int
    apmf_kr: int
    staff_latest: dict[str, int]


CASES = {
    "default": Case(
        SampleConfig(),
        26_000_000,
        6_600_000,
        {"laeringspartner": 16, "projektmedarbejder": 1, "sektionsleder": 1},
    ),
    "other": Case(
        SampleConfig(
            seed=7,
            total_allocated_kr=31_500_000,
            apmf_kr=4_200_000,
            learning_partners_latest=12,
            project_employees_latest=2,
            survey_r_squared={2022: 0.70, 2023: 0.65},
        ),
        31_500_000,
        4_200_000,
        {"laeringspartner": 12, "projektmedarbejder": 2, "sektionsleder": 1},
    ),
}


@dataclass(frozen=True)
class Built:
    case: Case
    warehouse: Path
    run_results: dict
    dbt_output: str


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else (shutil.which("dbt") or "dbt")


def run_dbt(warehouse: Path, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SLF_WAREHOUSE_PATH": str(warehouse),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    return subprocess.run(
        [
            dbt_executable(),
            *args,
            "--project-dir",
            str(DBT_PROJECT),
            "--profiles-dir",
            str(DBT_PROJECT),
            "--target",
            "duckdb",
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def build_case(name: str, work: Path) -> Built:
    from slf_warehouse.ingest import ingest_landing
    from slf_warehouse.sample_data import write_sample_data

    case = CASES[name]
    landing, warehouse = work / "landing", work / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        key = os.environ.get("SLF_PSEUDONYM_KEY") or "test-only-key-0f1e2d3c4b5a6978"
        mp.setenv("SLF_PSEUDONYM_KEY", key)
        write_sample_data(landing, case.config)
        report = ingest_landing(landing, warehouse, quarantine_root=work / "quarantine")
    assert not report.rejected, report.summary()

    result = run_dbt(warehouse, work, "build")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    run_results = json.loads((work / "target" / "run_results.json").read_text())
    return Built(case, warehouse, run_results, output)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Built]:
    """Builds each configuration once per module, on first use."""
    cache: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in cache:
            cache[name] = build_case(name, tmp_path_factory.mktemp(f"dbt-{name}"))
        return cache[name]

    return get


@pytest.fixture(params=sorted(CASES))
def built(request: pytest.FixtureRequest, builds: Callable[[str], Built]) -> Built:
    return builds(request.param)


def query(built: Built, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(built.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def architecture_marts() -> dict[str, list[str]]:
    """The marts table of docs/architecture.md: model -> its columns, in order."""
    marts: dict[str, list[str]] = {}
    section = ARCHITECTURE.read_text(encoding="utf-8").split("## marts", 1)[1]
    for line in section.splitlines():
        match = re.match(r"\|\s*(\w+)\s*\|(.+)\|\s*$", line)
        if not match or match.group(1) == "model":
            continue
        spec = re.sub(r"\([^)]*\)", "", match.group(2))  # (types, value lists, notes)
        spec = spec.split(":", 1)[1] if spec.strip().startswith("one row per") else spec
        marts[match.group(1)] = [c.strip() for c in spec.split(",") if c.strip()]
    return marts


def test_build_runs_every_node_and_all_pass(built: Built) -> None:
    results = built.run_results["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert not (failed := failed_dbt_nodes(built.run_results)), failed
    kinds: dict[str, int] = {}
    for unique_id in statuses:
        kinds[unique_id.split(".")[0]] = kinds.get(unique_id.split(".")[0], 0) + 1
    assert kinds["model"] >= 24 and kinds["seed"] == 3
    assert kinds["unit_test"] >= 6 and kinds["test"] >= 150
    singular = {uid.split(".")[2] for uid in statuses if uid.startswith("test.") and ".assert_" in uid}
    assert singular == {
        "assert_no_apmf_salary_postings",
        "assert_programme_salaries_match_payroll",
        "assert_programme_funding_sources_allocated",
        "assert_referenced_units_exist",
    }


def test_schemas_are_used_verbatim(built: Built) -> None:
    schemas = {r[0] for r in query(built, "SELECT DISTINCT table_schema FROM information_schema.tables")}
    assert {"raw", "staging", "intermediate", "marts"} <= schemas
    assert not {s for s in schemas if s.startswith("main_")}


def test_marts_have_exactly_the_architecture_columns(built: Built) -> None:
    expected = architecture_marts()
    assert len(expected) == 12, expected
    for model, columns in expected.items():
        rows = query(
            built,
            """
            SELECT column_name, table_type FROM information_schema.columns
            JOIN information_schema.tables USING (table_catalog, table_schema, table_name)
            WHERE table_schema = 'marts' AND table_name = ? ORDER BY ordinal_position""",
            [model],
        )
        assert [r[0] for r in rows] == columns, model
        assert {r[1] for r in rows} == {"BASE TABLE"}, model


def test_allocations_total_and_donation(built: Built) -> None:
    total, apmf = query(
        built,
        f"""
        SELECT sum(amount_dkk), sum(CASE WHEN funding_source = 'APMF' THEN amount_dkk END)
        FROM marts.fct_allocations WHERE period_end <= DATE '{WINDOW_END}'""",
    )[0]
    assert total == built.case.allocated_in_window_kr
    assert apmf == built.case.apmf_kr
    # the allocation after the window exists but is not part of the window's total
    after = f"SELECT count(*) FROM marts.fct_allocations WHERE period_start > DATE '{WINDOW_END}'"
    assert query(built, after)[0][0] == 1
    names = dict(query(built, "SELECT funding_source, funding_source_name FROM marts.dim_funding_sources"))
    assert names["APMF"] == "Donation fra A.P. Møller Fonden"


def test_staff_in_the_latest_month(built: Built) -> None:
    rows = dict(
        query(built, "SELECT role, headcount FROM marts.rpt_staff_by_role_month WHERE is_latest_month")
    )
    assert rows == built.case.staff_latest
    assert (
        query(
            built,
            "SELECT count(DISTINCT payroll_month) FROM marts.rpt_staff_by_role_month WHERE is_latest_month",
        )[0][0]
        == 1
    )


def test_survey_fit_reproduces_the_configured_r_squared(built: Built) -> None:
    fit = {
        year: (r2, used, suppressed, latest)
        for year, r2, used, suppressed, latest in query(
            built,
            "SELECT survey_year, r_squared, units_used, units_suppressed, is_latest_year "
            "FROM marts.rpt_survey_fit",
        )
    }
    assert set(fit) == set(built.case.config.survey_r_squared)
    for year, target in built.case.config.survey_r_squared.items():
        r2, used, suppressed, _ = fit[year]
        assert abs(r2 - target) < 0.003, (year, r2, target)
        assert suppressed == built.case.config.suppressed_units
        assert used > 20
    assert [y for y, v in fit.items() if v[3]] == [max(fit)]
    # suppressed units show no scores; shown units always have at least 5 counted respondents
    assert (
        query(
            built,
            """
        SELECT count(*) FROM marts.rpt_survey_unit_scores
        WHERE (is_suppressed AND (social_capital_index IS NOT NULL OR slf_score IS NOT NULL
                                  OR counted_respondents >= 5))
           OR (NOT is_suppressed AND counted_respondents < 5)""",
        )[0][0]
        == 0
    )


def test_programme_postings_and_units(built: Built) -> None:
    (raw_slf,) = query(built, "SELECT count(*) FROM raw.posteringer WHERE projekt = 'SLF'")[0]
    assert query(built, "SELECT count(*) FROM marts.fct_programme_postings")[0][0] == raw_slf
    purposes = {r[0] for r in query(built, "SELECT DISTINCT purpose FROM marts.fct_programme_postings")}
    assert purposes == {"salaries", "competence_activities", "other"}
    # no money is booked on individual schools, daycare or leisure units
    (local,) = query(
        built,
        """SELECT coalesce(sum(abs(programme_amount_dkk)), 0) FROM marts.rpt_unit_funding
                             WHERE unit_type IN ('skole', 'dagtilbud', 'fritidstilbud')""",
    )[0]
    assert local == 0
    assert query(built, "SELECT count(*) FROM marts.rpt_unit_funding WHERE unit_type = 'skole'")[0][0] > 0
    # every activity's cost is the donation's postings on it
    (activity_cost,) = query(built, "SELECT sum(cost_dkk) FROM marts.rpt_activity_costs")[0]
    (competence,) = query(
        built,
        "SELECT sum(amount_dkk) FROM marts.rpt_spending_by_purpose WHERE purpose = 'competence_activities'",
    )[0]
    assert activity_cost == competence > 0


def test_budget_vs_actual_adds_up(built: Built) -> None:
    allocated, spent = query(
        built, "SELECT sum(allocated_dkk), sum(spent_dkk) FROM marts.rpt_budget_vs_actual"
    )[0]
    assert allocated == query(built, "SELECT sum(amount_dkk) FROM marts.fct_allocations")[0][0]
    assert (
        spent
        == query(built, "SELECT sum(amount_dkk) FROM marts.fct_programme_postings WHERE flow = 'expense'")[0][
            0
        ]
    )


def test_contract_tests_catch_a_violation(builds: Callable[[str], Built], tmp_path: Path) -> None:
    """An APMF salary posting breaks the donation rule: the data test must flag it and name it.

    The contract tests warn rather than fail (the quality gate decides, and can be overridden), so
    dbt exits 0 and reports the rule as WARN with the offending rows counted."""
    built = builds("default")
    broken = tmp_path / "broken.duckdb"
    shutil.copy(built.warehouse, broken)
    with duckdb.connect(str(broken)) as con:
        con.execute("""UPDATE marts.fct_programme_postings SET funding_source = 'APMF'
                       WHERE main_type = 1 AND posting_month = DATE '2023-05-01'""")
    result = run_dbt(broken, tmp_path, "test", "--select", "test_type:singular")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert re.search(r"WARN \d+ assert_no_apmf_salary_postings", output), output[-3000:]
    for unaffected in (
        "assert_referenced_units_exist",
        "assert_programme_salaries_match_payroll",
        "assert_programme_funding_sources_allocated",
    ):
        assert re.search(rf"PASS {unaffected}", output), unaffected
