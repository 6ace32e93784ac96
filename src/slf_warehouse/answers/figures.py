"""The figure registry: every number an answer may state, declared once, and its evaluation.

A figure names a mart (``schema.table``), a column, an aggregate, filters and a unit. The SQL is
built only from identifiers that are (1) plain names by pattern and (2) present in the warehouse's
``information_schema``; every value, literal or parameter, is bound as a ``?`` parameter. The SQL
runs unchanged on DuckDB and PostgreSQL, through ``slf_warehouse.warehouse_reader`` (which binds
the parameters on either engine and names the tables of the version being read).
Operators and aggregates come from fixed whitelists. Each result also says how many mart rows lie
behind it, for the letter's "Datagrundlag".

A figure with ``group_by`` is a table: one row per group, ordered by the aggregate (largest
first), then by the group columns; or, with ``order="group"``, by the group columns (a time
series). A date group column may be truncated to its month, quarter or year (``periods``, from a
fixed whitelist): "spending per quarter" is still one column of one mart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from slf_warehouse.rendering import formatting as fmt

if TYPE_CHECKING:  # duckdb is imported where a connection is opened
    import duckdb

    from slf_warehouse.warehouse_reader import WarehouseReader

# --- whitelists ----------------------------------------------------------------------------------

AGGREGATES = {
    "sum": "coalesce(sum({col}), 0)",
    "count": "count({col})",
    "max": "max({col})",
    "min": "min({col})",
    "value": "{col}",  # exactly one row (or none → no value); more than one row is an error
}
OPERATORS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "in": "IN", "not in": "NOT IN"}
UNITS = {
    "kr": ("mio", "kr"),  # "mio": "26 mio. kr." (under 1 mio. in whole kroner); "kr": "1.234.567 kr."
    "count": ("words", "digits"),  # "words": 0–10 in words ("to"), larger in digits
    "percent": ("0", "1"),  # decimals
    "year": ("year",),
    "month": ("month",),
    "text": ("text",),
}
# Parameters an inquiry supplies to filters, with their Python type.
PARAMETERS: dict[str, type] = {
    "window_start": date,
    "window_end": date,
    "window_start_year": int,
    "window_end_year": int,
}
# Truncations a date group column may have (``FigureSpec.periods``); the SQL is fixed text.
PERIODS = {"month": "month", "quarter": "quarter", "year": "year"}
ORDERS = ("value", "group")

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


class FigureError(Exception):
    """A figure cannot be evaluated against this warehouse (missing table or column, ambiguity)."""


def _check_identifier(name: object, what: str, figure: str) -> str:  # name: as the YAML gave it
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"figure {figure!r}: {what} {name!r} is not a plain lower-case SQL identifier")
    return name


def _quote(name: str) -> str:
    return '"' + name + '"'  # only ever called on names that matched _IDENTIFIER


# --- declarations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filter:
    """``column operator value``: the value is a literal or the name of an inquiry parameter."""

    column: str
    op: str
    value: Any = None
    param: str | None = None

    def describe(self, params: Mapping[str, Any] | None = None) -> str:
        if self.param:
            shown = f":{self.param}"
            if params is not None and self.param in params:
                shown += f" ({_literal(params[self.param])})"
        else:
            shown = _literal(self.value)
        return f"{self.column} {self.op} {shown}"


def _literal(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, str):
        return "'" + value + "'"
    return str(value)


@dataclass(frozen=True)
class FigureSpec:
    name: str
    label: str  # short Danish label for the appendix
    definition: str  # what the number means, in Danish
    mart: str  # schema.table
    column: str
    aggregate: str
    unit: str
    format: str = ""
    filters: tuple[Filter, ...] = ()
    group_by: tuple[str, ...] = ()
    periods: tuple[tuple[str, str], ...] = ()  # (group column, "month" | "quarter" | "year")
    order: str = "value"  # table rows: "value" (largest first) or "group" (by the group columns)

    def __post_init__(self) -> None:
        # in this order: the first problem of a declaration is the one reported
        self._check_source()
        self._check_measure()
        self._check_grouping()
        for f in self.filters:
            self._check_filter(f)

    def _check_source(self) -> None:
        """The figure's name, and the mart and column it reads."""
        if not _IDENTIFIER.match(self.name):
            raise ValueError(f"figure name {self.name!r} is not a plain identifier")
        parts = self.mart.split(".")
        if len(parts) != 2:
            raise ValueError(f"figure {self.name!r}: mart {self.mart!r} must be schema.table")
        for part in parts:
            _check_identifier(part, "mart", self.name)
        _check_identifier(self.column, "column", self.name)

    def _check_measure(self) -> None:
        """Aggregate, unit and format (the unit's first format when none is given)."""
        if self.aggregate not in AGGREGATES:
            raise ValueError(
                f"figure {self.name!r}: aggregate {self.aggregate!r} not one of {sorted(AGGREGATES)}"
            )
        if self.unit not in UNITS:
            raise ValueError(f"figure {self.name!r}: unit {self.unit!r} not one of {sorted(UNITS)}")
        if not self.format:
            object.__setattr__(self, "format", UNITS[self.unit][0])
        if self.format not in UNITS[self.unit]:
            raise ValueError(f"figure {self.name!r}: format {self.format!r} not one of {UNITS[self.unit]}")

    def _check_grouping(self) -> None:
        """A table figure's group columns, their periods, and the row order."""
        if self.group_by and self.aggregate == "value":
            raise ValueError(f"figure {self.name!r}: a table figure needs an aggregate, not 'value'")
        for g in self.group_by:
            _check_identifier(g, "group_by column", self.name)
        for column, period in self.periods:
            if column not in self.group_by:
                raise ValueError(f"figure {self.name!r}: period column {column!r} is not a group_by column")
            if period not in PERIODS:
                raise ValueError(f"figure {self.name!r}: period {period!r} not one of {sorted(PERIODS)}")
        if self.order not in ORDERS:
            raise ValueError(f"figure {self.name!r}: order {self.order!r} not one of {ORDERS}")

    def _check_filter(self, f: Filter) -> None:
        _check_identifier(f.column, "filter column", self.name)
        if f.op not in OPERATORS:
            raise ValueError(f"figure {self.name!r}: operator {f.op!r} not one of {sorted(OPERATORS)}")
        if (f.param is None) == (f.value is None):
            raise ValueError(f"figure {self.name!r}: filter on {f.column} needs a value or a param, not both")
        if f.param is not None and f.param not in PARAMETERS:
            raise ValueError(
                f"figure {self.name!r}: unknown parameter {f.param!r} (known: {sorted(PARAMETERS)})"
            )
        if f.op in ("in", "not in") and not (isinstance(f.value, (list, tuple)) and f.value):
            raise ValueError(f"figure {self.name!r}: operator {f.op!r} needs a non-empty list literal")

    @property
    def is_table(self) -> bool:
        return bool(self.group_by)

    def period_of(self, column: str) -> str | None:
        """The truncation of a group column ("quarter" …), or None."""
        return dict(self.periods).get(column)

    @property
    def schema(self) -> str:
        return self.mart.split(".")[0]

    @property
    def table(self) -> str:
        return self.mart.split(".")[1]

    def describe(self, params: Mapping[str, Any] | None = None) -> str:
        """E.g. "sum(amount_dkk) fra marts.fct_allocations hvor period_start >= :window_start
        (2022-01-01)"."""
        text = f"{self.aggregate}({self.column}) fra {self.mart}"
        if self.filters:
            text += " hvor " + " og ".join(f.describe(params) for f in self.filters)
        if self.group_by:
            text += " pr. " + ", ".join(
                f"{self.period_of(g)}({g})" if self.period_of(g) else g for g in self.group_by
            )
        return text


W = (Filter("period_start", ">=", param="window_start"), Filter("period_end", "<=", param="window_end"))
W_POSTED = (
    Filter("posting_date", ">=", param="window_start"),
    Filter("posting_date", "<=", param="window_end"),
)
W_MONTH = (
    Filter("posting_month", ">=", param="window_start"),
    Filter("posting_month", "<=", param="window_end"),
)
W_HELD = (Filter("held_on", ">=", param="window_start"), Filter("held_on", "<=", param="window_end"))
EXPENSE = Filter("flow", "=", "expense")
LATEST_MONTH = Filter("is_latest_month", "=", True)
LATEST_YEAR = Filter("is_latest_year", "=", True)
LOCAL_UNIT_TYPES = Filter("unit_type", "in", ("skole", "dagtilbud", "fritidstilbud"))

FIGURES: dict[str, FigureSpec] = {
    s.name: s
    for s in [
        FigureSpec(
            "allocated_total",
            "Afsat i alt",
            "Bevillinger til programmet, hvis bevillingsperiode ligger helt inden for forespørgslens "
            "periode.",
            "marts.fct_allocations",
            "amount_dkk",
            "sum",
            "kr",
            "mio",
            W,
        ),
        FigureSpec(
            "allocated_by_source",
            "Afsat pr. finansieringskilde",
            "Bevillinger i perioden fordelt på finansieringskilde (kilder med bevillinger i perioden).",
            "marts.fct_allocations",
            "amount_dkk",
            "sum",
            "kr",
            "mio",
            W,
            group_by=("funding_source", "funding_source_name"),
        ),
        FigureSpec(
            "allocated_apmf",
            "Donation fra A.P. Møller Fonden",
            "Bevillinger i perioden med finansieringskilde APMF (A.P. Møller Fonden).",
            "marts.fct_allocations",
            "amount_dkk",
            "sum",
            "kr",
            "mio",
            (Filter("funding_source", "=", "APMF"), *W),
        ),
        FigureSpec(
            "spent_salaries",
            "Forbrug, løn",
            "Programmets udgiftsposteringer til løn (art 1.x) bogført i perioden.",
            "marts.fct_programme_postings",
            "amount_dkk",
            "sum",
            "kr",
            "mio",
            (Filter("purpose", "=", "salaries"), Filter("flow", "=", "expense"), *W_POSTED),
        ),
        FigureSpec(
            "spent_competence_activities",
            "Forbrug, kompetenceaktiviteter",
            "Programmets udgiftsposteringer på fælles kompetenceudviklingsaktiviteter (læringsdage, "
            "introduktionsdage, lederseminarer) bogført i perioden.",
            "marts.fct_programme_postings",
            "amount_dkk",
            "sum",
            "kr",
            "mio",
            (Filter("purpose", "=", "competence_activities"), Filter("flow", "=", "expense"), *W_POSTED),
        ),
        FigureSpec(
            "staff_learning_partners",
            "Læringspartnere",
            "Antal personer med rollen læringspartner i seneste lønmåned.",
            "marts.rpt_staff_by_role_month",
            "headcount",
            "sum",
            "count",
            "words",
            (LATEST_MONTH, Filter("role", "=", "laeringspartner")),
        ),
        FigureSpec(
            "staff_project_employees",
            "Projektmedarbejdere",
            "Antal personer med rollen projektmedarbejder i seneste lønmåned.",
            "marts.rpt_staff_by_role_month",
            "headcount",
            "sum",
            "count",
            "words",
            (LATEST_MONTH, Filter("role", "=", "projektmedarbejder")),
        ),
        FigureSpec(
            "staff_section_leaders",
            "Sektionsledere",
            "Antal personer med rollen sektionsleder i seneste lønmåned.",
            "marts.rpt_staff_by_role_month",
            "headcount",
            "sum",
            "count",
            "words",
            (LATEST_MONTH, Filter("role", "=", "sektionsleder")),
        ),
        FigureSpec(
            "staff_latest_month",
            "Seneste lønmåned",
            "Den seneste lønmåned i lønudtrækket; personaletallene gælder denne måned.",
            "marts.rpt_staff_by_role_month",
            "payroll_month",
            "max",
            "month",
            "month",
            (LATEST_MONTH,),
        ),
        FigureSpec(
            "programme_funds_local_units",
            "Programmidler på skoler og institutioner",
            "Programmets posteringer bogført på skolers, dagtilbuds og fritidstilbuds omkostningssteder "
            "i perioden.",
            "marts.rpt_unit_funding",
            "programme_amount_dkk",
            "sum",
            "kr",
            "mio",
            (LOCAL_UNIT_TYPES, *W_MONTH),
        ),
        FigureSpec(
            "programme_funds_by_local_unit",
            "Programmidler pr. skole/institution",
            "Skoler, dagtilbud og fritidstilbud med programposteringer i perioden, med beløb.",
            "marts.rpt_unit_funding",
            "programme_amount_dkk",
            "sum",
            "kr",
            "kr",
            (LOCAL_UNIT_TYPES, Filter("programme_amount_dkk", "!=", 0), *W_MONTH),
            group_by=("unit_id", "unit_name", "unit_type"),
        ),
        FigureSpec(
            "survey_latest_year",
            "Seneste måling af social kapital",
            "Året for den seneste måling af social kapital i data.",
            "marts.rpt_survey_fit",
            "survey_year",
            "value",
            "year",
            "year",
            (LATEST_YEAR,),
        ),
        FigureSpec(
            "survey_r_squared",
            "Forklaringskraft (R²)",
            "Andelen af variationen i enhedernes SLF-score, som deres social kapital-indeks forklarer "
            "(R² i en lineær regression over enheder, seneste måling).",
            "marts.rpt_survey_fit",
            "r_squared",
            "value",
            "percent",
            "0",
            (LATEST_YEAR,),
        ),
        FigureSpec(
            "survey_units_used",
            "Enheder i beregningen",
            "Antal enheder med nok besvarelser til at indgå i beregningen af forklaringskraften "
            "(seneste måling).",
            "marts.rpt_survey_fit",
            "units_used",
            "value",
            "count",
            "digits",
            (LATEST_YEAR,),
        ),
        # --- spending over time (rpt_spending_by_purpose) ---
        FigureSpec(
            "spent_total",
            "Forbrug i alt",
            "Programmets udgiftsposteringer (alle formål) i måneder inden for perioden.",
            "marts.rpt_spending_by_purpose",
            "amount_dkk",
            "sum",
            "kr",
            "mio",
            (EXPENSE, *W_MONTH),
        ),
        FigureSpec(
            "spent_by_quarter",
            "Forbrug pr. kvartal",
            "Programmets udgiftsposteringer (alle formål) pr. kvartal i perioden.",
            "marts.rpt_spending_by_purpose",
            "amount_dkk",
            "sum",
            "kr",
            "mio",
            (EXPENSE, *W_MONTH),
            group_by=("posting_month",),
            periods=(("posting_month", "quarter"),),
            order="group",
        ),
        FigureSpec(
            "spent_by_year_purpose",
            "Forbrug pr. år og formål",
            "Programmets udgiftsposteringer i perioden pr. budgetår og formål (løn, kompetenceaktiviteter, "
            "andet).",
            "marts.rpt_spending_by_purpose",
            "amount_dkk",
            "sum",
            "kr",
            "kr",
            (EXPENSE, *W_MONTH),
            group_by=("budget_year", "purpose"),
            order="group",
        ),
        # --- competence activities (rpt_activity_costs) ---
        FigureSpec(
            "activity_costs_total",
            "Udgift til kompetenceaktiviteter",
            "Programmets udgifter til de fælles kompetenceaktiviteter, der er afholdt i perioden "
            "(posteringer med aktivitets-id).",
            "marts.rpt_activity_costs",
            "cost_dkk",
            "sum",
            "kr",
            "mio",
            W_HELD,
        ),
        FigureSpec(
            "activity_count",
            "Kompetenceaktiviteter",
            "Antal fælles kompetenceaktiviteter afholdt i perioden.",
            "marts.rpt_activity_costs",
            "activity_id",
            "count",
            "count",
            "digits",
            W_HELD,
        ),
        FigureSpec(
            "activity_participants",
            "Deltagere i kompetenceaktiviteter",
            "Deltagere i de fælles kompetenceaktiviteter afholdt i perioden, lagt sammen over aktiviteterne "
            "(en person tæller med ved hver aktivitet, vedkommende deltager i).",
            "marts.rpt_activity_costs",
            "participants",
            "sum",
            "count",
            "digits",
            W_HELD,
        ),
        FigureSpec(
            "activity_costs_by_year",
            "Udgift til kompetenceaktiviteter pr. år",
            "Udgifterne til de fælles kompetenceaktiviteter i perioden pr. år, aktiviteten er afholdt.",
            "marts.rpt_activity_costs",
            "cost_dkk",
            "sum",
            "kr",
            "mio",
            W_HELD,
            group_by=("held_on",),
            periods=(("held_on", "year"),),
            order="group",
        ),
        FigureSpec(
            "activity_costs_by_district",
            "Udgift til kompetenceaktiviteter pr. distrikt",
            "Udgifterne til de fælles kompetenceaktiviteter i perioden pr. distrikt, aktiviteten er holdt "
            "for (uden distrikt: aktiviteter for hele byen).",
            "marts.rpt_activity_costs",
            "cost_dkk",
            "sum",
            "kr",
            "kr",
            W_HELD,
            group_by=("district",),
        ),
        FigureSpec(
            "activity_costs_by_type",
            "Udgift til kompetenceaktiviteter pr. type",
            "Udgifterne til de fælles kompetenceaktiviteter i perioden pr. aktivitetstype.",
            "marts.rpt_activity_costs",
            "cost_dkk",
            "sum",
            "kr",
            "kr",
            W_HELD,
            group_by=("activity_type",),
        ),
        FigureSpec(
            "activity_costs_by_district_type",
            "Udgift til kompetenceaktiviteter pr. distrikt og type",
            "Udgifterne til de fælles kompetenceaktiviteter i perioden pr. distrikt og aktivitetstype.",
            "marts.rpt_activity_costs",
            "cost_dkk",
            "sum",
            "kr",
            "kr",
            W_HELD,
            group_by=("district", "activity_type"),
        ),
        FigureSpec(
            "activity_participants_by_type",
            "Deltagere pr. aktivitetstype",
            "Deltagere i de fælles kompetenceaktiviteter i perioden pr. aktivitetstype.",
            "marts.rpt_activity_costs",
            "participants",
            "sum",
            "count",
            "digits",
            W_HELD,
            group_by=("activity_type",),
        ),
    ]
}


# --- results -------------------------------------------------------------------------------------
# Results are read-only all the way down (frozen dataclasses, tuples, ReadOnlyMapping): the same
# objects feed the answer texts, the tables, the appendix and the sidecar, so nothing a template
# does may change them.


class ReadOnlyMapping(Mapping[str, Any]):
    """A mapping that cannot be changed (a ``MappingProxyType`` cannot be pickled to the process that
    renders the answers)."""

    __slots__ = ("_data",)
    _data: dict[str, Any]

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a figure's mapping is read-only")

    def __reduce__(self) -> tuple[type[ReadOnlyMapping], tuple[dict[str, Any]]]:
        return (ReadOnlyMapping, (dict(self._data),))

    def __repr__(self) -> str:
        return f"ReadOnlyMapping({self._data!r})"


def format_value(value: Any, unit: str, style: str) -> str:
    if value is None:
        return "–"
    if unit == "kr":
        return fmt.format_mio_kr(value) if style == "mio" else fmt.format_kr(value)
    if unit == "count":
        return fmt.number_words(value) if style == "words" else fmt.format_number(value)
    if unit == "percent":
        return fmt.format_percent(value, decimals=int(style))
    if unit == "year":
        return fmt.format_year(value)
    if unit == "month":
        return fmt.format_month(value)
    return str(value)


def format_exact(value: Any, unit: str) -> str:
    """The unrounded value, for the appendix."""
    if value is None:
        return "ingen værdi"
    if unit == "kr":
        return fmt.format_kr_exact(value)
    if unit == "percent":
        return "R² = " + fmt.format_number(value, decimals=4)
    if unit == "count":
        return fmt.format_number(value)
    return format_value(value, unit, UNITS[unit][0])


@dataclass(frozen=True)
class FigureValue:
    """One number as a template sees it: ``{{ allocated_total }}`` prints "26 mio. kr.";
    ``.value`` is the raw number for comparisons, ``.text`` the formatted text, ``.rows`` the
    number of mart rows behind it."""

    name: str
    value: Any
    unit: str
    style: str
    rows: int

    @property
    def text(self) -> str:
        return format_value(self.value, self.unit, self.style)

    @property
    def exact(self) -> str:
        return format_exact(self.value, self.unit)

    def __str__(self) -> str:
        return self.text

    def __html__(self) -> str:
        return Markup('<span class="figure">{}</span>').format(self.text)


@dataclass(frozen=True)
class FigureRow:
    """One group of a table figure: the group columns by name, ``value`` (a FigureValue) and ``rows``."""

    keys: Mapping[str, Any]
    value: FigureValue

    def __post_init__(self) -> None:
        if not isinstance(self.keys, ReadOnlyMapping):
            object.__setattr__(self, "keys", ReadOnlyMapping(self.keys))

    @property
    def rows(self) -> int:
        return self.value.rows

    def __getattr__(self, name: str) -> Any:
        keys = self.__dict__.get("keys", {})
        if name in keys:
            return keys[name]
        raise AttributeError(name)

    def __getitem__(self, name: str) -> Any:
        return self.keys[name]


@dataclass(frozen=True)
class FigureTable:
    """A table figure: ``.rows`` (FigureRow list), ``.total`` (FigureValue), ``.row_count``."""

    name: str
    columns: tuple[str, ...]
    items: tuple[FigureRow, ...]
    total: FigureValue

    @property
    def rows(self) -> tuple[FigureRow, ...]:  # what templates loop over
        return self.items

    @property
    def value(self) -> Any:
        return self.total.value

    @property
    def text(self) -> str:
        return self.total.text

    @property
    def row_count(self) -> int:
        return self.total.rows

    def row(self, **keys: Any) -> FigureRow | None:
        """The first row whose group columns match, e.g.
        ``allocated_by_source.row(funding_source="APMF")``."""
        for r in self.items:
            if all(r.keys.get(k) == v for k, v in keys.items()):
                return r
        return None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[FigureRow]:
        return iter(self.items)

    def __str__(self) -> str:
        return fmt.join_words(
            [f"{' '.join(str(v) for v in r.keys.values())}: {r.value.text}" for r in self.items]
        )

    def __html__(self) -> str:
        return str(escape(str(self)))


@dataclass(frozen=True)
class FigureResult:
    """What was evaluated, for the appendix and for callers: spec, parameters, template value, SQL."""

    spec: FigureSpec
    params: Mapping[str, Any]
    result: FigureValue | FigureTable
    sql: str
    bound: tuple[Any, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.params, ReadOnlyMapping):
            object.__setattr__(self, "params", ReadOnlyMapping(self.params))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def value(self) -> Any:
        return self.result.value

    @property
    def text(self) -> str:
        return self.result.text

    @property
    def rows(self) -> int:
        return self.result.row_count if isinstance(self.result, FigureTable) else self.result.rows


# --- evaluation ----------------------------------------------------------------------------------

_TYPE_FAMILIES = {
    date: ("DATE", "TIMESTAMP"),
    bool: ("BOOLEAN",),
    str: ("VARCHAR",),
    int: (
        "INTEGER",
        "BIGINT",
        "SMALLINT",
        "TINYINT",
        "HUGEINT",
        "UBIGINT",
        "UINTEGER",
        "DECIMAL",
        "DOUBLE",
        "FLOAT",
    ),
    float: ("DECIMAL", "DOUBLE", "FLOAT", "INTEGER", "BIGINT"),
    Decimal: ("DECIMAL", "DOUBLE", "FLOAT", "INTEGER", "BIGINT"),
}


def _family(value: Any) -> tuple[str, ...] | None:
    for py_type in (bool, date, str, int, float, Decimal):  # bool before int: True is an int
        if isinstance(value, py_type):
            return _TYPE_FAMILIES[py_type]
    return None


class _Catalog:
    """Column names and types of the warehouse's tables, from information_schema (bound query), and
    the names to read them by, through the reader of one warehouse version."""

    def __init__(self, con: duckdb.DuckDBPyConnection | WarehouseReader) -> None:
        from slf_warehouse.warehouse_reader import reader_for_connection

        self.reader = reader_for_connection(con)

    def columns(self, schema: str, table: str) -> dict[str, str]:
        return self.reader.columns(schema, table)

    def relation(self, schema: str, table: str) -> str:
        return self.reader.relation(schema, table)

    def group_order(self, expression: str, dtype: str) -> str:
        """Text groups in code-point order on every engine (ties of the value, group order)."""
        return self.reader.text_order(expression) if dtype.startswith("VARCHAR") else expression


def build_query(
    spec: FigureSpec, params: dict[str, Any], catalog: _Catalog | None = None
) -> tuple[str, list[Any]]:
    """The SQL text (identifiers only) and the list of values to bind, in order."""
    if catalog is not None:
        _check_columns(spec, catalog)
    select = AGGREGATES[spec.aggregate].format(col=_quote(spec.column))
    where, bound = [], []
    for f in spec.filters:
        values = _filter_values(spec, f, params)
        if catalog is not None:
            _check_filter_types(spec, f, values, catalog)
        where.append(_filter_sql(f, values))
        bound.extend(values)
    table = (
        catalog.relation(spec.schema, spec.table)
        if catalog is not None
        else f"{_quote(spec.schema)}.{_quote(spec.table)}"
    )
    where_sql = (" WHERE " + " AND ".join(where)) if where else ""
    if spec.group_by:
        sql = _grouped_sql(spec, select, f"{table}{where_sql}", catalog)
    elif spec.aggregate == "value":
        sql = f"SELECT {select} AS value FROM {table}{where_sql} LIMIT 2"
    else:
        sql = f"SELECT {select} AS value, count(*) AS n_rows FROM {table}{where_sql}"
    return sql, bound


def _check_columns(spec: FigureSpec, catalog: _Catalog) -> None:
    """The figure's table exists and has every column the figure reads, groups or filters by."""
    columns = catalog.columns(spec.schema, spec.table)
    if not columns:
        raise FigureError(f"figure {spec.name!r}: table {spec.mart} does not exist in the warehouse")
    needed = [spec.column, *spec.group_by, *(f.column for f in spec.filters)]
    missing = [c for c in dict.fromkeys(needed) if c not in columns]
    if missing:
        raise FigureError(
            f"figure {spec.name!r}: column(s) {', '.join(missing)} not in {spec.mart} "
            f"(it has: {', '.join(columns)})"
        )


def _filter_values(spec: FigureSpec, f: Filter, params: dict[str, Any]) -> list[Any]:
    """The values a filter binds: its literal, or the inquiry's parameter (supplied, of its type)."""
    if f.param is not None:
        if f.param not in params:
            raise FigureError(f"figure {spec.name!r}: parameter {f.param!r} was not supplied")
        value = params[f.param]
        expected = PARAMETERS[f.param]
        if not isinstance(value, expected):
            raise FigureError(f"figure {spec.name!r}: parameter {f.param!r} must be a {expected.__name__}")
    else:
        value = f.value
    return list(value) if f.op in ("in", "not in") else [value]


def _check_filter_types(spec: FigureSpec, f: Filter, values: list[Any], catalog: _Catalog) -> None:
    dtype = catalog.columns(spec.schema, spec.table)[f.column]
    for v in values:
        family = _family(v)
        if family is None or not dtype.startswith(family):
            raise FigureError(
                f"figure {spec.name!r}: filter {f.describe()} compares column "
                f"{f.column} ({dtype}) with a {type(v).__name__}"
            )


def _filter_sql(f: Filter, values: list[Any]) -> str:
    op = OPERATORS[f.op]
    if f.op in ("in", "not in"):
        return f"{_quote(f.column)} {op} ({', '.join('?' for _ in values)})"
    return f"{_quote(f.column)} {op} ?"


def _grouped_sql(spec: FigureSpec, select: str, source: str, catalog: _Catalog | None) -> str:
    """A table figure's query: one row per group, ordered by value or by the groups (text in
    code-point order on every engine), empty groups last."""
    exprs = [_group_expression(spec, g) for g in spec.group_by]
    groups = ", ".join(exprs)
    if catalog is not None:
        types = catalog.columns(spec.schema, spec.table)
        order_exprs = [
            e if spec.period_of(g) else catalog.group_order(e, types[g])
            for e, g in zip(exprs, spec.group_by, strict=True)
        ]
    else:
        order_exprs = exprs
    keys = ", ".join(f"{e} NULLS LAST" for e in order_exprs)
    select_groups = ", ".join(
        e if e == _quote(g) else f"{e} AS {_quote(g)}" for e, g in zip(exprs, spec.group_by, strict=True)
    )
    order = f"value DESC, {keys}" if spec.order == "value" else keys
    return (
        f"SELECT {select_groups}, {select} AS value, count(*) AS n_rows FROM {source} "
        f"GROUP BY {groups} ORDER BY {order}"
    )


def _group_expression(spec: FigureSpec, column: str) -> str:
    period = spec.period_of(column)
    if period is None:
        return _quote(column)
    return f"CAST(date_trunc('{PERIODS[period]}', {_quote(column)}) AS DATE)"


def evaluate(
    con: duckdb.DuckDBPyConnection | WarehouseReader,
    spec: FigureSpec,
    params: dict[str, Any],
    catalog: _Catalog | None = None,
) -> FigureResult:
    """Evaluate one figure on an open DuckDB connection or warehouse reader."""
    catalog = catalog or _Catalog(con)
    sql, bound = build_query(spec, params, catalog)
    rows = catalog.reader.execute(sql, bound).rows
    if spec.group_by:
        n_keys = len(spec.group_by)
        items = tuple(
            FigureRow(
                dict(zip(spec.group_by, r[:n_keys], strict=True)),
                FigureValue(spec.name, r[n_keys], spec.unit, spec.format, int(r[n_keys + 1])),
            )
            for r in rows
        )
        total_value = (
            sum((i.value.value for i in items), Decimal(0)) if spec.aggregate in ("sum", "count") else None
        )
        total = FigureValue(spec.name, total_value, spec.unit, spec.format, sum(i.rows for i in items))
        result: FigureValue | FigureTable = FigureTable(spec.name, spec.group_by, items, total)
    elif spec.aggregate == "value":
        if len(rows) > 1:
            raise FigureError(
                f"figure {spec.name!r}: expected one row from {spec.mart} "
                f"({' and '.join(f.describe(params) for f in spec.filters)}), found several"
            )
        result = FigureValue(spec.name, rows[0][0] if rows else None, spec.unit, spec.format, len(rows))
    else:
        value, n_rows = rows[0]
        result = FigureValue(spec.name, value, spec.unit, spec.format, int(n_rows))
    return FigureResult(spec, ReadOnlyMapping(params), result, sql, tuple(bound))


def evaluate_figures(
    con: duckdb.DuckDBPyConnection | WarehouseReader,
    names: list[str],
    params: dict[str, Any],
    registry: dict[str, FigureSpec] | None = None,
) -> dict[str, FigureResult]:
    registry = FIGURES if registry is None else registry
    catalog = _Catalog(con)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise FigureError(f"unknown figure(s): {', '.join(unknown)} (known: {', '.join(registry)})")
    return {name: evaluate(con, registry[name], params, catalog) for name in names}
