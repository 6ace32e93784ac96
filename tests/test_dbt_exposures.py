"""Each inquiry is a dbt exposure generated from the inquiry files and the figure registry: the file
in dbt_project/ is current, and dbt selects exactly what one letter needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from test_dbt_project import run_dbt

PROJECT = Path(__file__).resolve().parents[1]


def test_the_exposures_file_is_generated_and_current() -> None:
    check = subprocess.run(
        [sys.executable, "-m", "slf_warehouse.answers.exposures", "--check"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr


def test_exposures_follow_the_figures(tmp_path: Path, monkeypatch) -> None:
    """An inquiry whose figures read another mart depends on that mart; a figure whose mart no model
    builds is refused."""
    import pytest

    from slf_warehouse.answers import exposures as ex

    found = {e["name"]: e for e in ex.exposures(PROJECT / "inquiries", PROJECT / "dbt_project" / "models")}
    assert set(found) == {"enhedslisten_slf", "konservative_kompetenceaktiviteter"}
    assert "ref('rpt_activity_costs')" in found["konservative_kompetenceaktiviteter"]["depends_on"]
    assert "ref('rpt_activity_costs')" not in found["enhedslisten_slf"]["depends_on"]
    models = tmp_path / "models"
    models.mkdir()
    (models / "fct_allocations.sql").write_text("select 1")
    with pytest.raises(ex.ExposureError, match=r"enhedslisten-slf.yaml: figures read .*rpt_survey_fit"):
        ex.exposures(PROJECT / "inquiries", models)


@pytest.mark.dbt  # two dbt processes and a full parse of the project: about 11 s of CPU
def test_dbt_selects_what_one_letter_needs(tmp_path: Path) -> None:
    result = run_dbt(
        tmp_path / "unused.duckdb",
        tmp_path,
        "ls",
        "-s",
        "+exposure:enhedslisten_slf",
        "--resource-type",
        "model",
        "--resource-type",
        "exposure",
        "--output",
        "name",
        "-q",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    names = set(result.stdout.split())
    assert {
        "enhedslisten_slf",
        "fct_allocations",
        "fct_programme_postings",
        "rpt_staff_by_role_month",
        "rpt_survey_fit",
        "rpt_unit_funding",
        "stg_budget__allocations",
    } <= names
    assert "rpt_activity_costs" not in names and "konservative_kompetenceaktiviteter" not in names
    parsed = run_dbt(tmp_path / "unused.duckdb", tmp_path, "parse")
    assert "Deprecat" not in parsed.stdout and "[WARNING]" not in parsed.stdout, parsed.stdout[-3000:]
