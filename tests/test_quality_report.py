"""The PDF quality report from a small hand-made warehouse (DuckDB + WeasyPrint; no dbt, no GE)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from pdf_text import page_texts
from slf_warehouse.quality import history
from slf_warehouse.quality.checkpoint import CheckRecord
from slf_warehouse.quality.reconciliations import run_reconciliations
from slf_warehouse.quality.report import render_quality_report, render_quality_report_full, trend_chart
from test_quality_history import RUN1_FILES, RUN_RESULTS, add_manifest
from test_quality_reconciliations import make_warehouse

PROJECT = Path(__file__).resolve().parents[1]
PSEUDONYM = "3f" * 32
OVERRIDE = "Kendt fejlpostering i februar; rettes ved næste levering"

RECORDS = [
    CheckRecord(
        "raw_posteringer", "expect_table_row_count_to_be_between", None, True, "error", observed_value=5
    ),
    CheckRecord(
        "raw_posteringer",
        "expect_column_sum_to_be_between",
        "apmf_salary_postings",
        False,
        "error",
        observed_value=1,
        notes="Contract: the A.P. Møller Fonden donation may not pay salaries.",
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
        "marts_dim_units",
        "expect_column_values_to_match_regex",
        "cost_centre",
        False,
        "warning",
        unexpected_count=1,
        unexpected_examples=[PSEUDONYM],
        unexpected_rows=[{"unit_id": "SKOLE-001"}],
    ),
    # Person- and respondent-level suites: values and rows must not reach the report.
    CheckRecord(
        "raw_loen",
        "expect_column_values_to_be_between",
        "beskaeftigelsesgrad",
        False,
        "error",
        unexpected_count=1,
        unexpected_examples=[1.2345],
        unexpected_rows=[{"_source_file": "loen_2024-02.csv", "first_line": 4321}],
    ),
    CheckRecord(
        "raw_social_kapital",
        "expect_column_values_to_be_in_set",
        "sk3",
        False,
        "error",
        unexpected_count=1,
        unexpected_examples=[7],
        unexpected_rows=[{"_source_file": "social_kapital_2023.xlsx", "_source_line": 1717}],
    ),
]


def pdf_pages(path: Path) -> list[str]:
    """Each page's text, whitespace (and so line breaks inside table cells) collapsed to one space."""
    return page_texts(path)


@pytest.fixture()
def warehouse(overridden_run: Path, tmp_path: Path) -> Path:
    """Run-1 published cleanly; run-2 (this report's) has an APMF salary posting and was overridden:
    ``tmp_path`` holds a copy of ``overridden_run``'s warehouse, quality history and quarantine."""
    shutil.copytree(overridden_run, tmp_path, dirs_exist_ok=True)
    return tmp_path / "build.duckdb"


@pytest.fixture(scope="module")
def overridden_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder ``warehouse`` copies, made once for the module."""
    tmp_path = tmp_path_factory.mktemp("overridden-run")
    path = make_warehouse(tmp_path / "build.duckdb")
    add_manifest(path, "run-1", RUN1_FILES)
    quality = tmp_path / "quality"
    history.record_run(path, "run-1", status="published", finished=True, history_dir=quality)
    with duckdb.connect(str(path)) as con:
        con.execute(
            "INSERT INTO raw.posteringer VALUES ('8', '1.1', 'SLF', 'APMF', 12000, '2024-02', "
            "'posteringer_2024-02.csv', 7, 'l3')"
        )
        con.execute(
            "CREATE OR REPLACE TABLE marts.fct_programme_postings AS SELECT * FROM "
            "marts.fct_programme_postings UNION ALL SELECT 'posteringer_2024-02.csv:7', '8', "
            "DATE '2024-02-01', 2024, '1.1', 1, 'APMF', 12000, 'expense', 'posteringer_2024-02.csv', 7"
        )
        history.record_expectation_results(con, "run-2", RECORDS)
        run_reconciliations(con, "run-2")
    add_manifest(
        path,
        "run-2",
        [
            ("posteringer", "posteringer_2024-02.csv", 2, "loaded", None),
            ("loen", "loen_2024-04.csv", 12, "rejected", "x"),
        ],
    )
    target = tmp_path / "run_results.json"
    target.write_text(json.dumps(RUN_RESULTS), encoding="utf-8")
    history.record_dbt_results(path, "run-2", target)
    history.record_run(
        path, "run-2", status="passed_with_override", override_reason=OVERRIDE, history_dir=quality
    )
    quarantine = tmp_path / "quarantine" / "loen"
    quarantine.mkdir(parents=True)
    (quarantine / "loen_2024-04.csv.errors.json").write_text(
        json.dumps(
            {
                "errors": [
                    {
                        "file": "loen_2024-04.csv",
                        "line": 4,
                        "column": "medarbejdernr",
                        "value": "98765X",
                        "message": "must be 6 digits",
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    return tmp_path


def test_the_report_shows_sources_checks_reconciliations_and_trend(warehouse: Path, tmp_path: Path) -> None:
    quality = tmp_path / "quality"
    report = render_quality_report_full(warehouse, quality, "run-2")

    assert report.pdf_path == quality / "report.pdf" and report.html_path == quality / "report.html"
    assert (quality / "reports" / "run-2.pdf").is_file()
    pages = pdf_pages(report.pdf_path)
    text = "\n".join(pages)
    # House style: the sender, page numbers, and the override on every page.
    assert "Aarhus Kommune" in pages[0] and "Børn og Unge" in pages[0]
    for i, page in enumerate(pages, 1):
        assert f"Side {i} af {len(pages)}" in page
        assert "Offentliggjort trods fejlede kvalitetskontroller" in page
    assert "Datakvalitetsrapport" in text
    # Sources: files and rows loaded and rejected, the quarantine's rule without the rejected value.
    assert "Posteringer (økonomisystem)" in text and "loen/loen_2024-04.csv: 12 rækker, 1 fejl" in text
    assert "linje 4, kolonne medarbejdernr: must be 6 digits" in text
    assert "98765X" not in text
    # The failed checks, with the offending rows.
    assert "apmf_pays_salary" in text and "posting_id=posteringer_2024-02.csv:7" in text
    assert "apmf_salary_postings" in text
    # dbt's nodes that did not pass.
    assert "assert_no_apmf_salary_postings" in text
    # Reconciliations: both sides and the difference, and the offending ledger line.
    assert "A.P. Møller Fondens midler bruges ikke til løn" in text
    assert "posteringer_2024-02.csv linje 7" in text
    assert "112.000,00" in text and "100.000,00" in text and "12.000,00" in text  # Feb: ledger, payroll, diff
    # The trend over both runs, as SVG charts.
    assert "Udvikling over de seneste kørsler" in text
    html = report.html_path.read_text(encoding="utf-8")
    assert html.count("<svg") == 2
    trend = report.context["trend"]["runs"]
    assert [(r["run_id"], r["status"]) for r in trend] == [
        ("run-1", "offentliggjort"),
        ("run-2", "undtagelse"),
    ]


def test_the_report_never_shows_personal_data(warehouse: Path, tmp_path: Path) -> None:
    path = render_quality_report(warehouse, tmp_path / "quality", "run-2")
    text = "\n".join(pdf_pages(path))
    html = (tmp_path / "quality" / "report.html").read_text(encoding="utf-8")
    for document in (text, html):
        # the failed checks of person- and respondent-level suites are named ...
        assert "beskaeftigelsesgrad" in document and "sk3" in document
        # ... but neither their values nor their rows
        for withheld in ("1.2345", "1,2345", "4321", "1717", "social_kapital_2023.xlsx", "loen_2024-02.csv"):
            assert withheld not in document, withheld
        assert PSEUDONYM not in document and "pseudonym udeladt" in document
    with duckdb.connect(str(warehouse), read_only=True) as con:
        keys = [k for (k,) in con.execute("SELECT DISTINCT medarbejder_key FROM raw.loen").fetchall()]
    assert not any(k in html for k in keys if len(k) > 3)


def test_a_run_that_failed_before_the_checks_still_gets_a_report(tmp_path: Path) -> None:
    path = make_warehouse(tmp_path / "build.duckdb")
    add_manifest(path, "run-9", RUN1_FILES)
    history.record_run(path, "run-9", status="failed", finished=True, history_dir=tmp_path / "quality")

    report = render_quality_report_full(path, tmp_path / "quality", "run-9")
    text = "\n".join(pdf_pages(report.pdf_path))
    assert "Kørslen fejlede" in text and "blev ikke kørt" in text
    assert "loen_2024-03.csv" in text  # the rejected file


def test_the_report_fetches_only_the_projects_own_files(
    warehouse: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The report goes through the letters' PDF path: a template asking WeasyPrint for a file outside
    the templates folder (here the pseudonym key, as an attachment) stops the report, and nothing is
    written; WeasyPrint's default fetcher embedded the file."""
    from slf_warehouse.rendering.fetcher import ResourceRefused

    secret = tmp_path / ".slf-pseudonym-key"
    secret.write_text("k3y-that-must-never-leave-the-server\n", encoding="utf-8")
    templates = tmp_path / "templates"
    shutil.copytree(PROJECT / "report_templates", templates)
    template = templates / "quality_report.html.j2"
    template.write_text(
        template.read_text(encoding="utf-8").replace(
            "</head>", f'<link rel="attachment" href="{secret.as_uri()}">\n</head>'
        ),
        encoding="utf-8",
    )
    quality = tmp_path / "quality"
    with caplog.at_level("WARNING"), pytest.raises(ResourceRefused, match="outside .*only the project's own"):
        render_quality_report(warehouse, quality, "run-2", templates_dir=templates)
    assert not (quality / "report.pdf").exists() and not (quality / "report.html").exists()
    assert not (quality / "reports").exists()
    assert str(secret) not in caplog.text and "k3y" not in caplog.text


def test_trend_chart_is_svg_with_the_values_as_text() -> None:
    svg = trend_chart(
        "Fejl pr. kørsel", [("22.11.", "06:00", 0, "published"), ("23.11.", "06:00", 5, "refused")]
    )
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert (
        "<title>Fejl pr. kørsel. 22.11. 06:00 (offentliggjort): 0; 23.11. 06:00 (afvist): 5.</title>" in svg
    )
    assert 'fill="#a00000"' in svg  # the refused run in red
