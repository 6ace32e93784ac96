"""Tables and charts under an answer, declared in the inquiry beside the question.

Both show one table figure (a figure with ``group_by``) from the registry; nothing else reaches
them. In the inquiry file::

    tables:
      - figure: activity_costs_by_district_type
        caption: Udgifter pr. distrikt og aktivitetstype, kr.
        rows: [district]              # group columns down the side (default: all but `columns`)
        columns: activity_type        # optional: one column per value of this group column
        headings: {district: Distrikt}   # column headings; "value" names the value column
        labels:                       # how codes are written; the order given is the order shown
          activity_type: {introduktionsdag: Introduktionsdage, lederseminar: Lederseminarer}
          district: {null: Hele byen}
        total: I alt                  # a total row (and column); null for none
    charts:
      - figure: spent_by_quarter
        kind: columns                 # or bars (horizontal)
        title: Forbrug pr. kvartal
        category: posting_month       # the group column naming each bar (default: the first)

Rows are in the figure's order unless ``sort`` says ``value`` (largest first) or ``key`` (by the
group values, in the ``labels`` order where one is given). Dates are written by their period:
"1. kvt. 2022", "jan. 2022", "2022".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from slf_warehouse.answers.figures import FigureResult, FigureSpec, FigureTable, format_value
from slf_warehouse.rendering import charts
from slf_warehouse.rendering import formatting as fmt

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

NULL_LABEL = "(uoplyst)"
COLUMN_HEADINGS = {
    "district": "Distrikt",
    "activity_type": "Aktivitetstype",
    "funding_source": "Kilde",
    "funding_source_name": "Finansieringskilde",
    "unit_id": "Enheds-id",
    "unit_name": "Enhed",
    "unit_type": "Enhedstype",
    "budget_year": "År",
    "purpose": "Formål",
    "posting_month": "Periode",
    "held_on": "Periode",
    "role": "Rolle",
}
VALUE_HEADINGS = {"kr": "Beløb, kr.", "count": "Antal", "percent": "Procent"}


class ExhibitError(ValueError):
    """A table or chart does not fit its figure, or its rows do not fit the layout."""


def _normalise_labels(labels: Mapping[str, Any]) -> dict[str, dict[str | None, str]]:  # as the YAML gave it
    out: dict[str, dict[str | None, str]] = {}
    for column, mapping in labels.items():
        if not isinstance(mapping, dict):
            raise ValueError(f"labels.{column}: expected a mapping of values to labels")
        out[column] = {}
        for key, label in mapping.items():
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"labels.{column}.{key}: a label must be non-empty text")
            out[column][None if key is None else _key_string(key)] = label.strip()
    return out


def _key_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value)


class _Exhibit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    figure: NonEmpty
    labels: dict[str, dict[Any, str]] = {}
    sort: Literal["value", "key"] | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError("expected a mapping: column → {value: label}")
        return _normalise_labels(value)

    def group_columns_used(self) -> list[str]:
        return list(self.labels)


class TableSpec(_Exhibit):
    caption: NonEmpty
    rows: list[str] = []
    columns: str | None = None
    headings: dict[str, NonEmpty] = {}
    total: NonEmpty | None = "I alt"

    def row_columns(self, spec: FigureSpec) -> list[str]:
        return self.rows or [g for g in spec.group_by if g != self.columns]

    def group_columns_used(self) -> list[str]:
        return [
            *self.rows,
            *([self.columns] if self.columns else []),
            *self.labels,
            *(h for h in self.headings if h != "value"),
        ]


class ChartSpec(_Exhibit):
    kind: Literal["bars", "columns"]
    title: NonEmpty
    category: str | None = None

    def category_column(self, spec: FigureSpec) -> str:
        return self.category or spec.group_by[0]

    def group_columns_used(self) -> list[str]:
        return [*([self.category] if self.category else []), *self.labels]


def check_exhibit(exhibit: TableSpec | ChartSpec, spec: FigureSpec) -> None:
    """Raise ExhibitError if the exhibit does not fit its figure (checked when the inquiry loads)."""
    if not spec.is_table:
        raise ExhibitError(
            f"figure {spec.name!r} is a single number; a table or chart needs a figure with group_by"
        )
    unknown = [c for c in dict.fromkeys(exhibit.group_columns_used()) if c not in spec.group_by]
    if unknown:
        raise ExhibitError(
            f"{', '.join(repr(c) for c in unknown)} not a group column of figure {spec.name!r} "
            f"(it has: {', '.join(spec.group_by)})"
        )
    if isinstance(exhibit, TableSpec) and exhibit.columns and exhibit.columns in exhibit.rows:
        raise ExhibitError(f"{exhibit.columns!r} is both in rows and columns")
    if isinstance(exhibit, TableSpec) and exhibit.columns and not exhibit.row_columns(spec):
        raise ExhibitError("a table with columns needs at least one group column in rows")


# --- writing group values ------------------------------------------------------------------------


def key_label(value: Any, column: str, spec: FigureSpec, labels: dict[str, dict[str | None, str]]) -> str:
    """How the letter writes one group value: the inquiry's label, else the date by its period,
    else the value."""
    mapping = labels.get(column, {})
    key = None if value is None else _key_string(value)
    if key in mapping:
        return mapping[key]
    if value is None:
        return NULL_LABEL
    if isinstance(value, date):
        period = spec.period_of(column)
        if period == "year":
            return str(value.year)
        if period == "quarter":
            return f"{(value.month - 1) // 3 + 1}. kvt. {value.year}"
        if period == "month":
            return fmt.format_month(value)
        return fmt.format_date(value)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return fmt.format_year(value) if column.endswith("year") else fmt.format_number(value)
    return str(value)


def _sort_key(value: Any, column: str, labels: dict[str, dict[str | None, str]]) -> tuple[int, int, Any]:
    mapping = list(labels.get(column, {}))
    key = None if value is None else _key_string(value)
    if key in mapping:
        return (0, mapping.index(key), "")
    if value is None:
        return (2, 0, "")
    return (1, 0, value) if not isinstance(value, str) else (1, 0, value.casefold())


def _ordered(values: Iterable[Any], column: str, labels: dict[str, dict[str | None, str]]) -> list[Any]:
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct, key=lambda v: _sort_key(v, column, labels))
    except TypeError:  # mixed types: by their text
        return sorted(distinct, key=lambda v: (v is None, _key_string(v)))


def _sort_mode(exhibit: TableSpec | ChartSpec, spec: FigureSpec) -> str | None:
    return exhibit.sort or ("key" if spec.order == "group" else None)


# --- tables --------------------------------------------------------------------------------------


def _cell(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if unit in ("kr", "count"):
        return fmt.format_number(value)
    return format_value(value, unit, "1" if unit == "percent" else "")


def _additive(spec: FigureSpec) -> bool:
    return spec.aggregate in ("sum", "count")


def _th(text: str, scope: str, cls: str = "", colspan: int = 1) -> str:
    attrs = (
        f' scope="{scope}"'
        + (f' class="{cls}"' if cls else "")
        + (f' colspan="{colspan}"' if colspan > 1 else "")
    )
    return f"<th{attrs}>{escape(text)}</th>"


def _table_cells(
    exhibit: TableSpec, table: FigureTable, spec: FigureSpec, row_cols: list[str]
) -> tuple[dict[tuple[Any, ...], dict[Any, Decimal]], dict[tuple[Any, ...], Decimal]]:
    """The value of each (row, column) cell, and each row's total; two figure rows landing in one
    cell are an error (the table would hide one)."""
    cells: dict[tuple[Any, ...], dict[Any, Decimal]] = {}
    row_values: dict[tuple[Any, ...], Decimal] = {}
    for r in table.rows:
        row_key = tuple(r.keys[c] for c in row_cols)
        col_key = r.keys[exhibit.columns] if exhibit.columns else None
        if col_key in cells.setdefault(row_key, {}):
            shown = ", ".join([*row_cols, *([exhibit.columns] if exhibit.columns else [])])
            raise ExhibitError(
                f"table of {spec.name!r}: two rows share the shown columns ({shown}) "
                f"= {row_key + ((col_key,) if exhibit.columns else ())}; show more columns"
            )
        cells[row_key][col_key] = r.value.value
        row_values[row_key] = row_values.get(row_key, Decimal(0)) + Decimal(r.value.value or 0)
    return cells, row_values


def _row_order(
    exhibit: TableSpec,
    spec: FigureSpec,
    row_cols: list[str],
    row_values: dict[tuple[Any, ...], Decimal],
) -> list[tuple[Any, ...]]:
    row_keys = list(row_values)
    mode = _sort_mode(exhibit, spec)
    if mode == "value":
        row_keys.sort(key=lambda k: -row_values[k])
    elif mode == "key":
        row_keys.sort(
            key=lambda k: tuple(_sort_key(v, c, exhibit.labels) for v, c in zip(k, row_cols, strict=True))
        )
    return row_keys


def _table_head(
    exhibit: TableSpec,
    spec: FigureSpec,
    row_cols: list[str],
    col_keys: list[Any],
    total_label: str | None,
) -> list[str]:
    headings = {
        **{c: COLUMN_HEADINGS.get(c, c) for c in spec.group_by},
        "value": VALUE_HEADINGS.get(spec.unit, "Værdi"),
        **exhibit.headings,
    }
    head = [_th(headings[c], "col") for c in row_cols]
    if not exhibit.columns:
        return [*head, _th(headings["value"], "col", "num")]
    head += [_th(key_label(k, exhibit.columns, spec, exhibit.labels), "col", "num") for k in col_keys]
    if total_label:
        head.append(_th(total_label, "col", "num total"))
    return head


def _table_row(
    key: tuple[Any, ...],
    row: dict[Any, Decimal],
    row_total: Decimal,
    *,
    exhibit: TableSpec,
    spec: FigureSpec,
    row_cols: list[str],
    col_keys: list[Any],
    total_label: str | None,
) -> str:
    labels, unit = exhibit.labels, spec.unit
    parts = [_th(key_label(key[0], row_cols[0], spec, labels), "row")]
    parts += [
        f"<td>{escape(key_label(v, c, spec, labels))}</td>"
        for v, c in zip(key[1:], row_cols[1:], strict=True)
    ]
    parts += [f'<td class="num">{escape(_cell(row.get(k), unit))}</td>' for k in col_keys]
    if exhibit.columns and total_label:
        parts.append(f'<td class="num total">{escape(_cell(row_total, unit))}</td>')
    return "<tr>" + "".join(parts) + "</tr>"


def _table_foot(
    cells: dict[tuple[Any, ...], dict[Any, Decimal]],
    row_keys: list[tuple[Any, ...]],
    col_keys: list[Any],
    *,
    columns: bool,
    unit: str,
    total_label: str,
    row_span: int,
) -> str:
    """The total row: each column's sum (and, with columns, the sum of those)."""
    totals = [sum((Decimal(cells[k].get(c) or 0) for k in row_keys), Decimal(0)) for c in col_keys]
    parts = [_th(total_label, "row", colspan=row_span)]
    parts += [f'<td class="num">{escape(_cell(t, unit))}</td>' for t in totals]
    if columns:
        parts.append(f'<td class="num total">{escape(_cell(sum(totals, Decimal(0)), unit))}</td>')
    return "<tfoot><tr>" + "".join(parts) + "</tr></tfoot>"


def render_table(exhibit: TableSpec, result: FigureResult, number: int) -> Markup:
    spec, table = result.spec, result.result
    assert isinstance(table, FigureTable)
    row_cols = exhibit.row_columns(spec)
    total_label = exhibit.total if _additive(spec) else None
    cells, row_values = _table_cells(exhibit, table, spec, row_cols)
    row_keys = _row_order(exhibit, spec, row_cols, row_values)
    col_keys = (
        _ordered((r.keys[exhibit.columns] for r in table.rows), exhibit.columns, exhibit.labels)
        if exhibit.columns
        else [None]
    )

    head = _table_head(exhibit, spec, row_cols, col_keys, total_label)
    body = [
        _table_row(
            key,
            cells[key],
            row_values[key],
            exhibit=exhibit,
            spec=spec,
            row_cols=row_cols,
            col_keys=col_keys,
            total_label=total_label,
        )
        for key in row_keys
    ]
    if not body:
        body.append(f'<tr><td colspan="{len(head)}">(ingen rækker i perioden)</td></tr>')
    foot = ""
    if total_label and row_keys:
        foot = _table_foot(
            cells,
            row_keys,
            col_keys,
            columns=bool(exhibit.columns),
            unit=spec.unit,
            total_label=total_label,
            row_span=len(row_cols),
        )
    layout = "pivot" if exhibit.columns else "simple"
    html = (
        f'<table class="data {layout}">\n<caption><span class="exhibit-number">Tabel {number}.</span> '
        f"{escape(exhibit.caption)}</caption>\n"
        f"<thead><tr>{''.join(head)}</tr></thead>\n<tbody>\n"
        + "\n".join(body)
        + f"\n</tbody>{foot}\n</table>"
    )
    return Markup(f'<div class="exhibit table-exhibit">\n{html}\n</div>')


# --- charts --------------------------------------------------------------------------------------


def _chart_label(
    value: Any, column: str, spec: FigureSpec, labels: dict[str, dict[str | None, str]], previous: Any
) -> tuple[str, ...]:
    """One or two lines under (or beside) a bar. Quarters and months name the year once a year."""
    key = None if value is None else _key_string(value)
    if isinstance(value, date) and key not in labels.get(column, {}):
        period = spec.period_of(column)
        new_year = not isinstance(previous, date) or previous.year != value.year
        if period == "quarter":
            return (f"{(value.month - 1) // 3 + 1}. kvt.", str(value.year) if new_year else "")
        if period == "month":
            return (fmt.format_month_short(value), str(value.year) if new_year else "")
    return tuple(_wrap(key_label(value, column, spec, labels)))


def _wrap(text: str, width: float = 150.0) -> list[str]:
    """At most two lines, broken at spaces, each at most ``width`` pt where possible."""
    if charts.text_width(text) <= width or " " not in text:
        return [text]
    words = text.split(" ")
    for cut in range(len(words) - 1, 0, -1):
        first = " ".join(words[:cut])
        if charts.text_width(first) <= width:
            return [first, " ".join(words[cut:])]
    return [words[0], " ".join(words[1:])]


def render_chart(exhibit: ChartSpec, result: FigureResult, number: int) -> Markup:
    spec, table = result.spec, result.result
    assert isinstance(table, FigureTable)
    column = exhibit.category_column(spec)
    labels = exhibit.labels
    rows = list(table.rows)
    seen: set[Any] = set()
    for r in rows:
        if r.keys[column] in seen:
            raise ExhibitError(
                f"chart of {spec.name!r}: two rows have the same {column} "
                f"({r.keys[column]!r}); chart a figure grouped by {column} alone"
            )
        seen.add(r.keys[column])
    mode = _sort_mode(exhibit, spec)
    if mode == "value":
        rows.sort(key=lambda r: -Decimal(r.value.value or 0))
    elif mode == "key":
        rows.sort(key=lambda r: _sort_key(r.keys[column], column, labels))
    style = "mio" if spec.unit == "kr" else spec.format
    points, previous = [], None
    for r in rows:
        value = r.keys[column]
        points.append(
            charts.Point(
                _chart_label(value, column, spec, labels, previous),
                Decimal(r.value.value or 0),
                format_value(r.value.value, spec.unit, style),
                key_label(value, column, spec, labels),
            )
        )
        previous = value
    svg = charts.CHARTS[exhibit.kind](exhibit.title, points, spec.unit)
    return Markup(
        '<figure class="exhibit chart">\n{}\n<figcaption><span class="exhibit-number">Figur {}.</span> '
        "{}</figcaption>\n</figure>"
    ).format(svg, number, exhibit.title)


def render_exhibits(
    tables: list[TableSpec],
    chart_specs: list[ChartSpec],
    figures: dict[str, FigureResult],
    counters: dict[str, int],
) -> list[Markup]:
    """A question's tables, then its charts, numbered on from ``counters`` (updated)."""
    out = []
    for t in tables:
        counters["table"] = counters.get("table", 0) + 1
        out.append(render_table(t, figures[t.figure], counters["table"]))
    for c in chart_specs:
        counters["chart"] = counters.get("chart", 0) + 1
        out.append(render_chart(c, figures[c.figure], counters["chart"]))
    return out
