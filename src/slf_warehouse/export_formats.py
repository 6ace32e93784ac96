"""Writing files the way the municipality's systems export them (used by the sample data and tests)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Sequence
from datetime import date, datetime
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
    writer = csv.writer(
        buffer, delimiter=spec.delimiter, quotechar='"', lineterminator=ending, quoting=csv.QUOTE_MINIMAL
    )
    writer.writerow(spec.column_names)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(spec.encoding))


def write_xlsx(path: Path, spec: SourceSpec, rows: Sequence[Sequence[object]]) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    # Fixed document dates: the same data gives the same bytes (and the same sha256 in the manifest).
    workbook.properties.created = workbook.properties.modified = datetime(2024, 1, 1)
    workbook.properties.creator = "Spørgeskemaleverandør"
    sheet = workbook.active
    sheet.title = spec.sheet or "Sheet1"
    sheet.append(spec.column_names)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    _fix_zip_dates(path)


def _fix_zip_dates(path: Path) -> None:
    """openpyxl stamps the save time into docProps and every zip entry; pin both."""
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2024-01-01T00:00:00Z", data)
            fixed = zipfile.ZipInfo(info.filename, date_time=(2024, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(fixed, data)
