"""Reading one delivered file into an in-memory staging table of text columns.

DuckDB's CSV reader does the parsing (Python only streams bytes once: hashing them, checking the
encoding and the source's limits, and writing the private UTF-8 copy DuckDB parses, transcoded
from Windows-1252, which DuckDB cannot read natively here; a file with blank lines is read once
more to find them, and a file DuckDB refuses once more to say where).
The staging table lives in an in-memory database, so columns that must never be stored (the
payroll's names) never touch the warehouse file.
"""

from __future__ import annotations

import codecs
import csv
import encodings.cp1252
import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from slf_warehouse.contract import Column, SourceSpec
from slf_warehouse.ingest.delivery import limits_for, open_delivery, too_big
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
    sha256: str = ""  # of the bytes parsed
    size: int = 0
    # Whether validation must look for control characters and line breaks inside values: the scan
    # saw a control byte, or DuckDB read fewer rows than blank lines explain (a quoted line break).
    check_text: bool = True


def _line_of(data_before: bytes, lines_before: int) -> int:
    return lines_before + data_before.count(b"\n") + 1


@dataclass(frozen=True)
class _Scan:
    lines: int  # the header's included
    sha256: str  # of the bytes scanned, which are the bytes parsed (the private copy's source)
    size: int
    control_characters: bool = True  # whether the file may hold any (XLSX: not looked for here)


# Control characters other than tab and the line ends: NUL and ESC were stored and reached the PDF.
_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# Windows-1252 decoding that stops at one, at no cost to a file without any (the transcoding
# decodes every byte anyway; a separate search over the bytes cost 0,6-1,2 s on the scale-100 ledger).
_CP1252_NO_CONTROL = "".join(
    "\ufffe" if i in _CONTROL_BYTES else c for i, c in enumerate(encodings.cp1252.decoding_table)
)


def _decode_cp1252(chunk: bytes, control_seen: bool) -> tuple[str, bool]:
    """A chunk of Windows-1252 (stateless: one byte a character); and whether a control character
    was seen, so far or in this chunk, which validation then names by line and column."""
    if not control_seen:
        try:
            # A str decoding table, as encodings.cp1252 itself passes; typeshed lists only the map forms.
            return codecs.charmap_decode(chunk, "strict", _CP1252_NO_CONTROL)[0], False  # type: ignore[arg-type]
        except UnicodeDecodeError as e:
            if chunk[e.start] not in _CONTROL_BYTES:
                raise
    return codecs.decode(chunk, "cp1252"), True


def _scan_text(path: Path, spec: SourceSpec, private_copy: Path) -> _Scan:
    """One pass over the delivered bytes: hash, encoding check, line count and limits, and a private
    UTF-8 copy (transcoded from Windows-1252, or the bytes as they are) that DuckDB then parses, so
    a file replaced meanwhile cannot give the manifest one version's hash and the rows another's."""
    limits = limits_for(spec)
    digest = hashlib.sha256()
    newlines, size, last, control = 0, 0, b"", False
    name = path.name
    transcode = spec.encoding == "cp1252"
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    with (
        open_delivery(path, spec) as src,
        private_copy.open("w", encoding="utf-8", newline="") if transcode else private_copy.open("wb") as out,
    ):
        while chunk := src.read(CHUNK):
            size += len(chunk)
            if size > limits.max_bytes:  # it grew after it was opened
                raise FileRejected([too_big(name, size, limits.max_bytes)])
            digest.update(chunk)
            # The byte test first: a regex over every byte of a chunk costs more than the transcoding,
            # and a Windows-1252 file rarely holds an 'Ã' or 'Â' at all.
            if transcode and (b"\xc3" in chunk or b"\xc2" in chunk) and (m := _UTF8_IN_CP1252.search(chunk)):
                raise FileRejected(
                    [
                        Issue(
                            name,
                            _line_of(chunk[: m.start()], newlines),
                            None,
                            None
                            if spec.personal_data
                            else chunk[m.start() : m.start() + 2].decode("utf-8", "replace"),
                            "the file is encoded as UTF-8, but this source is delivered in "
                            "Windows-1252 (cp1252): re-export it as Windows-1252",
                        )
                    ]
                )
            try:
                if transcode:
                    text, control = _decode_cp1252(chunk, control)
                else:
                    text = decoder.decode(chunk)
                    # UTF-8 sources are small (units, activities, a month's payroll): a plain search
                    control = control or len(chunk.translate(None, _CONTROL_BYTES)) != len(chunk)
            except UnicodeDecodeError as e:
                expected = "Windows-1252 (cp1252)" if transcode else "UTF-8"
                hint = "" if transcode else ": it looks like Windows-1252; re-export it as UTF-8"
                raise FileRejected(
                    [
                        Issue(
                            name,
                            _line_of(chunk[: e.start], newlines),
                            None,
                            f"byte 0x{chunk[e.start]:02X}",
                            f"not valid {expected}{hint}",
                        )
                    ]
                ) from None
            # `out` is the text file exactly when transcoding (mypy types the `with` target as either).
            out.write(text if transcode else chunk)  # type: ignore[arg-type]
            newlines += chunk.count(b"\n")
            if newlines > limits.max_rows + 1:  # the header and one line more than allowed
                raise FileRejected(
                    [
                        Issue(
                            name,
                            limits.max_rows + 2,
                            None,
                            None,
                            f"the file has more than {limits.max_rows:,} rows (this source's "
                            f"limit): refused".replace(",", "."),
                        )
                    ]
                )
            last = chunk[-1:]
    return _Scan(newlines + (1 if last not in (b"", b"\n") else 0), digest.hexdigest(), size, control)


def _whole_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The file in chunks cut at line ends, each with the number of lines before it: a search in a
    chunk never splits a line (nor a CRLF). The last chunk may end without a newline."""
    # The unfinished line's pieces are kept apart and joined once it ends: adding each chunk to it
    # (and searching it again) copied a 100 MB line about 13 times, a second's work.
    lines, carry = 0, list[bytes]()
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                carry.append(chunk)
                continue
            region = b"".join([*carry, chunk[:cut]])
            carry = [chunk[cut:]] if cut < len(chunk) else []
            yield lines, region
            lines += region.count(b"\n")
    if carry:
        yield lines, b"".join(carry)


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
    return [
        line
        for lines, region in _whole_lines(path)
        for m in _BLANK_LINE.finditer(region)
        if (line := lines + region.count(b"\n", 0, m.start()) + 1) > 1
    ]


def _read_header(path: Path, spec: SourceSpec, name: str) -> list[str]:
    """The header of the private UTF-8 copy, refused before DuckDB sees it when it is over the
    source's limits (DuckDB ran out of memory on 10^6 columns; the csv module raised on a 128 KB field)."""
    limits = limits_for(spec)
    with path.open("rb") as f:
        first = f.readline(limits.max_line_bytes + 1)
    if len(first) > limits.max_line_bytes:
        raise FileRejected(
            [
                Issue(
                    name,
                    1,
                    None,
                    None,
                    f"the header line is longer than {limits.max_line_bytes:,} bytes (this source's "
                    f"limit): refused".replace(",", "."),
                )
            ]
        )
    text = first.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r\n")
    try:
        header = [h.strip() for h in next(csv.reader([text], delimiter=spec.delimiter, quotechar='"'), [])]
    except csv.Error as e:
        raise FileRejected([Issue(name, 1, None, None, f"the header cannot be read ({e})")]) from None
    if len(header) > limits.max_columns:
        raise FileRejected([too_many_columns(name, len(header), limits.max_columns)])
    return header


def too_many_columns(name: str, found: int, limit: int) -> Issue:
    return Issue(
        name,
        1,
        None,
        None,
        f"the header has {found:,} fields; this source allows at most {limit:,}: refused".replace(",", "."),
    )


def _check_header(spec: SourceSpec, name: str, header: list[str]) -> list[Issue]:
    issues = []
    if len(header) <= 1 and spec.delimiter not in ("".join(header)):
        other = ";" if spec.delimiter == "," else ","
        if other in "".join(header):
            issues.append(
                Issue(name, 1, None, other, f"the delimiter is {other!r}, expected {spec.delimiter!r}")
            )
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


def _long_line(path: Path, limit: int) -> int | None:
    """The first line longer than `limit` bytes (DuckDB names none for a line beyond its buffer).
    Asked only after DuckDB failed; it never holds more than one chunk."""
    lines, run = 0, 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            start = 0
            while (nl := chunk.find(b"\n", start)) != -1:
                if run + nl - start > limit:
                    return lines + 1
                lines, run, start = lines + 1, 0, nl + 1
            run += len(chunk) - start
            if run > limit:
                return lines + 1
    return None


def staged_expression(col: Column, field: str) -> str:
    """A delivered field as staged: trimmed, empty as NULL; an id in Unicode NFC, so that its NFC and
    NFD spellings are one value to the uniqueness check and to every join."""
    staged = f"nullif(trim({field}), '')"
    return f"nfc_normalize({staged})" if col.type == "id" else staged


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    path: Path,
    table: str,
    tmp_dir: Path,
    period: str | None,
) -> StagedFile:
    private = tmp_dir / f"{path.name}.{uuid.uuid4().hex}.utf8"  # two threads may read equal names
    lf_copy = private.with_suffix(".lf")
    try:
        return _stage_private_copy(con, spec, path, private, lf_copy, table, period)
    finally:
        private.unlink(missing_ok=True)
        lf_copy.unlink(missing_ok=True)


def _stage_private_copy(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    path: Path,
    private: Path,
    lf_copy: Path,
    table: str,
    period: str | None,
) -> StagedFile:
    scan = _scan_text(path, spec, private)
    header = _read_header(private, spec, path.name)
    header_issues = _check_header(spec, path.name, header)
    if any(i.severity == "error" for i in header_issues):
        raise FileRejected(header_issues)
    limits = limits_for(spec)
    warnings = [i for i in header_issues if i.severity == "warning"]
    columns = {f"c{i}": "VARCHAR" for i in range(len(header))}
    # Trimmed once, as the file is read: validation and the typed insert then read plain columns
    # (a trim per value in each of them cost more than DuckDB's parse of the file).
    wanted = ", ".join(
        f'{staged_expression(col, f"c{header.index(col.name)}")} AS "{col.name}"' for col in spec.columns
    )

    def parse(source: Path) -> None:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table}_read AS SELECT {wanted} "
            f"FROM read_csv(?, delim=?, quote='\"', "
            f"escape='\"', header=false, skip=1, auto_detect=false, columns={columns!r}, "
            f"encoding='utf-8', strict_mode=true, max_line_size={limits.max_line_bytes})",
            [str(source), spec.delimiter],
        )

    try:
        try:
            parse(private)
        except duckdb.Error as e:
            # DuckDB's reader takes one kind of line end per file and refuses a mix without a line
            # number. The contract allows both, so a mixed file is read again with CRLF made LF;
            # looking for the mix only after a failure keeps the common case to one pass.
            crlf, newlines = (0, 0) if re.search(r"Line: \d+", str(e)) else _line_endings(private)
            if not 0 < crlf < newlines:
                raise
            _normalise_line_endings(private, lf_copy)
            parse(lf_copy)
            warnings.append(
                Issue(
                    path.name,
                    None,
                    None,
                    None,
                    f"lines end both with CRLF ({crlf}) and LF ({newlines - crlf}); read as one file",
                    severity="warning",
                )
            )
    except duckdb.Error as e:
        raise FileRejected([_unreadable(spec, path.name, private, header, str(e))]) from None
    # DuckDB skips blank lines; re-number so every row keeps the line number a person sees. Fewer
    # rows than lines is the sign, so a file without blank lines is not searched for them.
    read = con.execute(f"SELECT count(*) FROM {table}_read").fetchall()[0][0]
    blanks = _blank_lines(private) if read < scan.lines - 1 else []
    if blanks:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table}_lines AS SELECT l AS line, "
            f"row_number() OVER (ORDER BY l) - 1 AS rid FROM range(2, ? + 2) t(l) "
            f"WHERE l <> ALL(?::BIGINT[])",
            [read + len(blanks), blanks],
        )
        source = f"{table}_read r JOIN {table}_lines n ON n.rid = r.rowid"
        line_expr = "n.line"
    else:
        source, line_expr = f"{table}_read", "rowid + 2"
    # A view, not a copy: validation and the typed insert read the staged columns once more each,
    # which is cheaper than writing millions of rows a second time.
    names = ", ".join(f'"{c}"' for c in spec.column_names)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT ({line_expr})::INTEGER AS _line, {names} "
        f"FROM {source}"
    )
    quoted_line_breaks = read + len(blanks) < scan.lines - 1
    staged = StagedFile(
        path,
        spec,
        table,
        read,
        header,
        period,
        warnings,
        scan.sha256,
        scan.size,
        scan.control_characters or quoted_line_breaks,
    )
    if blanks:
        staged.warnings.append(
            Issue(
                path.name, blanks[0], None, None, f"{len(blanks)} blank line(s) skipped", severity="warning"
            )
        )
    return staged


def _unreadable(spec: SourceSpec, name: str, private: Path, header: list[str], error: str) -> Issue:
    """DuckDB could not read the file: say on which line and why, without quoting the line."""
    m = re.search(r"Line: (\d+)", error)
    limit = limits_for(spec).max_line_bytes
    if ("Maximum line size" in error or not m) and (line := _long_line(private, limit)) is not None:
        return Issue(
            name,
            line,
            None,
            None,
            f"the line is longer than {limit:,} bytes (this source's limit): refused".replace(",", "."),
        )
    if not m and (line := _stray_carriage_return(private)) is not None:
        return Issue(
            name,
            line,
            None,
            None,
            "a carriage return (CR) in the middle of the line: the row cannot be read "
            f"as {len(header)} fields separated by {spec.delimiter!r}; remove it or re-export the file",
        )
    detail = error.split("\n")
    # DuckDB's message goes on to quote the line ("Original Line: …"): only its count of fields is
    # passed on, and for a source with personal data nothing else of it.
    found = next(
        (d for d in detail if d.startswith("Expected Number")), "" if spec.personal_data else detail[0]
    )
    return Issue(
        name,
        int(m.group(1)) if m else None,
        None,
        None,
        f"the row cannot be read as {len(header)} fields separated by {spec.delimiter!r}"
        + (f": {found}" if found else ""),
    )


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def _private_copy(path: Path, spec: SourceSpec, target: Path) -> _Scan:
    """The delivery copied as it is hashed: the copy is what is parsed."""
    limit = limits_for(spec).max_bytes
    digest, size = hashlib.sha256(), 0
    with open_delivery(path, spec) as src, target.open("wb") as out:
        while chunk := src.read(CHUNK):
            size += len(chunk)
            if size > limit:
                raise FileRejected([too_big(path.name, size, limit)])
            digest.update(chunk)
            out.write(chunk)
    return _Scan(0, digest.hexdigest(), size)


def _check_unpacked_size(workbook: Path, spec: SourceSpec, name: str) -> None:
    """A workbook is a zip: a 613 KB one unpacked to 1,3 GB of shared strings, which openpyxl holds in
    memory even in read-only mode. The members' declared sizes are checked before anything is
    unpacked; zipfile itself refuses to unpack a member beyond its declared size."""
    import zipfile

    limit = limits_for(spec).max_bytes
    try:
        with zipfile.ZipFile(workbook) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError) as e:
        raise FileRejected([Issue(name, None, None, None, f"not a readable XLSX workbook ({e})")]) from None
    if unpacked > limit:
        raise FileRejected(
            [
                Issue(
                    name,
                    None,
                    None,
                    None,
                    f"the workbook unpacks to {unpacked:,} bytes; this source allows at most {limit:,}: "
                    f"refused unread".replace(",", "."),
                )
            ]
        )


def stage_xlsx(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    path: Path,
    table: str,
    tmp_dir: Path,
    period: str | None,
) -> StagedFile:
    private = tmp_dir / f"{path.name}.{uuid.uuid4().hex}.xlsx"
    try:
        return _stage_private_workbook(con, spec, path, private, table, period)
    finally:
        private.unlink(missing_ok=True)


def _stage_private_workbook(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    path: Path,
    private: Path,
    table: str,
    period: str | None,
) -> StagedFile:
    from openpyxl import load_workbook

    scan = _private_copy(path, spec, private)
    _check_unpacked_size(private, spec, path.name)
    limits = limits_for(spec)
    try:
        workbook = load_workbook(private, read_only=True, data_only=True)  # streams the sheet's rows
    except Exception as e:  # a renamed CSV, a truncated upload: openpyxl says why
        raise FileRejected(
            [Issue(path.name, None, None, None, f"not a readable XLSX workbook ({e})")]
        ) from None
    try:
        if spec.sheet not in workbook.sheetnames:
            raise FileRejected(
                [
                    Issue(
                        path.name,
                        None,
                        None,
                        None,
                        f"sheet {spec.sheet!r} is missing (found {', '.join(workbook.sheetnames)})",
                    )
                ]
            )
        rows = workbook[spec.sheet].iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
        while header and header[-1] == "":  # empty cells right of the header are not columns
            header.pop()
        if len(header) > limits.max_columns:
            raise FileRejected([too_many_columns(path.name, len(header), limits.max_columns)])
        header_issues = _check_header(spec, path.name, header)
        if any(i.severity == "error" for i in header_issues):
            raise FileRejected(header_issues)
        positions = [header.index(c) for c in spec.column_names]
        cols = ", ".join(f'"{c}" VARCHAR' for c in spec.column_names)
        # The rows go into {table}_read with a view {table} over them, as a CSV file's do, so that
        # drop_staged knows what to drop by name.
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table}_read (_line INTEGER, {cols})")
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM {table}_read")
        # Column-wise lists, one statement a batch: a row-by-row insert of 100.000 answers took 120 s.
        unnests = ", ".join(
            ["unnest(?::INTEGER[])"]
            + [staged_expression(col, "unnest(?::VARCHAR[])") for col in spec.columns]
        )
        batch = _RowBatch(len(positions))
        count = 0
        for line, row in enumerate(rows, start=2):
            cells = [_cell_text(row[p]) if p < len(row) else None for p in positions]
            if any(c is not None for c in cells):
                if count == limits.max_rows:
                    raise FileRejected(
                        [
                            Issue(
                                path.name,
                                line,
                                None,
                                None,
                                f"the sheet has more than {limits.max_rows:,} rows (this source's "
                                f"limit): refused".replace(",", "."),
                            )
                        ]
                    )
                count += 1
                if batch.add(line, cells) == XLSX_BATCH_ROWS:
                    batch.insert(con, f"INSERT INTO {table}_read SELECT {unnests}")
        batch.insert(con, f"INSERT INTO {table}_read SELECT {unnests}")
    finally:
        workbook.close()
    return StagedFile(
        path,
        spec,
        table,
        count,
        header,
        period,
        [i for i in header_issues if i.severity == "warning"],
        scan.sha256,
        scan.size,
    )


XLSX_BATCH_ROWS = 20_000


class _RowBatch:
    """Survey rows gathered column by column, inserted together and then forgotten."""

    def __init__(self, columns: int) -> None:
        self.lines: list[int] = []
        self.values: list[list[str | None]] = [[] for _ in range(columns)]

    def add(self, line: int, cells: list[str | None]) -> int:
        self.lines.append(line)
        for column, cell in zip(self.values, cells, strict=True):
            column.append(cell)
        return len(self.lines)

    def insert(self, con: duckdb.DuckDBPyConnection, sql: str) -> None:
        if self.lines:
            con.execute(sql, [self.lines, *self.values])
        self.lines = []
        self.values = [[] for _ in self.values]


def stage_file(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, tmp_dir: Path) -> StagedFile:
    match = spec.match(path.name)
    period = match.groupdict().get("period") if match else None
    table = f"stage_{spec.name}"
    if spec.file_format == "xlsx":
        return stage_xlsx(con, spec, path, table, tmp_dir, period)
    return stage_csv(con, spec, path, table, tmp_dir, period)


def drop_staged(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Drop what staging made: the view `table` over the table `table`_read, and `table`_lines (a
    CSV file with blank lines). By name: asking duckdb_views() / duckdb_tables() what exists cost
    about 10 ms in a new session (a sixth of loading a small file), these drops about 0,5 ms."""
    con.execute(f"DROP VIEW IF EXISTS temp.{table}")
    con.execute(f"DROP TABLE IF EXISTS temp.{table}_read")
    con.execute(f"DROP TABLE IF EXISTS temp.{table}_lines")
