"""What changed since the last edition: the figures sidecar, the comparison, the appendix section.

Fast tests change a mart row in a copy of a small hand-built warehouse. The slow test changes one
posting in raw, re-runs dbt and checks that exactly the figures that posting feeds are reported,
in both inquiries.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from conftest import dk_amount
from pdf_text import pdf_text
from test_answers_render import INQUIRY, SEED, build_warehouse

PROJECT = Path(__file__).resolve().parents[1]
SECOND = PROJECT / "inquiries" / "konservative-kompetenceaktiviteter.yaml"
RUN_INFO = {"run_id": "manual__2024-09-06", "version": "20240906T120000-manual"}


def render(warehouse: Path, out: Path, inquiry: Path = INQUIRY, **kwargs):
    from slf_warehouse.answers.render import render_inquiry

    return render_inquiry(warehouse, inquiry, out, **kwargs)


@pytest.fixture(scope="module")
def first_rendered(tmp_path_factory: pytest.TempPathFactory):
    """The first edition of the Enhedslisten answer, rendered once for this module (tests get a copy)."""
    root = tmp_path_factory.mktemp("first-edition")
    warehouse = build_warehouse(root / "wh.duckdb", SEED)
    return root, render(warehouse, root / "out", run_info=RUN_INFO)


@pytest.fixture()
def first(first_rendered, tmp_path: Path):
    """A warehouse, and the first edition of the Enhedslisten answer rendered from it into out/: a
    private copy of `first_rendered` (the tests render further editions and change both)."""
    root, answer = first_rendered
    warehouse = shutil.copy2(root / "wh.duckdb", tmp_path / "wh.duckdb")
    shutil.copytree(root / "out", tmp_path / "out")
    here = {
        name: tmp_path / path.relative_to(root)
        for name in ("pdf_path", "html_path", "sidecar_path", "archive_path")
        if (path := getattr(answer, name)) is not None
    }
    return warehouse, dataclasses.replace(answer, **here)


def test_sidecar_records_every_figure(first) -> None:
    _, answer = first
    assert answer.sidecar_path == answer.pdf_path.with_name("enhedslisten-slf.figures.json")
    doc = json.loads(answer.sidecar_path.read_text(encoding="utf-8"))
    assert doc["format"] == 1 and doc["inquiry"] == "enhedslisten-slf.yaml"
    assert doc["warehouse"] == {
        "engine": "duckdb",
        "file": "wh.duckdb",
        "version": "20240906T120000-manual",
        "run_id": "manual__2024-09-06",
    }
    assert doc["parameters"]["window_start"] == "2022-01-01"
    assert set(doc["figures"]) == set(answer.figures)
    total = doc["figures"]["allocated_total"]
    assert (total["value"], total["text"], total["exact"], total["rows"]) == (
        "26000000.00",
        "26 mio. kr.",
        "26.000.000,00 kr.",
        9,
    )
    parts = doc["figures"]["allocated_by_source"]["parts"]
    assert parts[0] == {
        "group": "OPSPARING · Centralt opsparede midler",
        "keys": {"funding_source": "OPSPARING", "funding_source_name": "Centralt opsparede midler"},
        "value": "8700000.00",
        "text": "8,7 mio. kr.",
        "exact": "8.700.000,00 kr.",
    }
    assert doc["figures"]["survey_r_squared"]["value"] == "0.7987"  # a DOUBLE, kept exactly


def test_first_edition_then_nothing_changed(first, tmp_path: Path) -> None:
    warehouse, answer = first
    assert answer.changes.first_edition and answer.changes.names == []
    assert "Dette er første udgave af svaret" in pdf_text(answer.pdf_path)

    again = render(warehouse, tmp_path / "out", run_info=RUN_INFO)
    assert not again.changes.first_edition and again.changes.names == []
    text = pdf_text(again.pdf_path)
    assert (
        "Ændringer siden sidste udgave Ingen af tallene er ændret siden sidste udgave "
        "(warehouse-version 20240906T120000-manual)." in text
    )
    pdf, html, sidecar = (
        again.pdf_path.read_bytes(),
        again.html_path.read_bytes(),
        again.sidecar_path.read_bytes(),
    )
    # the same values once more: the same bytes, every file
    third = render(warehouse, tmp_path / "out", run_info=RUN_INFO)
    assert third.pdf_path.read_bytes() == pdf and third.html_path.read_bytes() == html
    assert third.sidecar_path.read_bytes() == sidecar


def test_a_changed_posting_names_exactly_its_figure(first, tmp_path: Path) -> None:
    warehouse, _ = first
    copy = tmp_path / "changed.duckdb"
    shutil.copy(warehouse, copy)
    with duckdb.connect(str(copy)) as con:  # one salary posting (2023-03-30) up by 100.000 kr.
        con.execute(
            "UPDATE marts.fct_programme_postings SET amount_dkk = amount_dkk + 100000 "
            "WHERE posting_id = 'p:2'"
        )
    answer = render(copy, tmp_path / "out", run_info={**RUN_INFO, "version": "20240907T060000-scheduled"})
    assert answer.changes.names == ["spent_salaries"]
    [change] = answer.changes.figures
    assert (change.old, change.new) == ("15.500.000,00 kr.", "15.600.000,00 kr.")
    assert (change.old_value, change.new_value) == ("15500000.00", "15600000.00")
    text = pdf_text(answer.pdf_path, raw=True)  # the changes table's rows, cell by cell
    assert (
        "1 af tallene er ændret siden sidste udgave (warehouse-version 20240906T120000-manual). "
        "Tal Før Nu Forbrug, løn spent_salaries 15.500.000,00 kr. 15.600.000,00 kr."
    ) in text
    assert "15,6 mio. kr. på løn" in text
    # and back: the next edition compares with this one
    again = render(warehouse, tmp_path / "out", run_info=RUN_INFO)
    assert again.changes.names == ["spent_salaries"] and again.changes.figures[0].new == "15.500.000,00 kr."


def test_a_table_figure_lists_its_changed_rows(first, tmp_path: Path) -> None:
    warehouse, _ = first
    copy = tmp_path / "changed.duckdb"
    shutil.copy(warehouse, copy)
    with duckdb.connect(str(copy)) as con:  # the 2023 KOMPETENCE allocation up by 1 mio. kr.
        con.execute(
            "UPDATE marts.fct_allocations SET amount_dkk = amount_dkk + 1000000 "
            "WHERE funding_source = 'KOMPETENCE' AND period_start = DATE '2023-01-01'"
        )
    answer = render(copy, tmp_path / "out", run_info=RUN_INFO)
    assert answer.changes.names == ["allocated_total", "allocated_by_source"]
    by_source = answer.changes.figures[1]
    assert [(p.group, p.old, p.new) for p in by_source.parts] == [
        ("KOMPETENCE · Centrale midler afsat til kompetenceudvikling", "5.800.000,00 kr.", "6.800.000,00 kr.")
    ]
    text = pdf_text(answer.pdf_path, raw=True)  # the changes table's rows, cell by cell
    assert "2 af tallene er ændret" in text
    assert (
        "KOMPETENCE · Centrale midler afsat til kompetenceudvikling 5.800.000,00 kr. 6.800.000,00 kr." in text
    )


def test_compare_with_a_named_edition_and_unreadable_sidecars(first, tmp_path: Path) -> None:
    from slf_warehouse.answers.changes import compare, read_sidecar

    warehouse, answer = first
    kept = tmp_path / "sendt.figures.json"
    shutil.copy(answer.sidecar_path, kept)
    answer.sidecar_path.write_text("{ not json", encoding="utf-8")
    assert render(warehouse, tmp_path / "out").changes.first_edition  # unreadable: treated as none
    assert render(warehouse, tmp_path / "elsewhere", previous=kept).changes.names == []
    doc = read_sidecar(kept)
    assert doc is not None and compare(doc, doc).names == []
    # a figure no longer used, and one new: both listed
    fewer = {**doc, "figures": {k: v for k, v in doc["figures"].items() if k != "allocated_apmf"}}
    names = compare(doc, fewer)
    assert names.names == ["allocated_apmf"] and names.figures[0].new is None
    assert compare(fewer, doc).figures[0].old is None


def test_different_window_is_noted(first, tmp_path: Path) -> None:
    import yaml

    warehouse, _ = first
    data = yaml.safe_load(INQUIRY.read_text(encoding="utf-8"))
    data["window"]["start"] = date(2023, 1, 1)
    inquiry = tmp_path / "enhedslisten-slf.yaml"  # the same stem: compared with the same sidecar
    inquiry.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    answer = render(warehouse, tmp_path / "out", inquiry=inquiry)
    assert answer.changes.parameters_changed and "allocated_total" in answer.changes.names
    assert "Forespørgslens periode er også ændret." in pdf_text(answer.pdf_path)


# --- the real pipeline: change raw, re-run dbt -------------------------------------------------------


def _dbt(warehouse: Path, work: Path, *args: str) -> None:
    dbt = Path(sys.executable).with_name("dbt")
    env = {
        **os.environ,
        "SLF_WAREHOUSE_PATH": str(warehouse),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    result = subprocess.run(
        [
            str(dbt),
            *args,
            "--project-dir",
            str(PROJECT / "dbt_project"),
            "--profiles-dir",
            str(PROJECT / "dbt_project"),
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
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def _redeliver_with_amount(path: Path, line: int, old: Decimal, new: Decimal) -> None:
    """Rewrite one ledger line's amount (field 10, Danish format) in a Windows-1252 delivery."""
    data = path.read_bytes()
    newline = b"\r\n" if b"\r\n" in data else b"\n"
    lines = data.split(newline)
    fields = lines[line - 1].split(b";")
    assert dk_amount(fields[9].decode("cp1252")) == old, lines[line - 1]
    fields[9] = f"{new:,.2f}".translate(str.maketrans(",.", ".,")).encode("cp1252")
    lines[line - 1] = b";".join(fields)
    path.write_bytes(newline.join(lines))


@pytest.mark.slow
def test_changing_one_raw_posting_moves_exactly_its_figures(sample_landing: Path, tmp_path: Path) -> None:
    from slf_warehouse.ingest import ingest_landing

    warehouse = tmp_path / "wh.duckdb"
    report = ingest_landing(sample_landing, warehouse, quarantine_root=tmp_path / "quarantine")
    assert not report.rejected, report.summary()
    _dbt(
        warehouse,
        tmp_path,
        "build",
        "--select",
        "resource_type:seed resource_type:model",
        "--indirect-selection",
        "empty",
    )
    out = tmp_path / "answers"
    for inquiry in (INQUIRY, SECOND):
        assert render(warehouse, out, inquiry=inquiry, run_info={"version": "v1"}).changes.first_edition

    with duckdb.connect(str(warehouse)) as con:
        # one salary posting of May 2023 on the programme's own cost centre, not on an activity
        source_file, source_line, amount = con.execute(
            "SELECT source_file, source_line, amount_dkk FROM marts.fct_programme_postings WHERE purpose = "
            "'salaries' AND posting_month = DATE '2023-05-01' AND activity_id IS NULL AND unit_type = "
            "'faellesfunktion' ORDER BY source_line LIMIT 1"
        ).fetchall()[0]
    # The month is re-delivered with that line corrected; the next build takes the new load.
    _redeliver_with_amount(
        sample_landing / "posteringer" / source_file, source_line, amount, amount + Decimal("12345.67")
    )
    report = ingest_landing(sample_landing, warehouse, quarantine_root=tmp_path / "quarantine")
    assert [f.file_name for f in report.files if f.status == "loaded"] == [source_file], report.summary()
    _dbt(warehouse, tmp_path, "run", "--select", "source:raw.posteringer+")

    first = render(warehouse, out, inquiry=INQUIRY, run_info={"version": "v2"})
    assert first.changes.names == ["spent_salaries"]
    [change] = first.changes.figures
    assert Decimal(change.new_value) - Decimal(change.old_value) == Decimal("12345.67")
    second = render(warehouse, out, inquiry=SECOND, run_info={"version": "v2"})
    assert second.changes.names == [
        "spent_salaries",
        "spent_total",
        "spent_by_quarter",
        "spent_by_year_purpose",
    ]
    quarter = second.changes.figures[2]
    assert [p.group for p in quarter.parts] == ["2. kvt. 2023"]
    year_purpose = second.changes.figures[3]
    assert [p.group for p in year_purpose.parts] == ["2023 · salaries"]
    assert "spent_by_quarter" in pdf_text(second.pdf_path).split("Ændringer siden sidste udgave")[1]
