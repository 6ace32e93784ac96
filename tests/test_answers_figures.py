"""The figure registry: declarations validated, identifiers checked against information_schema,
values bound as parameters."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from slf_warehouse.answers.figures import (
    FIGURES,
    PARAMETERS,
    FigureError,
    Filter,
    build_query,
    evaluate,
    evaluate_figures,
)

WINDOW = {"window_start": date(2022, 1, 1), "window_end": date(2024, 6, 30)}


@pytest.fixture()
def con(tmp_path: Path):
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as c:
        c.execute("CREATE SCHEMA marts")
        c.execute(
            "CREATE TABLE marts.fct_allocations (allocation_id VARCHAR, funding_source VARCHAR, "
            "funding_source_name VARCHAR, period_start DATE, period_end DATE, amount_dkk DECIMAL(18, 2))"
        )
        c.executemany(
            "INSERT INTO marts.fct_allocations VALUES (?, ?, ?, ?, ?, ?)",
            [
                [
                    "A1",
                    "APMF",
                    "Donation fra A.P. Møller Fonden",
                    date(2022, 1, 1),
                    date(2022, 12, 31),
                    Decimal("4000000"),
                ],
                [
                    "A2",
                    "APMF",
                    "Donation fra A.P. Møller Fonden",
                    date(2023, 1, 1),
                    date(2024, 6, 30),
                    Decimal("2600000"),
                ],
                ["A3", "PULJE", "Centrale puljer", date(2022, 1, 1), date(2024, 6, 30), Decimal("19400000")],
                ["A4", "PULJE", "Centrale puljer", date(2024, 7, 1), date(2024, 12, 31), Decimal("1000000")],
            ],
        )
        c.execute(
            "CREATE TABLE marts.rpt_survey_fit (survey_year INTEGER, r_squared DOUBLE, "
            "is_latest_year BOOLEAN, units_used INTEGER)"
        )
        c.executemany(
            "INSERT INTO marts.rpt_survey_fit VALUES (?, ?, ?, ?)",
            [[2022, 0.74, False, 30], [2023, 0.7987, True, 31]],
        )
    with duckdb.connect(str(path), read_only=True) as c:
        yield c


def test_registry_is_consistent() -> None:
    assert len(FIGURES) == len({s.name for s in FIGURES.values()})
    for name, spec in FIGURES.items():
        assert spec.name == name and spec.mart.startswith("marts.")
        assert spec.label and spec.definition
        for f in spec.filters:
            assert f.param is None or f.param in PARAMETERS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mart": "fct_allocations"}, "schema.table"),
        ({"mart": "marts.fct_allocations; drop table x"}, "identifier"),
        ({"column": "amount_dkk) FROM x --"}, "identifier"),
        ({"aggregate": "avg"}, "aggregate"),
        ({"unit": "euro"}, "unit"),
        ({"format": "mia"}, "format"),
        ({"filters": (Filter("amount_dkk", "LIKE", "1%"),)}, "operator"),
        ({"filters": (Filter("period_start", ">=", param="today"),)}, "unknown parameter"),
        (
            {"filters": (Filter("period_start", ">=", value=date(2022, 1, 1), param="window_start"),)},
            "not both",
        ),
        ({"filters": (Filter("funding_source", "in", "APMF"),)}, "list"),
        ({"filters": (Filter('funding_source" OR 1=1 --', "=", "x"),)}, "identifier"),
        ({"group_by": ("funding source",)}, "identifier"),
        ({"group_by": ("period_start",), "periods": (("period_end", "quarter"),)}, "not a group_by column"),
        (
            {"group_by": ("period_start",), "periods": (("period_start", "week'); DROP TABLE x; --"),)},
            "period",
        ),
        ({"group_by": ("period_start",), "order": "random"}, "order"),
    ],
)
def test_bad_declarations_are_rejected(change, message) -> None:
    with pytest.raises(ValueError, match=message):
        replace(FIGURES["allocated_apmf"], **change)


def test_values_are_bound_not_formatted() -> None:
    sql, bound = build_query(FIGURES["allocated_apmf"], WINDOW)
    assert "APMF" not in sql and "2022" not in sql
    assert sql.count("?") == 3 and bound == ["APMF", date(2022, 1, 1), date(2024, 6, 30)]
    assert sql.startswith(
        'SELECT coalesce(sum("amount_dkk"), 0) AS value, count(*) AS n_rows '
        'FROM "marts"."fct_allocations" WHERE'
    )


def test_sum_with_rows_behind(con) -> None:
    result = evaluate(con, FIGURES["allocated_apmf"], WINDOW)
    assert result.value == Decimal("6600000.00") and result.rows == 2 and result.text == "6,6 mio. kr."
    total = evaluate(con, FIGURES["allocated_total"], WINDOW)
    assert total.value == Decimal("26000000.00") and total.rows == 3  # A4 lies after the window


def test_table_figure(con) -> None:
    result = evaluate(con, FIGURES["allocated_by_source"], WINDOW).result
    assert [(r.funding_source, r.value.text, r.rows) for r in result.rows] == [
        ("PULJE", "19,4 mio. kr.", 1),
        ("APMF", "6,6 mio. kr.", 2),
    ]
    assert result.total.value == Decimal("26000000.00") and result.row_count == 3
    assert result.row(funding_source="APMF").funding_source_name == "Donation fra A.P. Møller Fonden"
    assert result.row(funding_source="KOMPETENCE") is None


def test_value_figures(con) -> None:
    figures = evaluate_figures(con, ["survey_latest_year", "survey_r_squared"], WINDOW)
    assert figures["survey_latest_year"].text == "2023"
    assert figures["survey_r_squared"].text == "80 %" and figures["survey_r_squared"].rows == 1


def test_value_with_several_rows_is_an_error(con) -> None:
    spec = replace(FIGURES["survey_r_squared"], filters=())
    with pytest.raises(FigureError, match="found several"):
        evaluate(con, spec, WINDOW)


def test_value_without_rows_is_none(con) -> None:
    spec = replace(FIGURES["survey_r_squared"], filters=(Filter("survey_year", "=", 1999),))
    result = evaluate(con, spec, WINDOW)
    assert result.value is None and result.rows == 0 and result.text == "–"


def test_a_hostile_value_is_just_a_value(con) -> None:
    spec = replace(FIGURES["allocated_apmf"], filters=(Filter("funding_source", "=", "APMF' OR '1'='1"),))
    result = evaluate(con, spec, WINDOW)
    assert result.value == 0 and result.rows == 0


def test_in_operator(con) -> None:
    spec = replace(
        FIGURES["allocated_total"], filters=(Filter("funding_source", "in", ("APMF", "KOMPETENCE")),)
    )
    sql, bound = build_query(spec, WINDOW)
    assert '"funding_source" IN (?, ?)' in sql and bound == ["APMF", "KOMPETENCE"]
    assert evaluate(con, spec, WINDOW).value == Decimal("6600000.00")


def test_identifiers_checked_against_information_schema(con) -> None:
    with pytest.raises(FigureError, match=r"column\(s\) amount not in marts.fct_allocations"):
        evaluate(con, replace(FIGURES["allocated_total"], column="amount"), WINDOW)
    with pytest.raises(FigureError, match=r"marts.fct_payroll does not exist"):
        evaluate(con, replace(FIGURES["allocated_total"], mart="marts.fct_payroll"), WINDOW)
    with pytest.raises(FigureError, match=r"column\(s\) period_from"):
        evaluate(
            con,
            replace(FIGURES["allocated_total"], filters=(Filter("period_from", ">=", param="window_start"),)),
            WINDOW,
        )


def test_filter_type_mismatch(con) -> None:
    spec = replace(
        FIGURES["allocated_total"], filters=(Filter("funding_source", ">=", param="window_start"),)
    )
    with pytest.raises(FigureError, match=r"compares column funding_source \(VARCHAR\) with a date"):
        evaluate(con, spec, WINDOW)


def test_missing_parameter(con) -> None:
    with pytest.raises(FigureError, match="window_end.* not supplied"):
        evaluate(con, FIGURES["allocated_total"], {"window_start": date(2022, 1, 1)})


def test_unknown_figure_name(con) -> None:
    with pytest.raises(FigureError, match="unknown figure"):
        evaluate_figures(con, ["nope"], WINDOW)


def test_figure_value_in_templates() -> None:
    from slf_warehouse.answers.figures import FigureValue

    v = FigureValue("x", Decimal("26000000"), "kr", "mio", 9)
    assert str(v) == "26 mio. kr." and v.__html__() == '<span class="figure">26 mio. kr.</span>'
    assert FigureValue("x", 1, "count", "words", 1).text == "en"
    assert FigureValue("x", 16, "count", "words", 1).text == "16"


def test_period_groups_in_time_order(con) -> None:
    """A date group column truncated to its year (fixed SQL text), rows by the group, not the value."""
    spec = replace(
        FIGURES["allocated_by_source"],
        name="allocated_by_year",
        group_by=("period_start",),
        periods=(("period_start", "year"),),
        order="group",
        filters=(),
    )
    sql, bound = build_query(spec, WINDOW)
    assert 'CAST(date_trunc(\'year\', "period_start") AS DATE) AS "period_start"' in sql and bound == []
    assert sql.endswith("ORDER BY CAST(date_trunc('year', \"period_start\") AS DATE) NULLS LAST")
    rows = evaluate(con, spec, WINDOW).result.rows
    assert [(r.period_start, r.value.value, r.rows) for r in rows] == [
        (date(2022, 1, 1), Decimal("23400000.00"), 2),
        (date(2023, 1, 1), Decimal("2600000.00"), 1),
        (date(2024, 1, 1), Decimal("1000000.00"), 1),
    ]
    assert "pr. year(period_start)" in spec.describe()


def test_year_parameters(con) -> None:
    spec = replace(
        FIGURES["survey_units_used"],
        filters=(
            Filter("survey_year", ">=", param="window_start_year"),
            Filter("survey_year", "<=", param="window_end_year"),
        ),
        aggregate="sum",
    )
    params = {**WINDOW, "window_start_year": 2023, "window_end_year": 2024}
    assert evaluate(con, spec, params).value == 31
