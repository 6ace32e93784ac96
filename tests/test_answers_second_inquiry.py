"""The second inquiry (inquiries/konservative-kompetenceaktiviteter.yaml) on a small warehouse built
here with known rows: other marts, two budget years, a pivot table, a bar chart and a column chart.
Every expected number below is worked out by hand from the rows."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

PROJECT = Path(__file__).resolve().parents[1]
INQUIRY = PROJECT / "inquiries" / "konservative-kompetenceaktiviteter.yaml"

DDL = """
CREATE SCHEMA marts;
CREATE TABLE marts.rpt_activity_costs (
    activity_id VARCHAR, activity_type VARCHAR, title VARCHAR, held_on DATE, target_group VARCHAR,
    district VARCHAR, participants INTEGER, cost_dkk DECIMAL(18, 2), cost_per_participant DECIMAL(18, 2));
CREATE TABLE marts.rpt_spending_by_purpose (
    posting_month DATE, budget_year INTEGER, funding_source VARCHAR, purpose VARCHAR, flow VARCHAR,
    amount_dkk DECIMAL(18, 2), postings INTEGER);
CREATE TABLE marts.fct_programme_postings (
    posting_id VARCHAR, posting_date DATE, amount_dkk DECIMAL(18, 2), flow VARCHAR, purpose VARCHAR);
"""

ACTIVITIES = [  # (id, type, held_on, district, participants, cost)
    ("A1", "introduktionsdag", date(2022, 3, 10), "Nord", 100, 120_000),
    ("A2", "lederseminar", date(2022, 9, 1), "Nord", 50, 80_000),
    ("A3", "introduktionsdag", date(2023, 2, 1), "Syd", 60, 90_000),
    ("A4", "laeringsdag", date(2023, 5, 5), None, 200, 250_000),
    ("A5", "lederseminar", date(2023, 12, 31), "Syd", 40, 60_000),  # the window's last day: counts
    ("A6", "introduktionsdag", date(2024, 1, 15), "Nord", 70, 99_999),  # after the window
    ("A7", "laeringsdag", date(2021, 12, 31), None, 10, 77_777),  # before it
]
SPENDING = [  # (month, purpose, flow, amount)
    (date(2022, 1, 1), "salaries", "expense", 1_000_000),
    (date(2022, 4, 1), "salaries", "expense", 1_100_000),
    (date(2022, 5, 1), "competence_activities", "expense", 200_000),
    (date(2022, 5, 1), "other", "income", -500_000),  # income is not spending
    (date(2023, 7, 1), "salaries", "expense", 1_200_000),
    (date(2023, 12, 1), "competence_activities", "expense", 400_000),
    (date(2024, 1, 1), "salaries", "expense", 999_000),  # after the window
]


def build(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute(DDL)
        for aid, kind, held, district, participants, cost in ACTIVITIES:
            con.execute(
                "INSERT INTO marts.rpt_activity_costs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    aid,
                    kind,
                    f"{kind} {aid}",
                    held,
                    "ledere",
                    district,
                    participants,
                    Decimal(cost),
                    Decimal(cost) / participants,
                ],
            )
        for i, (month, purpose, flow, amount) in enumerate(SPENDING):
            con.execute(
                "INSERT INTO marts.rpt_spending_by_purpose VALUES (?, ?, ?, ?, ?, ?, ?)",
                [month, month.year, "OPSPARING", purpose, flow, Decimal(amount), 1],
            )
            con.execute(
                "INSERT INTO marts.fct_programme_postings VALUES (?, ?, ?, ?, ?)",
                [f"p{i}", month.replace(day=15), Decimal(amount), flow, purpose],
            )
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    from slf_warehouse.answers.render import render_inquiry
    from test_answers_render import pdf_text

    root = tmp_path_factory.mktemp("second")
    answer = render_inquiry(
        build(root / "wh.duckdb"), INQUIRY, root / "out", run_info={"run_id": "r", "version": "v"}
    )
    return answer, pdf_text(answer.pdf_path), answer.html_path.read_text(encoding="utf-8")


def test_figures(rendered) -> None:
    answer, _, _ = rendered
    f = answer.figures
    assert f["activity_costs_total"].value == Decimal("600000.00")
    assert f["activity_count"].value == 5 and f["activity_participants"].value == 450
    assert [(r.keys["held_on"], r.value.value) for r in f["activity_costs_by_year"].result.rows] == [
        (date(2022, 1, 1), Decimal("200000.00")),
        (date(2023, 1, 1), Decimal("400000.00")),
    ]
    assert f["spent_total"].value == Decimal("3900000.00")
    assert [(r.keys["posting_month"], r.value.value) for r in f["spent_by_quarter"].result.rows] == [
        (date(2022, 1, 1), Decimal("1000000.00")),
        (date(2022, 4, 1), Decimal("1300000.00")),
        (date(2023, 7, 1), Decimal("1200000.00")),
        (date(2023, 10, 1), Decimal("400000.00")),
    ]


def test_letter_text(rendered) -> None:
    answer, text, _ = rendered
    assert answer.pdf_path.name == "konservative-kompetenceaktiviteter.pdf"
    assert (
        "Svar på 10-dages forespørgsel fra Det Konservative Folkeparti om udgifterne til "
        "kompetenceaktiviteter i Stærkere Læringsfællesskaber"
    ) in text
    assert "UDKAST – ikke afsendt" in text and "Status Udkast" in text
    assert "Dato 9. april 2024" in text and "Modtaget 22. marts 2024" in text
    assert "Svarfrist 10. april 2024 (10 arbejdsdage efter modtagelsen)" in text  # Easter skipped
    assert "har Stærkere Læringsfællesskaber holdt fem fælles kompetenceaktiviteter" in text
    assert "De har kostet i alt 600.000 kr." in text
    assert "Der har i alt været 450 deltagere, hvilket svarer til 1.333 kr. pr. deltager." in text
    assert "2022: 200.000 kr." in text and "2023: 400.000 kr." in text
    assert "Programmets samlede udgifter i 2022 og 2023 er 3,9 mio. kr." in text
    assert "Heraf er 3,3 mio. kr. brugt på løn og 600.000 kr. på de fælles kompetenceaktiviteter." in text


def _table(html: str, number: int) -> list[str]:
    start = html.index(f"Tabel {number}.</span>")
    return re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", html[start : html.index("</table>", start)])


def test_tables(rendered) -> None:
    _, _, html = rendered
    assert _table(html, 1) == [
        "Aktivitetstype",
        "Udgift, kr.",
        "Læringsdage",
        "250.000",
        "Introduktionsdage",
        "210.000",
        "Lederseminarer",
        "140.000",
        "I alt",
        "600.000",
    ]
    # rows in the labels' order (Nord, Syd, …, Hele byen); districts without activities are not shown
    assert _table(html, 2) == [
        "Distrikt",
        "Introduktionsdage",
        "Lederseminarer",
        "Læringsdage",
        "I alt",
        "Nord",
        "120.000",
        "80.000",
        "–",
        "200.000",
        "Syd",
        "90.000",
        "60.000",
        "–",
        "150.000",
        "Hele byen",
        "–",
        "–",
        "250.000",
        "250.000",
        "I alt",
        "210.000",
        "140.000",
        "250.000",
        "600.000",
    ]
    assert _table(html, 3) == [
        "Formål",
        "2022",
        "2023",
        "I alt",
        "Løn",
        "2.100.000",
        "1.200.000",
        "3.300.000",
        "Kompetenceaktiviteter",
        "200.000",
        "400.000",
        "600.000",
        "I alt",
        "2.300.000",
        "1.600.000",
        "3.900.000",
    ]


def test_charts(rendered) -> None:
    _, _, html = rendered
    assert html.count("<svg ") == 2
    assert (
        "<title>Udgifter til kompetenceaktiviteter pr. distrikt, 2022–2023. Hele byen: 250.000 kr.; "
        "Nord: 200.000 kr.; Syd: 150.000 kr.</title>"
    ) in html
    assert (
        "<title>Programmets forbrug pr. kvartal, 2022–2023. 1. kvt. 2022: 1 mio. kr.; 2. kvt. 2022: "
        "1,3 mio. kr.; 3. kvt. 2023: 1,2 mio. kr.; 4. kvt. 2023: 400.000 kr.</title>"
    ) in html
    # each chart sits under its question, after the answer's tables
    q2, q3 = html.index('<span class="number">2.</span>'), html.index('<span class="number">3.</span>')
    assert q2 < html.index("Figur 1.</span>") < q3 < html.index("Figur 2.</span>")
    assert html.index("Tabel 2.</span>") < html.index("Figur 1.</span>")


def test_pdf_is_tagged_with_the_charts_alternate_text(rendered) -> None:
    from pypdf import PdfReader

    answer, _, _ = rendered
    reader = PdfReader(answer.pdf_path)
    root = reader.trailer["/Root"]
    assert root["/Lang"] == "da" and bool(root["/MarkInfo"]["/Marked"])
    alts, kinds = [], set()

    def walk(node) -> None:
        node = node.get_object() if hasattr(node, "get_object") else node
        if not isinstance(node, dict):  # a marked-content id
            return
        if "/S" in node:
            kinds.add(str(node["/S"]))
            if node["/S"] == "/Figure" and "/Alt" in node:
                alts.append(str(node["/Alt"]))
        kids = node.get("/K")
        for kid in kids if isinstance(kids, list) else ([] if kids is None else [kids]):
            walk(kid)

    walk(root["/StructTreeRoot"])
    assert {"/Document", "/H1", "/H2", "/P", "/Table", "/TH", "/TD", "/Figure", "/Caption", "/L"} <= kinds
    assert b'pdfuaid:part="1"' in reader.xmp_metadata.stream.get_data()  # declared PDF/UA-1
    assert len(alts) == 2 and alts[1].startswith(
        "Programmets forbrug pr. kvartal, 2022–2023. 1. kvt. 2022: 1 mio. kr."
    )
