"""A broken delivery end to end (slow): the sample published, then a ledger month re-delivered with an
A.P. Møller Fonden posting on salaries (art 1.1). The gate refuses with exactly the expected checks
and reconciliations, the report names them and the offending row, and an override publishes the
build with the reason recorded in audit.runs.

The steps are the quality package's, called as the refresh calls them (the WarehouseStore builds,
ingestion, `dbt build` as a subprocess, quality.step.check_build / mark_published).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pdf_text import pdf_text
from slf_warehouse.quality import history
from slf_warehouse.quality.gate import QualityGateRefused
from slf_warehouse.quality.step import check_build, mark_published
from slf_warehouse.warehouse import WarehouseStore

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
DBT_PROJECT = PROJECT / "dbt_project"
EXPECTATIONS = PROJECT / "expectations"
TEST_KEY = "quality-broken-data-key-7e1c"
BROKEN_MONTH = "2023-03"
OVERRIDE = "Fejlpostering på APMF i marts 2023 er kendt og rettes i næste levering; svaret haster"

EXPECTED_FAILED_CHECKS = {
    ("raw_posteringer", "expect_column_sum_to_be_between", "apmf_salary_postings"),
    ("marts_fct_programme_postings", "expect_column_values_to_be_in_set", "apmf_pays_salary"),
}
EXPECTED_FAILED_RECONCILIATIONS = {
    ("salaries_vs_payroll", BROKEN_MONTH),
    ("apmf_not_on_salaries", "antal"),
    ("apmf_not_on_salaries", "beløb"),
}


def add_apmf_salary_posting(landing: Path) -> tuple[str, int]:
    """Append a line to the month's ledger file in the contract's format (cp1252, `;`, decimal comma,
    dd-mm-yyyy, CRLF): an APMF programme posting of main type 1. Returns (file name, line number)."""
    path = landing / "posteringer" / f"posteringer_{BROKEN_MONTH}.csv"
    data = path.read_bytes()
    header = data.split(b"\r\n", 1)[0].decode("cp1252").split(";")
    fields = {
        "bilagsnr": "519999",
        "bogfoeringsdato": "28-03-2023",
        "funktion": "6.45.51",
        "dranst": "1",
        "art": "1.1",
        "omkostningssted": "041203",
        "projekt": "SLF",
        "aktivitet_id": "",
        "finansieringskilde": "APMF",
        "beloeb": "48.500,00",
        "tekst": "Løn 03-2023 SLF – læringspartner",
    }
    line = ";".join(fields[name] for name in header) + "\r\n"
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    line_number = data.count(b"\r\n") + 1  # the header is line 1
    path.write_bytes(data + line.encode("cp1252"))
    return path.name, line_number


def dbt_build(build: Path, target: Path, *extra: str) -> Path:
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "SLF_WAREHOUSE_PATH": str(build), "DBT_PROFILES_DIR": str(DBT_PROJECT)}
    done = subprocess.run(
        [
            str(dbt),
            "build",
            "--project-dir",
            str(DBT_PROJECT),
            "--profiles-dir",
            str(DBT_PROJECT),
            "--target-path",
            str(target),
            "--log-path",
            str(target / "logs"),
            *extra,
        ],
        cwd=DBT_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"dbt build failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    return target / "run_results.json"


@pytest.fixture(scope="module")
def scenario(sample_landing_master: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from slf_warehouse.ingest import ingest_landing

    root = tmp_path_factory.mktemp("broken-data")
    out = root / "out"
    quality, quarantine = out / "quality", out / "quarantine"
    store = WarehouseStore(out / "warehouse")
    landing = root / "landing"
    shutil.copytree(sample_landing_master, landing)
    facts: dict = {"root": root, "quality": quality, "store": store}

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLF_PSEUDONYM_KEY", TEST_KEY)
        # Run 1: the sample as delivered, published.
        build1 = store.new_build("run-1")
        history.start_run(build1, "run-1")
        ingest_landing(landing, build1, quarantine, "run-1")
        results1 = dbt_build(build1, root / "target-1")
        facts["decision1"] = check_build(
            build1, quality, "run-1", expectations_dir=EXPECTATIONS, dbt_run_results=results1
        )
        mark_published(build1, quality, "run-1")
        store.publish(build1, "run-1")

        # Run 2: the March ledger re-delivered with an APMF salary posting.
        facts["file"], facts["line"] = add_apmf_salary_posting(landing)
        build2 = store.new_build("run-2")
        facts["build2"] = build2
        history.start_run(build2, "run-2")
        ingest_landing(landing, build2, quarantine, "run-2")
        # The dbt project's singular tests repeat the contract rules at dbt's default severity (error),
        # which stops `dbt build` before the (overridable) gate; here they are left out, as they are
        # when they run at severity warn.
        results2 = dbt_build(build2, root / "target-2", "--exclude", "test_type:singular")
        with pytest.raises(QualityGateRefused) as refused:
            check_build(build2, quality, "run-2", expectations_dir=EXPECTATIONS, dbt_run_results=results2)
        facts["refused"] = refused.value
        facts["refused_report"] = pdf_text(quality / "report.pdf")
        facts["quality_results"] = json.loads((quality / "quality_results.json").read_text(encoding="utf-8"))

        # The same build published with an override.
        facts["decision2"] = check_build(
            build2,
            quality,
            "run-2",
            expectations_dir=EXPECTATIONS,
            override_reason=OVERRIDE,
            dbt_run_results=results2,
        )
        facts["override_report"] = pdf_text(quality / "report.pdf")
        mark_published(build2, quality, "run-2")
        facts["published"] = store.publish(build2, "run-2")
    return facts


def test_the_sample_passes_and_is_published(scenario: dict) -> None:
    decision = scenario["decision1"]
    assert decision.publish and decision.quality_success and not decision.overridden
    assert decision.warnings == []


def test_the_broken_delivery_fails_exactly_the_expected_checks_and_reconciliations(scenario: dict) -> None:
    results = scenario["quality_results"]
    failed = {
        (r["suite"], r["expectation_type"], r["column"])
        for r in results["results"]
        if not r["success"] and r["severity"] == "error"
    }
    assert failed == EXPECTED_FAILED_CHECKS
    assert results["warnings"] == []
    with duckdb.connect(str(scenario["published"].path), read_only=True) as con:
        rows = con.execute(
            "SELECT check_name, key, severity, detail FROM audit.reconciliations "
            "WHERE run_id = 'run-2' AND NOT passed"
        ).fetchall()
        offending = con.execute(
            "SELECT unexpected_rows FROM audit.expectation_results WHERE run_id = 'run-2' "
            "AND column_name = 'apmf_pays_salary'"
        ).fetchall()[0][0]
    assert {(c, k) for c, k, _, _ in rows} == EXPECTED_FAILED_RECONCILIATIONS
    assert {s for _, _, s, _ in rows} == {"error"}
    apmf_detail = {d for c, _, _, d in rows if c == "apmf_not_on_salaries"}
    assert apmf_detail == {f"{scenario['file']} linje {scenario['line']}"}
    assert json.loads(offending) == [{"posting_id": f"{scenario['file']}:{scenario['line']}"}]


def test_the_gate_refuses_naming_every_failure(scenario: dict) -> None:
    refused = scenario["refused"]
    message = str(refused)
    assert "refused publication" in message and "5 error-severity" in message
    for suite, _, column in EXPECTED_FAILED_CHECKS:
        assert f"{suite}:" in message and column in message
    for check, key in EXPECTED_FAILED_RECONCILIATIONS:
        assert f"{check} [{key}]" in message
    assert refused.decision.status == "refused" and not refused.decision.publish


def test_the_refused_report_names_the_failed_checks_and_the_offending_rows(scenario: dict) -> None:
    text = scenario["refused_report"]
    assert "afvist af kvalitetskontrollen" in text
    assert "apmf_pays_salary" in text and "apmf_salary_postings" in text
    assert f"posting_id={scenario['file']}:{scenario['line']}" in text
    assert f"{scenario['file']} linje {scenario['line']}" in text
    assert "48.500,00" in text  # the March difference and the APMF amount
    assert "Posteringer (økonomisystem)" in text


def test_the_override_is_recorded_and_published(scenario: dict) -> None:
    decision = scenario["decision2"]
    assert decision.publish and decision.overridden and decision.override_reason == OVERRIDE
    assert decision.banner == f"Offentliggjort trods fejlede kvalitetskontroller: {OVERRIDE}"
    published = scenario["published"]
    assert published.run_id == "run-2"
    assert history.override_for(published.path, "run-2") == OVERRIDE
    assert history.override_for(published.path, "run-1") is None
    with duckdb.connect(str(published.path), read_only=True) as con:
        runs = con.execute(
            "SELECT run_id, status, quality_success, override_reason FROM audit.runs ORDER BY run_id"
        ).fetchall()
        dbt_nodes = con.execute(
            "SELECT run_id, count(*) FROM audit.dbt_results GROUP BY 1 ORDER BY 1"
        ).fetchall()
        files = con.execute(
            "SELECT file, status FROM audit.run_files WHERE run_id = 'run-2' AND status = 'loaded'"
        ).fetchall()
    # History accumulates: the published warehouse holds both runs.
    assert runs == [("run-1", "published", True, None), ("run-2", "published", False, OVERRIDE)]
    assert [run for run, _ in dbt_nodes] == ["run-1", "run-2"] and all(n > 100 for _, n in dbt_nodes)
    assert files == [(scenario["file"], "loaded")]  # only the re-delivered month loaded again
    text = scenario["override_report"]
    assert f"Offentliggjort trods fejlede kvalitetskontroller: {OVERRIDE}" in text


def test_history_jsonl_keeps_every_status_of_every_run(scenario: dict) -> None:
    lines = [json.loads(line) for line in (scenario["quality"] / "history.jsonl").read_text().splitlines()]
    assert [(e["run_id"], e["status"]) for e in lines] == [
        ("run-1", "passed"),
        ("run-1", "published"),
        ("run-2", "refused"),
        ("run-2", "passed_with_override"),
        ("run-2", "published"),
    ]
    refused = lines[2]
    assert refused["checks_failed"] == 2 and refused["reconciliations_failed"] == 3
    assert refused["rows_loaded"] > 0 and refused["override_reason"] is None


def test_no_pseudonym_leaves_the_warehouse(scenario: dict) -> None:
    with duckdb.connect(str(scenario["published"].path), read_only=True) as con:
        keys = {k for (k,) in con.execute("SELECT DISTINCT medarbejder_key FROM raw.loen").fetchall()}
    quality = scenario["quality"]
    for path in [quality / "history.jsonl", quality / "report.html", *quality.glob("reports/*")]:
        if path.suffix in (".jsonl", ".html"):
            text = path.read_text(encoding="utf-8")
            assert not any(k in text for k in keys), path
