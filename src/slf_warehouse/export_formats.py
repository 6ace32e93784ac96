"""Writing files the way the municipality's systems export them (used by the sample data and tests)."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

from slf_warehouse.contract import SourceSpec


def dk_number(value: Decimal | float | int, decimals: int = 2, thousands: bool = True) -> str:
    """`1.234.567,89`: thousands `.`, decimals `,`, minus in front."""
    text = f"{Decimal(str(value)):,.{decimals}f}" if thousands else f"{Decimal(str(value)):.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def dk_date(value: date) -> str:
    return value.strftime("%d-%m-%Y")


def write_csv(path: Path, spec: SourceSpec, rows: list[list[str]], *, line_ending: str | None = None) -> None:
    """Write a CSV with the spec's encoding and delimiter; quoting only where needed, as exports do."""
    buffer = io.StringIO()
    # Windows systems (finance, budget, payroll) end lines with CRLF; the others with LF.
    ending = line_ending or ("\r\n" if spec.delimiter == ";" else "\n")
    writer = csv.writer(buffer, delimiter=spec.delimiter, quotechar='"', lineterminator=ending,
                        quoting=csv.QUOTE_MINIMAL)
    writer.writerow(spec.column_names)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(spec.encoding))


def write_xlsx(path: Path, spec: SourceSpec, rows: list[list[object]]) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = spec.sheet or "Sheet1"
    sheet.append(spec.column_names)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
