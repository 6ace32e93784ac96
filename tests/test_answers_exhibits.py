"""Tables and charts under an answer: declarations checked on load, SVG drawn deterministically
with Danish axis labels, group values written by their period or the inquiry's labels."""

from __future__ import annotations

import copy
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from slf_warehouse.answers.exhibits import ChartSpec, TableSpec, key_label, render_chart, render_table
from slf_warehouse.answers.figures import FIGURES, FigureResult, FigureRow, FigureTable, FigureValue
from slf_warehouse.answers.inquiry import InquiryError, load_inquiry
from slf_warehouse.rendering import charts

PROJECT = Path(__file__).resolve().parents[1]
GOOD = yaml.safe_load((PROJECT / "inquiries" / "enhedslisten-slf.yaml").read_text(encoding="utf-8"))


def _inquiry_with(tmp_path: Path, **exhibits) -> Path:
    data = copy.deepcopy(GOOD)
    data["questions"][1].pop("charts", None)
    data["questions"][1].update(exhibits)
    path = tmp_path / "exh.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _table(name: str, rows: list[tuple[dict, Decimal]]) -> FigureResult:
    spec = FIGURES[name]
    items = tuple(
        FigureRow(keys, FigureValue(name, value, spec.unit, spec.format, 1)) for keys, value in rows
    )
    total = FigureValue(name, sum((v for _, v in rows), Decimal(0)), spec.unit, spec.format, len(rows))
    return FigureResult(spec, {}, FigureTable(name, spec.group_by, items, total), "")


# --- declarations ----------------------------------------------------------------------------------


def test_the_inquiries_declare_charts_and_tables() -> None:
    loaded = load_inquiry(PROJECT / "inquiries" / "enhedslisten-slf.yaml")
    [chart] = loaded.inquiry.questions[1].charts
    assert (chart.figure, chart.kind, chart.category) == (
        "allocated_by_source",
        "bars",
        "funding_source_name",
    )
    second = load_inquiry(PROJECT / "inquiries" / "konservative-kompetenceaktiviteter.yaml")
    kinds = [(c.figure, c.kind) for q in second.inquiry.questions for c in q.charts]
    assert ("spent_by_quarter", "columns") in kinds and ("activity_costs_by_district", "bars") in kinds
    assert any(t.columns for q in second.inquiry.questions for t in q.tables)  # a pivot table
    # the exhibits' figures are evaluated (and shown in the appendix) although no text prints them
    assert {"activity_costs_by_district_type", "spent_by_quarter"} <= set(second.figure_names)


@pytest.mark.parametrize(
    ("exhibits", "message"),
    [
        ({"charts": [{"figure": "allocated_total", "kind": "bars", "title": "x"}]}, r"single number"),
        (
            {"charts": [{"figure": "allocated_by_sorce", "kind": "bars", "title": "x"}]},
            r"questions\[1\].charts\[0\] \(question 2\): unknown figure 'allocated_by_sorce'",
        ),
        ({"charts": [{"figure": "allocated_by_source", "kind": "pie", "title": "x"}]}, r"kind"),
        (
            {
                "charts": [
                    {"figure": "allocated_by_source", "kind": "bars", "title": "x", "category": "district"}
                ]
            },
            r"'district' not a group column of figure 'allocated_by_source'",
        ),
        (
            {
                "tables": [
                    {
                        "figure": "activity_costs_by_district_type",
                        "caption": "x",
                        "rows": ["district"],
                        "columns": "district",
                    }
                ]
            },
            r"both in rows and columns",
        ),
        (
            {
                "tables": [
                    {"figure": "activity_costs_by_type", "caption": "x", "labels": {"purpose": {"a": "b"}}}
                ]
            },
            r"'purpose' not a group column",
        ),
        ({"tables": [{"figure": "activity_costs_by_type"}]}, r"caption: missing"),
    ],
)
def test_bad_exhibits_fail_on_load(tmp_path: Path, exhibits: dict, message: str) -> None:
    with pytest.raises(InquiryError, match=message):
        load_inquiry(_inquiry_with(tmp_path, **exhibits))


# --- group values ----------------------------------------------------------------------------------


def test_key_labels() -> None:
    quarter, year = FIGURES["spent_by_quarter"], FIGURES["activity_costs_by_year"]
    assert key_label(date(2022, 4, 1), "posting_month", quarter, {}) == "2. kvt. 2022"
    assert key_label(date(2023, 1, 1), "held_on", year, {}) == "2023"
    district = FIGURES["activity_costs_by_district"]
    labels = TableSpec(figure="x", caption="x", labels={"district": {None: "Hele byen"}}).labels
    assert key_label(None, "district", district, labels) == "Hele byen"
    assert key_label(None, "district", district, {}) == "(uoplyst)"
    assert key_label(2022, "budget_year", FIGURES["spent_by_year_purpose"], {}) == "2022"  # no "2.022"


# --- tables ----------------------------------------------------------------------------------------


def test_pivot_table_with_totals_and_label_order() -> None:
    result = _table(
        "activity_costs_by_district_type",
        [
            ({"district": None, "activity_type": "laeringsdag"}, Decimal("250000")),
            ({"district": "Nord", "activity_type": "introduktionsdag"}, Decimal("120000.40")),
            ({"district": "Nord", "activity_type": "lederseminar"}, Decimal("80000")),
            ({"district": "Syd", "activity_type": "introduktionsdag"}, Decimal("90000")),
        ],
    )
    spec = TableSpec(
        figure="activity_costs_by_district_type",
        caption="Udgifter <kr.>",
        rows=["district"],
        columns="activity_type",
        sort="key",
        labels={
            "district": {"Syd": "Syd", "Nord": "Nord", None: "Hele byen"},
            "activity_type": {
                "introduktionsdag": "Introduktionsdage",
                "lederseminar": "Lederseminarer",
                "laeringsdag": "Læringsdage",
            },
        },
    )
    html = str(render_table(spec, result, 3))
    assert "Tabel 3.</span> Udgifter &lt;kr.&gt;</caption>" in html
    cells = re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", html)
    assert cells == [
        "Distrikt",
        "Introduktionsdage",
        "Lederseminarer",
        "Læringsdage",
        "I alt",
        "Syd",
        "90.000",
        "–",
        "–",
        "90.000",
        "Nord",
        "120.000",
        "80.000",
        "–",
        "200.000",
        "Hele byen",
        "–",
        "–",
        "250.000",
        "250.000",
        "I alt",
        "210.000",
        "80.000",
        "250.000",
        "540.000",
    ]
    assert '<th scope="row">Syd</th>' in html and '<th scope="col" class="num">Lederseminarer</th>' in html


def test_simple_table_in_figure_order() -> None:
    result = _table(
        "activity_costs_by_type",
        [
            ({"activity_type": "laeringsdag"}, Decimal("250000")),
            ({"activity_type": "lederseminar"}, Decimal("140000")),
        ],
    )
    html = str(
        render_table(
            TableSpec(figure="activity_costs_by_type", caption="c", headings={"value": "Udgift"}), result, 1
        )
    )
    assert re.findall(r"<t[hd][^>]*>([^<]*)</t[hd]>", html) == [
        "Aktivitetstype",
        "Udgift",
        "laeringsdag",
        "250.000",
        "lederseminar",
        "140.000",
        "I alt",
        "390.000",
    ]


# --- charts ----------------------------------------------------------------------------------------


def test_bar_chart_svg() -> None:
    result = _table(
        "allocated_by_source",
        [
            (
                {"funding_source": "OPSPARING", "funding_source_name": "Centralt opsparede midler"},
                Decimal("8700000"),
            ),
            (
                {"funding_source": "APMF", "funding_source_name": "Donation fra A.P. Møller Fonden"},
                Decimal("6600000"),
            ),
        ],
    )
    chart = ChartSpec(
        figure="allocated_by_source", kind="bars", title="Afsat & fordelt", category="funding_source_name"
    )
    html = str(render_chart(chart, result, 2))
    assert html == str(render_chart(chart, result, 2))  # deterministic
    assert html.startswith('<figure class="exhibit chart">\n<svg xmlns="http://www.w3.org/2000/svg"')
    assert (
        "<title>Afsat &amp; fordelt. Centralt opsparede midler: 8,7 mio. kr.; "
        "Donation fra A.P. Møller Fonden: 6,6 mio. kr.</title>"
    ) in html
    texts = re.findall(r"<text [^>]*>([^<]*)</text>", html)
    # ticks 0, 2 … 10 (millions), the axis title, the category labels and the bars' values
    assert [t for t in texts if t.isdigit()] == ["0", "2", "4", "6", "8", "10"]
    assert "mio. kr." in texts and "Donation fra A.P. Møller Fonden" in texts and "8,7 mio. kr." in texts
    assert "Figur 2.</span> Afsat &amp; fordelt</figcaption>" in html
    assert html.count("<rect") == 4  # two bars, each value on a white ground


def test_column_chart_quarters_and_decimal_ticks() -> None:
    result = _table(
        "spent_by_quarter",
        [
            ({"posting_month": date(2022, 1, 1)}, Decimal("1000000")),
            ({"posting_month": date(2022, 4, 1)}, Decimal("1300000")),
            ({"posting_month": date(2023, 7, 1)}, Decimal("1200000")),
        ],
    )
    html = str(render_chart(ChartSpec(figure="spent_by_quarter", kind="columns", title="Forbrug"), result, 1))
    texts = re.findall(r"<text [^>]*>([^<]*)</text>", html)
    assert texts[:1] == ["mio. kr."]
    assert [t for t in texts if re.fullmatch(r"\d,\d", t)][:4] == ["0,0", "0,5", "1,0", "1,5"]
    assert [t for t in texts if "kvt" in t or t.startswith("20")] == [
        "1. kvt.",
        "2022",
        "2. kvt.",
        "3. kvt.",
        "2023",
    ]
    assert "2. kvt. 2022: 1,3 mio. kr." in html  # the alternate text names the quarter in full


def test_negative_and_small_values() -> None:
    points = [
        charts.Point(("a",), Decimal("-200000"), "-200.000 kr."),
        charts.Point(("b",), Decimal("50000"), "50.000 kr."),
    ]
    svg = str(charts.bar_chart("t", points, "kr"))
    assert "1.000 kr." in svg and charts.NEGATIVE_COLOUR in svg
    assert "-200" in re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    empty = str(charts.column_chart("t", [], "kr"))
    assert "<title>t. Ingen værdier.</title>" in empty


def test_text_width_uses_the_fonts_metrics() -> None:
    assert charts.text_width("iii") < charts.text_width("mmm")
    assert charts.text_width("Øst", 10) == pytest.approx((0.787 + 0.521 + 0.392) * 10)


def test_month_columns_name_the_year_once() -> None:
    from dataclasses import replace

    spec = replace(FIGURES["spent_by_quarter"], name="spent_by_month", periods=(("posting_month", "month"),))
    rows = [({"posting_month": date(2023, m, 1)}, Decimal(m * 100_000)) for m in (11, 12)] + [
        ({"posting_month": date(2024, m, 1)}, Decimal(m * 100_000)) for m in (1, 5)
    ]
    items = tuple(FigureRow(k, FigureValue("x", v, "kr", "mio", 1)) for k, v in rows)
    result = FigureResult(
        spec, {}, FigureTable("x", spec.group_by, items, FigureValue("x", 0, "kr", "mio", 4)), ""
    )
    html = str(render_chart(ChartSpec(figure="spent_by_quarter", kind="columns", title="t"), result, 1))
    texts = re.findall(r"<text [^>]*>([^<]*)</text>", html)
    assert [t for t in texts if t[:1].isalpha() and t != "mio. kr."] == ["nov.", "dec.", "jan.", "maj"]
    assert [t for t in texts if t in ("2023", "2024")] == ["2023", "2024"]
    assert "maj 2024: 500.000 kr." in html


def test_rows_that_collide_on_the_shown_columns_are_an_error() -> None:
    from slf_warehouse.answers.exhibits import ExhibitError

    result = _table(
        "activity_costs_by_district_type",
        [
            ({"district": "Nord", "activity_type": "introduktionsdag"}, Decimal(1)),
            ({"district": "Nord", "activity_type": "lederseminar"}, Decimal(2)),
        ],
    )
    with pytest.raises(ExhibitError, match=r"two rows have the same district \('Nord'\)"):
        render_chart(
            ChartSpec(figure="activity_costs_by_district_type", kind="bars", title="t", category="district"),
            result,
            1,
        )
    with pytest.raises(ExhibitError, match=r"two rows share the shown columns \(district\)"):
        render_table(
            TableSpec(figure="activity_costs_by_district_type", caption="c", rows=["district"]), result, 1
        )
