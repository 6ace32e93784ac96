"""Reading one delivered file into an in-memory staging table of text columns.

DuckDB's CSV reader does the parsing (Python only streams bytes once: checking the encoding and,
for Windows-1252, transcoding to UTF-8, which DuckDB cannot read natively here; the loader has
hashed the file already, to skip a re-delivery without reading it; a file with blank lines is read
once more to find them).
The staging table lives in an in-memory database, so columns that must never be stored (the
payroll's names) never touch the warehouse file.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from slf_warehouse.contract import SourceSpec
from slf_warehouse.ingest.errors import FileRejected, Issue, header_name

CHUNK = 8 * 1024 * 1024
_UTF8_IN_CP1252 = re.compile(rb"[\xc3\xc2][\x80-\xbf]")  # 'Ã¸' and friends: UTF-8 read as cp1252
_BLANK_LINE = re.compile(rb"(?m)^\r?\n")
_STRAY_CR = re.compile(rb"\r(?!\n)")


@dataclass
class StagedFile:
    path: Path
    spec: SourceSpec
    table: str
    rows: int
    header: list[str]
    period: str | None
    warnings: list[Issue] = field(default_factory=list)


def _line_of(data_before: bytes, lines_before: int) -> int:
    return lines_before + data_before.count(b"\n") + 1


@dataclass(frozen=True)
class _Scan:
    transcoded: bool
    lines: int  # the header's included


def _scan_text(path: Path, spec: SourceSpec, utf8_copy: Path) -> _Scan:
    """One pass over the bytes: encoding check, transcoding, line count."""
    newlines, last = 0, b""
    name = path.name
    transcode = spec.encoding == "cp1252"
    decoder = codecs.getincrementaldecoder("cp1252" if transcode else "utf-8")("strict")
    with path.open("rb") as src, (utf8_copy.open("w", encoding="utf-8", newline="") if transcode else
                                  open(os.devnull, "w")) as out:
        while chunk := src.read(CHUNK):
            # The byte test first: a regex over every byte of a chunk costs more than the transcoding,
            # and a Windows-1252 file rarely holds an 'Ã' or 'Â' at all.
            if transcode and (b"\xc3" in chunk or b"\xc2" in chunk) and (m := _UTF8_IN_CP1252.search(chunk)):
                raise FileRejected([Issue(name, _line_of(chunk[:m.start()], newlines), None,
                                          chunk[m.start():m.start() + 2].decode("utf-8", "replace"),
                                          "the file is encoded as UTF-8, but this source is delivered in "
                                          "Windows-1252 (cp1252): re-export it as Windows-1252")])
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as e:
                expected = "Windows-1252 (cp1252)" if transcode else "UTF-8"
                hint = "" if transcode else ": it looks like Windows-1252; re-export it as UTF-8"
                raise FileRejected([Issue(name, _line_of(chunk[:e.start], newlines), None,
                                          f"byte 0x{chunk[e.start]:02X}",
                                          f"not valid {expected}{hint}")]) from None
            if transcode:
                out.write(text)
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return _Scan(transcode, newlines + (1 if last not in (b"", b"\n") else 0))


def _whole_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The file in chunks cut at line ends, each with the number of lines before it: a search in a
    chunk never splits a line (nor a CRLF). The last chunk may end without a newline."""
    lines, carry = 0, b""
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            buf = carry + chunk
            cut = buf.rfind(b"\n") + 1
            region, carry = buf[:cut], buf[cut:]
            if region:
                yield lines, region
                lines += region.count(b"\n")
    if carry:
        yield lines, carry


def _line_endings(path: Path) -> tuple[int, int]:
    """(CRLF line ends, all line ends): asked only when DuckDB could not read a file."""
    crlf = newlines = 0
    for _, region in _whole_lines(path):
        crlf += region.count(b"\r\n")
        newlines += region.count(b"\n")
    return crlf, newlines


def _normalise_line_endings(source: Path, target: Path) -> None:
    """CRLF to LF, for a file whose lines end both ways: DuckDB's reader takes one line ending per
    file and refuses a mix without saying where. Line numbers stay as they were."""
    with target.open("wb") as out:
        for _, region in _whole_lines(source):
            out.write(region.replace(b"\r\n", b"\n"))


def _stray_carriage_return(path: Path) -> int | None:
    """The line of the first CR that does not end a line (DuckDB refuses it without a line number)."""
    for lines, region in _whole_lines(path):
        if (m := _STRAY_CR.search(region)) is not None:
            return lines + region.count(b"\n", 0, m.start()) + 1
    return None


def _blank_lines(path: Path) -> list[int]:
    """Line numbers of the blank lines after the header (DuckDB skips them without saying where)."""
    return [line for lines, region in _whole_lines(path) for m in _BLANK_LINE.finditer(region)
            if (line := lines + region.count(b"\n", 0, m.start()) + 1) > 1]


def _read_header(path: Path, spec: SourceSpec) -> list[str]:
    with path.open("rb") as f:
        first = f.readline()
    text = first.decode("cp1252" if spec.encoding == "cp1252" else "utf-8", "replace")
    text = text.lstrip("\ufeff").rstrip("\r\n")
    return [h.strip() for h in next(csv.reader([text], delimiter=spec.delimiter, quotechar='"'), [])]


def _check_header(spec: SourceSpec, name: str, header: list[str]) -> list[Issue]:
    issues = []
    if len(header) <= 1 and spec.delimiter not in ("".join(header)):
        other = ";" if spec.delimiter == "," else ","
        if other in "".join(header):
            issues.append(Issue(name, 1, None, other, f"the delimiter is {other!r}, expected {spec.delimiter!r}"))
            return issues
    for col in spec.columns:
        if col.name not in header:
            issues.append(Issue(name, 1, col.name, None, "required column is missing from the header"))
    seen = set()
    for position, h in enumerate(header, start=1):
        shown = header_name(h, position, spec.personal_data)
        if h in seen:
            issues.append(Issue(name, 1, shown, None, "column appears twice in the header"))
        seen.add(h)
        if h not in spec.column_names:
            issues.append(Issue(name, 1, shown, None, "unknown column, ignored", severity="warning"))
    return issues


def stage_csv(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, table: str, tmp_dir: Path,
              period: str | None) -> StagedFile:
    utf8_copy = tmp_dir / f"{path.name}.utf8"
    scan = _scan_text(path, spec, utf8_copy)
    header = _read_header(path, spec)
    header_issues = _check_header(spec, path.name, header)
    if any(i.severity == "error" for i in header_issues):
        raise FileRejected(header_issues)
    readable = utf8_copy if scan.transcoded else path
    lf_copy = tmp_dir / f"{path.name}.lf"
    warnings = [i for i in header_issues if i.severity == "warning"]
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    # Trimmed once, as the file is read: validation and the typed insert then read plain columns
    # (a trim per value in each of them cost more than DuckDB's parse of the file).
    wanted = ", ".join(f'nullif(trim(c{header.index(c)}), \'\') AS "{c}"' for c in spec.column_names)

    def parse(source: Path) -> None:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table}_read AS SELECT {wanted} "
            f"FROM read_csv(?, delim=?, quote='\"', "
            f"escape='\"', header=false, skip=1, auto_detect=false, columns={columns!r}, "
            f"encoding='utf-8', strict_mode=true)",
            [str(source), spec.delimiter])

    try:
        try:
            parse(readable)
        except duckdb.Error as e:
            # DuckDB's reader takes one kind of line end per file and refuses a mix without a line
            # number. The contract allows both, so a mixed file is read again with CRLF made LF;
            # looking for the mix only after a failure keeps the common case to one pass.
            crlf, newlines = (0, 0) if re.search(r"Line: \d+", str(e)) else _line_endings(readable)
            if not 0 < crlf < newlines:
                raise
            _normalise_line_endings(readable, lf_copy)
            parse(lf_copy)
            warnings.append(Issue(path.name, None, None, None, f"lines end both with CRLF ({crlf}) and LF "
                                  f"({newlines - crlf}); read as one file", severity="warning"))
    except duckdb.Error as e:
        m = re.search(r"Line: (\d+)", str(e))
        detail = str(e).split("\n")
        # DuckDB's message goes on to quote the line ("Original Line: …"): only its count of fields is
        # passed on, and for a source with personal data nothing else of it.
        found = next((d for d in detail if d.startswith("Expected Number")),
                     "" if spec.personal_data else detail[0])
        if not m and (line := _stray_carriage_return(path)) is not None:
            raise FileRejected([Issue(path.name, line, None, None,
                                      "a carriage return (CR) in the middle of the line: the row cannot be read "
                                      f"as {len(header)} fields separated by {spec.delimiter!r}; remove it or "
                                      f"re-export the file")]) from None
        raise FileRejected([Issue(path.name, int(m.group(1)) if m else None, None, None,
                                  f"the row cannot be read as {len(header)} fields separated by "
                                  f"{spec.delimiter!r}" + (f": {found}" if found else ""))]) from None
    finally:
        utf8_copy.unlink(missing_ok=True)
        lf_copy.unlink(missing_ok=True)
    # DuckDB skips blank lines; re-number so every row keeps the line number a person sees. Fewer
    # rows than lines is the sign, so a file without blank lines is not searched for them.
    read = con.execute(f"SELECT count(*) FROM {table}_read").fetchall()[0][0]
    blanks = _blank_lines(path) if read < scan.lines - 1 else []
    if blanks:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_lines AS SELECT l AS line, "
                    f"row_number() OVER (ORDER BY l) - 1 AS rid FROM range(2, ? + 2) t(l) "
                    f"WHERE l <> ALL(?::BIGINT[])", [read + len(blanks), blanks])
        source = f"{table}_read r JOIN {table}_lines n ON n.rid = r.rowid"
        line_expr = "n.line"
    else:
        source, line_expr = f"{table}_read", "rowid + 2"
    # A view, not a copy: validation and the typed insert read the staged columns once more each,
    # which is cheaper than writing millions of rows a second time.
    names = ", ".join(f'"{c}"' for c in spec.column_names)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT ({line_expr})::INTEGER AS _line, {names} "
                f"FROM {source}")
    staged = StagedFile(path, spec, table, read, header, period, warnings)
    if blanks:
        staged.warnings.append(Issue(path.name, blanks[0], None, None,
                                     f"{len(blanks)} blank line(s) skipped", severity="warning"))
    return staged


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def stage_xlsx(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, table: str,
               period: str | None) -> StagedFile:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # a renamed CSV, a truncated upload: openpyxl says why
        raise FileRejected([Issue(path.name, None, None, None, f"not a readable XLSX workbook ({e})")]) from None
    if spec.sheet not in workbook.sheetnames:
        raise FileRejected([Issue(path.name, None, None, None,
                                  f"sheet {spec.sheet!r} is missing (found {', '.join(workbook.sheetnames)})")])
    rows = workbook[spec.sheet].iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    header_issues = _check_header(spec, path.name, header)
    if any(i.severity == "error" for i in header_issues):
        raise FileRejected(header_issues)
    positions = [header.index(c) for c in spec.column_names]
    records = []
    for line, row in enumerate(rows, start=2):
        cells = [_cell_text(row[p]) if p < len(row) else None for p in positions]
        if any(c is not None for c in cells):
            records.append([line, *cells])
    workbook.close()
    cols = ", ".join(f'"{c}" VARCHAR' for c in spec.column_names)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (_line INTEGER, {cols})")
    if records:
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * (len(positions) + 1))})", records)
    return StagedFile(path, spec, table, len(records), header, period,
                      [i for i in header_issues if i.severity == "warning"])


def stage_file(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, tmp_dir: Path) -> StagedFile:
    match = spec.match(path.name)
    period = match.groupdict().get("period") if match else None
    table = f"stage_{spec.name}"
    if spec.file_format == "xlsx":
        return stage_xlsx(con, spec, path, table, period)
    return stage_csv(con, spec, path, table, tmp_dir, period)


def drop_staged(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Drop the staging view or table (CSV: a view over the parsed file; XLSX: a table)."""
    kinds = dict(con.execute("SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary UNION ALL "
                             "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary").fetchall())
    for name in (table, f"{table}_read", f"{table}_lines"):
        if name in kinds:
            con.execute(f"DROP {kinds[name]} {name}")
