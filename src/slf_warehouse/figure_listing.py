"""`slf figures`: every figure an answer may use, what it means, and what it says today.

The declarations come from the registry (``answers.figures.FIGURES``); the values from the
published warehouse on either engine (``answers.published.published_warehouse`` and
``warehouse_reader.open_reader``, as the letters read it). Figures filter on the inquiry's window:
with ``--inquiry`` that inquiry's window (and only the figures it uses), otherwise ``--from``/``--to``
(by default everything up to today). A table figure is shown by its total and number of rows, not
its rows: the listing is for choosing figures, the letter shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class Listed:
    name: str
    label: str
    definition: str
    unit: str
    table: bool
    value: str | None  # formatted, as a letter prints it; None without a published warehouse
    rows: int | None  # mart rows behind the value (a table: its number of rows)


def window_parameters(start: date, end: date) -> dict[str, Any]:
    """The parameters figures' filters bind, as ``inquiry.Inquiry.parameters`` gives them."""
    return {
        "window_start": start,
        "window_end": end,
        "window_start_year": start.year,
        "window_end_year": end.year,
    }


def list_figures(
    output_dir: Path,
    names: list[str] | None = None,
    params: dict[str, Any] | None = None,
    with_values: bool = True,
) -> tuple[list[Listed], dict[str, Any] | None]:
    """The figures (``names`` or all, registry order) and the published version they were read from
    (None when there is none: ``NoPublishedWarehouse`` is the caller's to report, or values are left
    out when ``with_values`` is False)."""
    from slf_warehouse.answers.figures import FIGURES, FigureTable, evaluate_figures

    names = list(FIGURES) if names is None else names
    params = params or window_parameters(EARLIEST, date.today())
    results: dict[str, Any] = {}
    version = None
    if with_values:
        from slf_warehouse.answers.published import published_warehouse
        from slf_warehouse.settings import Settings
        from slf_warehouse.warehouse_reader import open_reader

        published, source = published_warehouse(Settings.from_env(output_dir=output_dir))
        with open_reader(source) as reader:
            results = evaluate_figures(reader, names, params)
        version = {
            "version": published.version,
            "run_id": published.run_id,
            "published_at": published.published_at,
        }
    listed = []
    for name in names:
        spec, result = FIGURES[name], results.get(name)
        rows = None
        if result is not None:
            rows = len(result.result.items) if isinstance(result.result, FigureTable) else result.rows
        listed.append(
            Listed(
                name,
                spec.label,
                spec.definition,
                spec.unit,
                spec.is_table,
                result.text if result is not None else None,
                rows,
            )
        )
    return listed, version


def format_listing(listed: list[Listed]) -> list[str]:
    lines = []
    for f in listed:
        lines.append(f"{f.name}  ({f.label}; {'table, ' if f.table else ''}unit {f.unit})")
        lines.append(f"    {f.definition}")
        if f.value is not None:
            what = f"{f.rows} rows, in all {f.value}" if f.table else f.value
            lines.append(f"    today: {what}")
    return lines
