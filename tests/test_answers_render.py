"""The answer letter rendered from small warehouses built here with known rows.

Only the marts the figures read are created, with the column names of docs/architecture.md.
Two data sets: the seed letter's numbers, and other numbers that must show instead.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pdf_text import page_texts, pdf_text

PROJECT = Path(__file__).resolve().parents[1]
INQUIRY = PROJECT / "inquiries" / "enhedslisten-slf.yaml"

MARTS_DDL = """
CREATE SCHEMA IF NOT EXISTS marts;
CREATE TABLE marts.fct_allocations (
    allocation_id VARCHAR, funding_source VARCHAR, funding_source_name VARCHAR, decision_date DATE,
    period_start DATE, period_end DATE, budget_year INTEGER, amount_dkk DECIMAL(18, 2), journal_no VARCHAR,
    remark VARCHAR, source_file VARCHAR, source_line INTEGER);
CREATE TABLE marts.fct_programme_postings (
    posting_id VARCHAR, voucher_no VARCHAR, posting_date DATE, posting_month DATE, budget_year INTEGER,
    function_code VARCHAR, economic_type VARCHAR, main_type INTEGER, cost_centre VARCHAR, unit_id VARCHAR,
    unit_type VARCHAR, activity_id VARCHAR, funding_source VARCHAR, amount_dkk DECIMAL(18, 2), flow VARCHAR,
    purpose VARCHAR, description VARCHAR, source_file VARCHAR, source_line INTEGER);
CREATE TABLE marts.rpt_staff_by_role_month (
    payroll_month DATE, role VARCHAR, headcount INTEGER, fte DECIMAL(18, 4), cost_dkk DECIMAL(18, 2),
    is_latest_month BOOLEAN);
CREATE TABLE marts.rpt_unit_funding (
    unit_id VARCHAR, unit_name VARCHAR, unit_type VARCHAR, district VARCHAR, posting_month DATE,
    programme_amount_dkk DECIMAL(18, 2));
CREATE TABLE marts.rpt_survey_fit (
    survey_year INTEGER, units_used INTEGER, units_suppressed INTEGER, slope DOUBLE, intercept DOUBLE,
    r_squared DOUBLE, is_latest_year BOOLEAN);
"""

SOURCE_NAMES = {
    "OPSPARING": "Centralt opsparede midler",
    "KOMPETENCE": "Centrale midler afsat til kompetenceudvikling",
    "PULJE": "Centrale puljer",
    "APMF": "Donation fra A.P. Møller Fonden",
}


@dataclass
class Data:
    # (source, period_start, period_end, amount)
    allocations: list[tuple[str, date, date, int]]
    # (posting_date, purpose, flow, amount)
    postings: list[tuple[date, str, str, int]]
    # (payroll_month, role, headcount, is_latest)
    staff: list[tuple[date, str, int, bool]]
    # (unit_id, unit_name, unit_type, posting_month, amount)
    unit_funding: list[tuple[str, str, str, date, int]]
    # (year, units_used, r_squared, is_latest)
    survey: list[tuple[int, int, float, bool]]
    source_names: dict[str, str] = field(default_factory=lambda: dict(SOURCE_NAMES))


_BUILT: dict[str, Path] = {}  # each data set's warehouse, built once in this process (by its repr)


def build_warehouse(path: Path, data: Data) -> Path:
    """A DuckDB file at ``path`` with ``data`` in the marts: a copy of the file built once per data set
    (about 0,27 s a build; the tests use the same few data sets dozens of times)."""
    key = repr(data)
    master = _BUILT.get(key)
    if master is None or not master.exists():
        master = Path(_masters_dir()) / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.duckdb"
        _write_warehouse(master, data)
        _BUILT[key] = master
    shutil.copyfile(master, path)
    return path


@functools.cache
def _masters_dir() -> str:
    folder = tempfile.mkdtemp(prefix="slf-test-warehouses-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _write_warehouse(path: Path, data: Data) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(MARTS_DDL)
        for i, (src, start, end, amount) in enumerate(data.allocations, 1):
            con.execute(
                "INSERT INTO marts.fct_allocations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    f"BEV-{i:03d}",
                    src,
                    data.source_names[src],
                    start,
                    start,
                    end,
                    start.year,
                    Decimal(amount),
                    f"J-{i}",
                    None,
                    "bevillinger.csv",
                    i + 1,
                ],
            )
        for i, (posted, purpose, flow, amount) in enumerate(data.postings, 1):
            month = posted.replace(day=1)
            con.execute(
                "INSERT INTO marts.fct_programme_postings VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    f"p:{i}",
                    str(500 + i),
                    posted,
                    month,
                    posted.year,
                    "6.45.51",
                    "1.1" if purpose == "salaries" else "4.0",
                    1 if purpose == "salaries" else 4,
                    "041203",
                    "FF-SLF",
                    "faellesfunktion",
                    None,
                    "OPSPARING",
                    Decimal(amount),
                    flow,
                    purpose,
                    "tekst",
                    f"posteringer_{month:%Y-%m}.csv",
                    i + 1,
                ],
            )
        for month, role, headcount, latest in data.staff:
            con.execute(
                "INSERT INTO marts.rpt_staff_by_role_month VALUES (?, ?, ?, ?, ?, ?)",
                [month, role, headcount, Decimal(headcount), Decimal(headcount * 40000), latest],
            )
        for unit_id, name, unit_type, month, amount in data.unit_funding:
            con.execute(
                "INSERT INTO marts.rpt_unit_funding VALUES (?, ?, ?, ?, ?, ?)",
                [unit_id, name, unit_type, "Midt", month, Decimal(amount)],
            )
        for year, used, r2, latest in data.survey:
            con.execute(
                "INSERT INTO marts.rpt_survey_fit VALUES (?, ?, ?, ?, ?, ?, ?)",
                [year, used, 2, 0.9, 0.3, r2, latest],
            )


def _months(start: date, n: int) -> list[date]:
    out, y, m = [], start.year, start.month
    for _ in range(n):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


SEED = Data(
    allocations=[
        ("OPSPARING", date(2022, 1, 1), date(2022, 12, 31), 3_480_000),
        ("OPSPARING", date(2023, 1, 1), date(2023, 12, 31), 3_480_000),
        ("OPSPARING", date(2024, 1, 1), date(2024, 6, 30), 1_740_000),
        ("KOMPETENCE", date(2022, 1, 1), date(2022, 12, 31), 2_900_000),
        ("KOMPETENCE", date(2023, 1, 1), date(2024, 6, 30), 2_900_000),
        ("PULJE", date(2022, 1, 1), date(2024, 6, 30), 4_900_000),
        ("APMF", date(2022, 1, 1), date(2022, 12, 31), 2_640_000),
        ("APMF", date(2023, 1, 1), date(2023, 12, 31), 2_640_000),
        ("APMF", date(2024, 1, 1), date(2024, 6, 30), 1_320_000),
        # outside the window: must not count
        ("OPSPARING", date(2024, 7, 1), date(2024, 12, 31), 1_740_000),
        ("PULJE", date(2021, 1, 1), date(2021, 12, 31), 999_000),
    ],
    postings=[
        (date(2022, 3, 30), "salaries", "expense", 6_100_000),
        (date(2023, 3, 30), "salaries", "expense", 6_300_000),
        (date(2024, 3, 28), "salaries", "expense", 3_100_000),
        (date(2024, 7, 30), "salaries", "expense", 600_000),  # after the window
        (date(2022, 9, 14), "competence_activities", "expense", 1_650_000),
        (date(2023, 9, 14), "competence_activities", "expense", 1_700_000),
        (date(2024, 2, 14), "competence_activities", "expense", 740_000),
        (date(2022, 1, 15), "other", "income", -2_640_000),
    ],
    staff=[
        (date(2024, 5, 1), "laeringspartner", 15, False),
        (date(2024, 5, 1), "projektmedarbejder", 1, False),
        (date(2024, 5, 1), "sektionsleder", 1, False),
        (date(2024, 6, 1), "laeringspartner", 16, True),
        (date(2024, 6, 1), "projektmedarbejder", 1, True),
        (date(2024, 6, 1), "sektionsleder", 1, True),
    ],
    unit_funding=[
        (uid, name, utype, month, 0)
        for uid, name, utype in [
            ("SKOLE-001", "Skovvangskolen", "skole"),
            ("DAG-101", 'Børnehuset "Sol" & <Måne>', "dagtilbud"),
            ("FRI-001", "Klub Øst", "fritidstilbud"),
        ]
        for month in _months(date(2022, 1, 1), 30)
    ]
    + [
        ("FF-SLF", "Stærkere Læringsfællesskaber, sekretariatet", "faellesfunktion", month, 650_000)
        for month in _months(date(2022, 1, 1), 30)
    ],
    survey=[(2022, 31, 0.7412, False), (2023, 31, 0.7987, True)],
)

OTHER = Data(
    allocations=[
        ("OPSPARING", date(2022, 1, 1), date(2023, 12, 31), 17_250_000),
        ("PULJE", date(2023, 1, 1), date(2024, 6, 30), 10_200_000),
        ("APMF", date(2022, 1, 1), date(2024, 6, 30), 4_000_000),
        ("KOMPETENCE", date(2024, 7, 1), date(2024, 12, 31), 3_000_000),  # after the window only
    ],
    postings=[
        (date(2023, 5, 30), "salaries", "expense", 9_870_000),
        (date(2023, 6, 1), "competence_activities", "expense", 425_000),
    ],
    staff=[
        (date(2024, 8, 1), "laeringspartner", 9, True),
        (date(2024, 8, 1), "projektmedarbejder", 2, True),
        (date(2024, 8, 1), "sektionsleder", 1, True),
        (date(2024, 7, 1), "laeringspartner", 16, False),
    ],
    unit_funding=[
        ("DAG-101", "Børnehuset <Sol> & \"Måne\" 'Ø'", "dagtilbud", date(2023, 4, 1), 125_000),
        ("DAG-101", "Børnehuset <Sol> & \"Måne\" 'Ø'", "dagtilbud", date(2023, 5, 1), 0),
        ("SKOLE-001", "Skovvangskolen", "skole", date(2023, 4, 1), 1_250_000),
        ("SKOLE-001", "Skovvangskolen", "skole", date(2025, 1, 1), 77_000),  # after the window
        (
            "FF-SLF",
            "Stærkere Læringsfællesskaber, sekretariatet",
            "faellesfunktion",
            date(2023, 4, 1),
            900_000,
        ),
    ],
    survey=[(2023, 28, 0.80, False), (2024, 29, 0.6449, True)],
)


@pytest.fixture(scope="module")
def seed_render(tmp_path_factory: pytest.TempPathFactory):
    from slf_warehouse.answers.render import render_inquiry

    root = tmp_path_factory.mktemp("seed")
    warehouse = build_warehouse(root / "wh.duckdb", SEED)
    answer = render_inquiry(
        warehouse,
        INQUIRY,
        root / "out",
        run_info={
            "run_id": "manual__2024-09-06",
            "version": "20240906T120000-manual",
            "source_files": ["bevillinger.csv", "loen_2024-06.csv"],
        },
    )
    return warehouse, answer, pdf_text(answer.pdf_path)


@pytest.fixture(scope="module")
def other_render(tmp_path_factory: pytest.TempPathFactory):
    from slf_warehouse.answers.render import render_inquiry

    root = tmp_path_factory.mktemp("other")
    warehouse = build_warehouse(root / "wh.duckdb", OTHER)
    answer = render_inquiry(warehouse, INQUIRY, root / "out")
    return warehouse, answer, pdf_text(answer.pdf_path)


def test_seed_figures_in_pdf(seed_render) -> None:
    _, answer, text = seed_render
    assert answer.pdf_path.name == "enhedslisten-slf.pdf" and answer.html_path.name == "enhedslisten-slf.html"
    assert "For perioden fra 2022 til medio 2024 er der afsat i alt 26 mio. kr. til understøttelsen." in text
    assert (
        "finansieres af centralt opsparede midler, af centrale midler afsat til kompetenceudvikling, "
        "af centrale puljer og af en donation fra A.P. Møller Fonden på 6,6 mio. kr."
    ) in text
    assert (
        "Der er pt. ansat 16 læringspartnere og en projektmedarbejder i Stærkere Læringsfællesskaber, "
        "som ledes af en sektionsleder." in text
    )
    assert "Projektmedarbejderen udvikler" in text
    assert "Der er ikke afsat midler på den enkelte skole eller dagtilbud" in text
    assert "målingen i 2023 viser" in text
    assert "forklaringskraft på 80 % mellem de to dimensioner" in text
    # Q3: what the money is spent on, within the window only
    assert "15,5 mio. kr. på løn og 4,1 mio. kr. på de fælles kompetenceudviklingsaktiviteter" in text


def test_seed_figures_values(seed_render) -> None:
    _, answer, _ = seed_render
    f = answer.figures
    assert f["allocated_total"].value == Decimal("26000000.00")
    assert f["allocated_total"].rows == 9  # the two allocations outside the window are not behind it
    assert f["allocated_apmf"].text == "6,6 mio. kr." and f["allocated_apmf"].rows == 3
    by_source = f["allocated_by_source"].result
    assert [r.funding_source for r in by_source.rows] == ["OPSPARING", "APMF", "KOMPETENCE", "PULJE"]
    assert [r.value.text for r in by_source.rows] == [
        "8,7 mio. kr.",
        "6,6 mio. kr.",
        "5,8 mio. kr.",
        "4,9 mio. kr.",
    ]
    assert f["staff_learning_partners"].value == 16 and f["staff_learning_partners"].rows == 1
    assert f["staff_latest_month"].text == "juni 2024"
    assert f["programme_funds_local_units"].value == 0 and f["programme_funds_local_units"].rows == 90
    assert f["survey_r_squared"].text == "80 %" and f["survey_latest_year"].text == "2023"


def test_letter_layout(seed_render) -> None:
    _, answer, text = seed_render
    first = page_texts(answer.pdf_path)[0]
    # the letterhead's two columns: poppler reads them across, line by line
    assert "Aarhus Kommune Dato 6. september 2024 Børn og Unge" in first
    assert "Side 1 af 6" in first
    assert "Svar på 10-dages forespørgsel fra Enhedslisten om Stærkere Læringsfællesskaber" in text
    assert "6. september 2024" in text
    for n in range(1, 11):
        assert f" {n}. " in text
    assert "Med venlig hilsen Thomas Medom Rådmand Martin Østergaard Christensen Direktør" in text
    # no approval behind this letter: it says so instead of passing for a signed one
    assert "Ikke underskrevet: brevet er dannet automatisk og endnu ikke godkendt." in text
    assert "Datagrundlag" in text
    # the appendix: figure names, marts, filters, rows and the run
    for needle in (
        "allocated_total",
        "marts.fct_allocations",
        "period_start >= :window_start (2022-01-01)",
        "26.000.000,00 kr.",
        "manual__2024-09-06",
        "20240906T120000-manual",
        "loen_2024-06.csv",
        "staff_latest_month",
        "R² = 0,7987",
    ):
        assert needle in text, needle


def test_pdf_metadata_and_font(seed_render) -> None:
    from pypdf import PdfReader

    _, answer, _ = seed_render
    reader = PdfReader(answer.pdf_path)
    meta = reader.metadata
    assert meta.title == "Svar på 10-dages forespørgsel fra Enhedslisten om Stærkere Læringsfællesskaber"
    assert meta.author == "Aarhus Kommune, Børn og Unge"
    assert meta.subject == "Stærkere Læringsfællesskaber"
    assert meta["/CreationDate"].startswith("D:20240906")
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    assert any(f.replace("-", "").endswith("DejaVuSans") for f in fonts), fonts
    assert len(reader.pages) >= 3


def test_other_numbers_show_instead(other_render) -> None:
    _, answer, text = other_render
    assert "afsat i alt 31,5 mio. kr. til understøttelsen" in text
    assert "26 mio. kr." not in text and "6,6 mio. kr." not in text
    # only the sources with money in the window, the donation last
    assert (
        "finansieres af centralt opsparede midler, af centrale puljer og af en donation fra "
        "A.P. Møller Fonden på 4 mio. kr."
    ) in text
    assert "kompetenceudvikling: " not in text
    assert "Der er pt. ansat ni læringspartnere og to projektmedarbejdere" in text
    assert "som ledes af en sektionsleder" in text
    assert "Projektmedarbejderne udvikler" in text
    assert "16 læringspartnere" not in text
    assert "forklaringskraft på 64 % mellem" in text and "80 %" not in text
    assert "målingen i 2024 viser" in text
    # Q6: money on local units → the amount, not the seed's sentence
    assert "Der er ikke afsat midler på den enkelte skole" not in text
    assert "er der bogført 1,4 mio. kr. af programmets midler" in text
    assert "Skovvangskolen: 1.250.000 kr." in text
    assert answer.figures["programme_funds_local_units"].value == Decimal("1375000.00")


def test_unit_name_with_markup_characters_prints_literally(other_render) -> None:
    _, answer, text = other_render
    assert "Børnehuset <Sol> & \"Måne\" 'Ø': 125.000 kr." in text
    html = answer.html_path.read_text(encoding="utf-8")
    assert "Børnehuset &lt;Sol&gt; &amp; &#34;Måne&#34; &#39;Ø&#39;" in html
    assert "<Sol>" not in html


def test_same_inputs_give_identical_bytes(tmp_path: Path, seed_render) -> None:
    from slf_warehouse.answers.render import render_inquiry

    warehouse, first, _ = seed_render
    copy = tmp_path / "elsewhere.duckdb"
    shutil.copy(warehouse, copy)
    again = render_inquiry(
        copy,
        INQUIRY,
        tmp_path / "out",
        run_info={
            "run_id": "manual__2024-09-06",
            "version": "20240906T120000-manual",
            "source_files": ["bevillinger.csv", "loen_2024-06.csv"],
        },
    )
    assert again.pdf_path.read_bytes() == first.pdf_path.read_bytes()
    assert again.html_path.read_bytes() == first.html_path.read_bytes()


def test_identical_bytes_in_a_fresh_process(tmp_path: Path, seed_render) -> None:
    """Another interpreter (another hash seed) writes the same PDF."""
    warehouse, first, _ = seed_render
    out = tmp_path / "out"
    code = (
        "import sys; from pathlib import Path; from slf_warehouse.answers.render import render_inquiry; "
        "render_inquiry(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), run_info={'run_id': "
        "'manual__2024-09-06', 'version': '20240906T120000-manual', 'source_files': "
        "['bevillinger.csv', 'loen_2024-06.csv']})"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(warehouse), str(INQUIRY), str(out)], check=True, env=env)
    assert (out / "enhedslisten-slf.pdf").read_bytes() == first.pdf_path.read_bytes()


def test_warehouse_is_opened_read_only(seed_render) -> None:
    """Rendering works while another process holds the file read-only, and does not write to it."""
    warehouse, _, _ = seed_render
    before = warehouse.stat().st_mtime_ns
    with duckdb.connect(str(warehouse), read_only=True):
        from slf_warehouse.answers.render import render_inquiry

        render_inquiry(warehouse, INQUIRY, warehouse.parent / "out-ro")
    assert warehouse.stat().st_mtime_ns == before


def test_missing_mart_is_a_clear_error(tmp_path: Path) -> None:
    from slf_warehouse.answers.figures import FigureError
    from slf_warehouse.answers.render import render_inquiry

    warehouse = build_warehouse(tmp_path / "wh.duckdb", SEED)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("DROP TABLE marts.rpt_survey_fit")
    with pytest.raises(FigureError, match=r"marts.rpt_survey_fit does not exist"):
        render_inquiry(warehouse, INQUIRY, tmp_path / "out")


def test_pdf_ua_structure_and_language(seed_render) -> None:
    """PDF/UA-1: a structure tree, the language, the title shown, the chart's alternate text."""
    from pypdf import PdfReader

    _, answer, _ = seed_render
    reader = PdfReader(answer.pdf_path)
    root = reader.trailer["/Root"]
    assert "/StructTreeRoot" in root and root["/Lang"] == "da"
    assert bool(root["/MarkInfo"]["/Marked"]) and bool(root["/ViewerPreferences"]["/DisplayDocTitle"])
    assert b'pdfuaid:part="1"' in reader.xmp_metadata.stream.get_data()
    assert reader.pdf_header == "%PDF-1.7"


def test_chart_under_question_2(seed_render) -> None:
    _, answer, text = seed_render
    html = answer.html_path.read_text(encoding="utf-8")
    q2, q3 = html.index('<span class="number">2.</span>'), html.index('<span class="number">3.</span>')
    assert q2 < html.index("<svg ") < q3
    assert (
        "<title>Afsatte midler pr. finansieringskilde. Centralt opsparede midler: 8,7 mio. kr.; Donation fra "
        "A.P. Møller Fonden: 6,6 mio. kr.; Centrale midler afsat til kompetenceudvikling: 5,8 mio. kr.; "
        "Centrale puljer: 4,9 mio. kr.</title>"
    ) in html
    # the chart's labels are text in the PDF, between question 2's list and its caption
    chart = re.search(
        r"Centrale puljer: 4,9 mio\. kr\. (.*?) Figur 1\. Afsatte midler pr\. finansieringskilde 3\.", text
    )
    assert chart is not None
    assert "Centralt opsparede midler 8,7 mio. kr." in chart.group(1) and chart.group(1).endswith(
        "10 mio. kr."
    )


def test_quality_override_is_printed_on_every_page(tmp_path: Path, seed_render) -> None:
    from slf_warehouse.answers.render import render_inquiry

    reason = 'Lønfil for juni kommer først 3/7 <b>&</b> "godkendt" af økonomichefen'
    answer = render_inquiry(seed_render[0], INQUIRY, tmp_path, run_info={"run_id": "r1", "override": reason})
    pages = page_texts(answer.pdf_path)
    assert len(pages) > 1
    for text in pages:
        assert f"Offentliggjort trods fejlede kvalitetskontroller: {reason}" in text


def test_the_letter_template_is_compiled_once_and_again_when_it_changes(tmp_path: Path) -> None:
    """Each process compiles the letter's template once (about 25 ms a letter), and an edited template
    file is still what the next letter is rendered from."""
    from slf_warehouse.answers.render import LETTER_TEMPLATE
    from slf_warehouse.rendering.templates import template_environment

    templates = tmp_path / "templates"
    shutil.copytree(PROJECT / "report_templates", templates)
    env = template_environment(templates, sandboxed=True)
    first = env.get_template(LETTER_TEMPLATE)
    assert (
        template_environment(templates, sandboxed=True) is env and env.get_template(LETTER_TEMPLATE) is first
    )
    template = templates / LETTER_TEMPLATE
    template.write_text(template.read_text(encoding="utf-8") + "<!-- edited -->\n", encoding="utf-8")
    os.utime(template, ns=(template.stat().st_atime_ns, template.stat().st_mtime_ns + 1_000_000_000))
    assert (
        template_environment(templates, sandboxed=True).get_template(LETTER_TEMPLATE) is not first
    )  # compiled anew
