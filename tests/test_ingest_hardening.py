"""What arrives in the landing folder cannot leak personal data, read outside it, or crash the load
without naming the file, line and column (issue 14, points 3 and 4)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import duckdb
import pytest

from conftest import attached, raw_totals
from slf_warehouse.ingest import IngestFailed, ingest_source

PAYROLL = "loen_2024-06.csv"
# A landing with that month alone: the other 29 would load (each through the personal-data reading
# process) and play no part in what these tests assert about the one file.
ONE_PAYROLL = {"loen": [PAYROLL]}


def _payroll_rows(landing: Path) -> tuple[list[str], list[list[str]]]:
    header, *rows = (landing / "loen" / PAYROLL).read_text("utf-8-sig").splitlines()
    return header.split(";"), [r.split(";") for r in rows]


def _write_payroll(landing: Path, header: list[str] | None, rows: list[list[str]]) -> None:
    lines = ([";".join(header)] if header else []) + [";".join(r) for r in rows]
    (landing / "loen" / PAYROLL).write_text("\n".join(lines) + "\n", encoding="utf-8-sig")


def _swap(header: list[str], a: str, b: str) -> list[str]:
    i, j = header.index(a), header.index(b)
    header = header.copy()
    header[i], header[j] = header[j], header[i]
    return header


SCRAMBLES = {
    "navn-and-rolle-swapped": lambda h: _swap(h, "navn", "rolle"),
    "beloeb-and-stilling-swapped": lambda h: _swap(h, "beloeb", "stilling"),
    "medarbejdernr-and-loenart-swapped": lambda h: _swap(h, "medarbejdernr", "loenart"),
    "no-header-line": lambda h: None,
}


@pytest.mark.parametrize("scramble", SCRAMBLES, ids=list(SCRAMBLES))
def test_a_scrambled_payroll_is_rejected_without_quoting_it(
    scramble: str, landing_with, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    sample_landing = landing_with(ONE_PAYROLL)
    header, rows = _payroll_rows(sample_landing)
    _write_payroll(sample_landing, SCRAMBLES[scramble](header), rows)
    personal = {r[header.index(c)] for r in rows for c in ("medarbejdernr", "navn", "beloeb")}
    personal |= {part for r in rows for part in r[header.index("navn")].split()}  # first and last names alone
    warehouse, quarantine = tmp_path / "wh.duckdb", tmp_path / "quarantine"

    report = ingest_source("loen", sample_landing, warehouse, quarantine)

    [rejected] = report.rejected
    assert rejected.file_name == PAYROLL and rejected.errors
    assert all(e.file == PAYROLL and e.value is None for e in rejected.issues)
    assert all(e.line is not None for e in rejected.errors)
    with attached(warehouse) as con:
        manifest = con.execute("SELECT concat_ws('\n', error, warnings) FROM audit.load_manifest").fetchall()
    outputs = {
        "issues": "\n".join(str(i) for i in rejected.issues),
        "summary": report.summary(),
        "IngestFailed": str(IngestFailed(report)),
        "errors.txt": (quarantine / f"{PAYROLL}.errors.txt").read_text("utf-8"),
        "errors.json": (quarantine / f"{PAYROLL}.errors.json").read_text("utf-8"),
        "manifest": "\n".join(m[0] for m in manifest),
        "stdout+stderr": "".join(capfd.readouterr()),
    }
    leaks = {name: sorted(v for v in personal if v in text) for name, text in outputs.items()}
    assert leaks == {name: [] for name in outputs}
    # the kind of problem is still said, with its line and column
    assert "line " in outputs["errors.txt"] and "column " in outputs["errors.txt"]


def test_a_payroll_with_number_and_cost_centre_swapped_stores_no_employee_number(
    landing_with, tmp_path: Path
) -> None:
    """Both are six digits: only the unit register (loaded first) tells them apart. Loaded, the
    employee numbers would be stored in clear as cost centres."""
    sample_landing = landing_with({"enheder": None, **ONE_PAYROLL})
    header, rows = _payroll_rows(sample_landing)
    _write_payroll(sample_landing, _swap(header, "medarbejdernr", "omkostningssted"), rows)
    numbers = {r[header.index("medarbejdernr")] for r in rows}
    warehouse = tmp_path / "wh.duckdb"
    ingest_source("enheder", sample_landing, warehouse)
    report = ingest_source("loen", sample_landing, warehouse, tmp_path / "quarantine")
    [rejected] = report.rejected
    assert rejected.file_name == PAYROLL
    assert {(e.column, e.message, e.value) for e in rejected.errors} == {
        ("omkostningssted", "not a known omkostningssted (none in enheder)", None)
    }
    assert rejected.errors[0].line == 2
    with attached(warehouse) as con:
        stored = {r[0] for r in con.execute("SELECT DISTINCT omkostningssted FROM raw.loen").fetchall()}
    assert not stored & numbers


def test_a_quarantined_payroll_and_its_reports_are_the_service_users_only(
    landing_with, tmp_path: Path
) -> None:
    sample_landing = landing_with(ONE_PAYROLL)
    header, rows = _payroll_rows(sample_landing)
    _write_payroll(sample_landing, _swap(header, "navn", "rolle"), rows)
    quarantine = tmp_path / "quarantine" / "loen"
    ingest_source("loen", sample_landing, tmp_path / "wh.duckdb", quarantine)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in quarantine.iterdir()}
    assert modes == {PAYROLL: 0o600, f"{PAYROLL}.errors.json": 0o600, f"{PAYROLL}.errors.txt": 0o600}
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o700


def test_a_failure_in_the_reading_process_does_not_quote_the_file(
    sample_landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error nobody foresaw (here: DuckDB refusing a value) reaches the parent's log as where it
    happened and its type, without the message that quotes the row."""
    from slf_warehouse.ingest.apart import _failure_report

    try:
        duckdb.sql("SELECT 'Søren Jensen'::INTEGER").fetchall()
    except duckdb.Error as e:
        report = _failure_report(e)
    assert "Søren" not in report and "ConversionException" in report and "withheld" in report


# --- point 4: what goes into the landing folder -------------------------------------------------


def _secret(tmp_path: Path) -> tuple[Path, str]:
    secret = tmp_path / ".slf-pseudonym-key"
    secret.write_text("not-the-real-key-4f1b9c2e7d\n", encoding="utf-8")
    return secret, "not-the-real-key-4f1b9c2e7d"


def _everything_written(report, warehouse: Path, quarantine: Path, capfd: pytest.CaptureFixture[str]) -> str:
    with attached(warehouse) as con:
        manifest = con.execute(
            "SELECT concat_ws('\n', file_name, sha256, error, warnings) FROM audit.load_manifest"
        ).fetchall()
    reports = (
        [p.read_text("utf-8", "replace") for p in quarantine.iterdir() if not p.is_symlink()]
        if quarantine.is_dir()
        else []
    )
    return "\n".join([report.summary(), *(m[0] for m in manifest), *reports, *capfd.readouterr()])


def test_a_link_in_the_landing_folder_is_refused_unread(
    sample_landing: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    secret, text = _secret(tmp_path)
    units = sample_landing / "enheder" / "enheder.csv"
    units.unlink()
    units.symlink_to(Path("..") / ".." / secret.name)  # enheder/enheder.csv -> ../../.slf-pseudonym-key
    warehouse, quarantine = tmp_path / "wh.duckdb", tmp_path / "quarantine"

    report = ingest_source("enheder", sample_landing, warehouse, quarantine)

    [rejected] = report.rejected
    [error] = rejected.errors
    assert (error.file, error.line, error.value) == ("enheder.csv", None, None)
    assert "symbolic link" in error.message
    assert text not in _everything_written(report, warehouse, quarantine, capfd)
    assert raw_totals(warehouse)["enheder"] == (0,)
    # neither the link nor what it points to was moved or changed
    assert units.is_symlink() and secret.read_text("utf-8").strip() == text
    assert (
        json.loads((quarantine / "enheder.csv.errors.json").read_text("utf-8"))["errors"][0]["message"]
        == error.message
    )


def test_a_source_folder_that_is_a_link_to_elsewhere_is_refused(sample_landing: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (sample_landing / "aktiviteter").rename(elsewhere)
    (sample_landing / "aktiviteter").symlink_to(elsewhere)
    report = ingest_source("aktiviteter", sample_landing, tmp_path / "wh.duckdb", tmp_path / "quarantine")
    [rejected] = report.rejected
    assert "real path is outside the landing folder" in rejected.errors[0].message
    assert (elsewhere / "aktiviteter.csv").exists()  # not moved out of where it really is


def test_a_link_put_in_place_after_the_folder_was_listed_is_not_followed(tmp_path: Path) -> None:
    from slf_warehouse.contract import SOURCES
    from slf_warehouse.ingest.delivery import open_delivery
    from slf_warehouse.ingest.errors import FileRejected

    secret, _ = _secret(tmp_path)
    link = tmp_path / "enheder.csv"
    link.symlink_to(secret)
    with pytest.raises(FileRejected, match="symbolic link"):
        open_delivery(link, SOURCES["enheder"])


def test_a_file_replaced_while_it_is_read_is_recorded_as_the_version_loaded(
    sample_landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is swapped right after the step that hashes it and before DuckDB parses it: the
    manifest's sha256 must be the hash of the bytes whose rows were stored (14 of 40 tries got
    one version's hash and the other's rows)."""
    import hashlib

    import slf_warehouse.ingest.reading as reading

    units = sample_landing / "enheder" / "enheder.csv"
    first = units.read_bytes()
    second = first + first.splitlines(keepends=True)[1].replace(b"FF-SLF", b"FF-NY", 1)
    real_scan = reading._scan_text

    def scan_then_replace(*args, **kwargs):
        scanned = real_scan(*args, **kwargs)
        replacement = units.with_name("enheder.csv.new")
        replacement.write_bytes(second)
        replacement.replace(units)  # how a delivery tool swaps a file: rename over it
        return scanned

    monkeypatch.setattr(reading, "_scan_text", scan_then_replace)
    warehouse = tmp_path / "wh.duckdb"
    report = ingest_source("enheder", sample_landing, warehouse)
    assert not report.rejected
    with attached(warehouse) as con:
        [(sha256, size, rows)] = con.execute(
            "SELECT sha256, size_bytes, rows FROM audit.load_manifest"
        ).fetchall()
        stored = con.execute(
            "SELECT count(*), count(*) FILTER (enhed_id = 'FF-NY') FROM raw.enheder"
        ).fetchall()
    version = {hashlib.sha256(v).hexdigest(): v for v in (first, second)}[sha256]
    rows_of_version = len(version.splitlines()) - 1
    assert stored == [(rows_of_version, int(b"FF-NY" in version))]
    assert (size, rows) == (len(version), rows_of_version)

    # the next run sees the file now in the folder as a change, and loads it
    monkeypatch.setattr(reading, "_scan_text", real_scan)
    again = ingest_source("enheder", sample_landing, warehouse)
    assert [f.status for f in again.files] == ["skipped-duplicate" if version == second else "loaded"]


# --- limits -------------------------------------------------------------------------------------


def _rejection(source: str, landing: Path, tmp_path: Path):
    report = ingest_source(source, landing, tmp_path / "wh.duckdb", tmp_path / "quarantine")
    [rejected] = report.rejected
    return rejected.errors


def test_a_csv_with_a_million_columns_is_refused_before_it_is_parsed(
    sample_landing: Path, tmp_path: Path
) -> None:
    units = sample_landing / "enheder" / "enheder.csv"
    header, first = units.read_text("utf-8").splitlines()[:2]
    wide = ",".join([header, *(f"x{i}" for i in range(10**6))])
    units.write_text(wide + "\n" + first + "," * 10**6 + "\n", encoding="utf-8")
    [error] = _rejection("enheder", sample_landing, tmp_path)
    assert (error.line, error.column) == (1, None)
    assert "the header line is longer than 1.048.576 bytes" in error.message
    # under the line limit, the number of fields is the limit
    units.write_text(
        ",".join([header, *(f"x{i}" for i in range(200))]) + "\n" + first + "," * 200 + "\n", encoding="utf-8"
    )
    [error] = _rejection("enheder", sample_landing, tmp_path)
    assert (error.line, error.message) == (
        1,
        "the header has 207 fields; this source allows at most 100: refused",
    )


def test_a_row_far_wider_than_its_header_is_named(sample_landing: Path, tmp_path: Path) -> None:
    units = sample_landing / "enheder" / "enheder.csv"
    lines = units.read_text("utf-8").splitlines()
    lines[3] += ",x" * 600_000  # 1,2 MB of fields on line 4
    units.write_text("\n".join(lines) + "\n", encoding="utf-8")
    [error] = _rejection("enheder", sample_landing, tmp_path)
    assert error.line == 4 and "the row cannot be read as 7 fields separated by ','" in error.message


@pytest.mark.parametrize(
    "limit, value, message",
    [
        ("MAX_BYTES", "2000", "the file is larger than this source's limit"),
        ("MAX_ROWS", "5", "the file has more than 5 rows (this source's limit)"),
        ("MAX_COLUMNS", "6", "the header has 7 fields; this source allows at most 6"),
    ],
)
def test_limits_are_set_per_source(
    limit: str,
    value: str,
    message: str,
    sample_landing: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"SLF_INGEST_AKTIVITETER_{limit}", value)
    [error] = _rejection("aktiviteter", sample_landing, tmp_path)
    assert message in error.message, error
    assert error.line == {"MAX_BYTES": None, "MAX_ROWS": 7, "MAX_COLUMNS": 1}[limit]
    # another source keeps its own limits
    assert not ingest_source("enheder", sample_landing, tmp_path / "wh.duckdb").rejected


def _workbook_with(sample_xlsx: Path, target: Path, member: str, content: bytes) -> None:
    import zipfile

    with zipfile.ZipFile(sample_xlsx) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename != member:
                out.writestr(info, src.read(info.filename))
        # the fastest deflate: the 100 MB bomb packs in 0,2 s instead of 0,5 s, to about 450 KB
        out.writestr(member, content, compresslevel=1)


def test_a_shared_strings_bomb_is_refused_before_it_is_unpacked(sample_landing: Path, tmp_path: Path) -> None:
    workbook = sample_landing / "social_kapital" / "social_kapital_2023.xlsx"
    original = tmp_path / "original.xlsx"
    workbook.rename(original)
    strings = (
        b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + b"<si><t>"
        + b"A" * (100 * 2**20)
        + b"</t></si></sst>"
    )  # 100 MB, about 450 KB packed
    _workbook_with(original, workbook, "xl/sharedStrings.xml", strings)
    assert workbook.stat().st_size < 2**20
    [error] = _rejection("social_kapital", sample_landing, tmp_path)
    assert "the workbook unpacks to" in error.message and "at most 67.108.864" in error.message


def _sheet_xml(rows: list[list]) -> bytes:
    """A worksheet written directly (openpyxl takes longer to write 100.000 rows than we to read them)."""
    letters = "ABCDEFGHIJ"

    def cell(ref: str, v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, str):
            return f'<c r="{ref}" t="inlineStr"><is><t>{v}</t></is></c>'
        return f'<c r="{ref}" t="n"><v>{v}</v></c>'

    body = "".join(
        f'<row r="{n}">' + "".join(cell(f"{letters[i]}{n}", v) for i, v in enumerate(row)) + "</row>"
        for n, row in enumerate(rows, start=1)
    )
    return (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        f"{body}</sheetData></worksheet>"
    ).encode()


@pytest.mark.slow  # a bulk-load timing: about 20 s alone
def test_a_hundred_thousand_survey_rows_load_in_bulk(sample_landing: Path, tmp_path: Path) -> None:
    """Row-by-row inserts took 120 s for these (218 s on a busy machine); in batches about 20 s."""
    import time

    target = sample_landing / "social_kapital" / "social_kapital_2023.xlsx"
    original = tmp_path / "original.xlsx"
    target.rename(original)
    header = ["enhed_id", "aar", "sk1", "sk2", "sk3", "sk4", "slf1", "slf2", "slf3", "slf4"]
    rows = [[f"SKOLE-{i % 40:03d}", 2023, *[(i + k) % 5 for k in range(8)]] for i in range(100_000)]
    rows[54_321][3] = None  # an unanswered question stays empty
    _workbook_with(original, target, "xl/worksheets/sheet1.xml", _sheet_xml([header, *rows]))
    warehouse = tmp_path / "wh.duckdb"
    started = time.perf_counter()
    report = ingest_source("social_kapital", sample_landing, warehouse)
    elapsed = time.perf_counter() - started
    assert not report.rejected, report.summary()
    with attached(warehouse) as con:
        count, sk1, sk2_missing, last = con.execute(
            "SELECT count(*), sum(sk1), count(*) FILTER (sk2 IS NULL), max(_source_line) "
            "FROM raw.social_kapital WHERE _source_file = ?",
            [target.name],
        ).fetchall()[0]
    assert (count, sk1, sk2_missing, last) == (100_000, sum(r[2] for r in rows), 1, 100_001)
    assert elapsed < 60, elapsed


# --- values that passed validation and then crashed the load ------------------------------------


def _set(path: Path, encoding: str, delimiter: str, line: int, column: str, value: str) -> None:
    lines = path.read_bytes().decode(encoding).splitlines(keepends=True)
    header = lines[0].lstrip("\ufeff").rstrip("\r\n").split(delimiter)
    ending = "\r\n" if lines[line - 1].endswith("\r\n") else "\n"
    fields = lines[line - 1].rstrip("\r\n").split(delimiter)
    fields[header.index(column)] = value
    lines[line - 1] = delimiter.join(fields) + ending
    path.write_bytes("".join(lines).encode(encoding))


SOURCE_FORMAT = {
    "enheder": ("enheder.csv", "utf-8", ","),
    "aktiviteter": ("aktiviteter.csv", "utf-8", ","),
    "bevillinger": ("bevillinger.csv", "cp1252", ";"),
    "posteringer": ("posteringer_2023-03.csv", "cp1252", ";"),
}


@pytest.mark.parametrize(
    "source, line, column, value, message",
    [
        ("aktiviteter", 4, "deltagere", "99999999999", "the number is too large: at most 2.147.483.647"),
        (
            "bevillinger",
            3,
            "beloeb_kr",
            "12345678901234567890,00",
            "too large to store: at most 16 digits before",
        ),
        (
            "posteringer",
            9,
            "beloeb",
            "12.345.678.901.234.567.890,00",
            "too large to store: at most 16 digits before",
        ),
        ("enheder", 5, "enhed_navn", "Skole\x00med NUL", "a control character"),
        ("aktiviteter", 3, "titel", "Læringsdag \x1b[31m", "a control character"),
        ("posteringer", 6, "tekst", "Forældrebetaling\x1b", "a control character"),
        ("bevillinger", 4, "bemaerkning", "en \x07 klokke", "a control character"),
        ("enheder", 6, "enhed_navn", '"to\nlinjer"', "a control character"),
        ("enheder", 3, "enhed_id", "SKOLE\u2010017", "an id of letters, digits and - _ . / only"),
        ("aktiviteter", 2, "aktivitet_id", "AKT 2022", "an id of letters, digits and - _ . / only"),
    ],
    ids=[
        "int32-overflow",
        "20-digit-allocation",
        "20-digit-posting",
        "nul",
        "esc",
        "esc-cp1252",
        "bel-cp1252",
        "quoted-line-break",
        "u2010-hyphen",
        "space-in-id",
    ],
)
def test_a_value_that_cannot_be_stored_is_named(
    source: str,
    line: int,
    column: str,
    value: str,
    message: str,
    sample_landing: Path,
    tmp_path: Path,
    one_source_loaded,
) -> None:
    file_name, encoding, delimiter = SOURCE_FORMAT[source]
    warehouse = tmp_path / "wh.duckdb"
    one_source_loaded(source, warehouse)
    before = raw_totals(warehouse)
    _set(sample_landing / source / file_name, encoding, delimiter, line, column, value)
    quarantine = tmp_path / "quarantine"
    report = ingest_source(source, sample_landing, warehouse, quarantine)
    [rejected] = report.rejected
    assert [(e.file, e.line, e.column) for e in rejected.errors] == [(file_name, line, column)], [
        str(e) for e in rejected.errors
    ]
    assert message in rejected.errors[0].message
    assert (quarantine / file_name).exists() and raw_totals(warehouse) == before


def test_an_id_in_nfc_and_nfd_is_one_id(sample_landing: Path, tmp_path: Path) -> None:
    import unicodedata

    units = sample_landing / "enheder" / "enheder.csv"
    nfc = "FRI-Å01"
    _set(units, "utf-8", ",", 3, "enhed_id", nfc)
    _set(units, "utf-8", ",", 7, "enhed_id", unicodedata.normalize("NFD", nfc))
    assert unicodedata.normalize("NFD", nfc) != nfc
    [rejected] = ingest_source("enheder", sample_landing, tmp_path / "wh.duckdb", tmp_path / "q").rejected
    [error] = rejected.errors
    assert (error.line, error.column, error.message) == (
        7,
        "enhed_id",
        "duplicate key: the same value is on line 3",
    )
    # one spelling is stored, the NFC one
    (tmp_path / "q" / "enheder.csv").replace(units)
    _set(units, "utf-8", ",", 3, "enhed_id", "FRI-Å02")
    ingest_source("enheder", sample_landing, tmp_path / "wh.duckdb")
    with attached(tmp_path / "wh.duckdb") as con:
        stored = con.execute("SELECT enhed_id FROM raw.enheder WHERE _source_line = 7").fetchall()
    assert stored == [(nfc,)]


def test_a_header_field_over_128_kb_is_named(sample_landing: Path, tmp_path: Path) -> None:
    units = sample_landing / "enheder" / "enheder.csv"
    text = units.read_text("utf-8")
    units.write_text('"' + "x" * 200_000 + '",' + text, encoding="utf-8")
    [error] = _rejection("enheder", sample_landing, tmp_path)
    assert error.line == 1 and "the header cannot be read" in error.message


def test_a_100_mb_line_is_named(
    sample_landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLF_INGEST_ENHEDER_MAX_BYTES", str(200 * 2**20))
    units = sample_landing / "enheder" / "enheder.csv"
    lines = units.read_bytes().splitlines(keepends=True)
    lines[4] = lines[4].rstrip(b"\n") + b"y" * (100 * 2**20) + b"\n"
    units.write_bytes(b"".join(lines))
    [error] = _rejection("enheder", sample_landing, tmp_path)
    assert (error.line, error.message) == (
        5,
        "the line is longer than 1.048.576 bytes (this source's limit): refused",
    )


# --- a rule only dbt catches names the rows' file and line --------------------------------------


def test_an_allocation_period_ending_before_it_starts_is_refused_at_the_edge(
    sample_landing: Path, tmp_path: Path
) -> None:
    _set(sample_landing / "bevillinger" / "bevillinger.csv", "cp1252", ";", 5, "periode_til", "31-12-2000")
    [error] = _rejection("bevillinger", sample_landing, tmp_path)
    assert (error.file, error.line, error.column) == ("bevillinger.csv", 5, "periode_til")
    assert error.message == "the period ends before it starts (periode_til is before periode_fra)"


@pytest.mark.dbt  # runs dbt build on the corrupted copy
def test_a_failed_dbt_test_names_the_failing_rows_file_and_line(
    raw_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows that got past the edge (here written into raw directly) and fail a dbt test on a staging
    model: the refresh's error lists their delivered file and line, not only the test's name."""
    from conftest import PROJECT, corrupted_copy
    from slf_warehouse.pipeline import StepFailed, dbt_build
    from slf_warehouse.settings import Settings

    build = corrupted_copy(
        raw_warehouse,
        tmp_path / "build.duckdb",
        "UPDATE raw.bevillinger SET periode_til = DATE '2000-12-31' WHERE _source_line IN (3, 5)",
    )
    monkeypatch.setenv("SLF_PROJECT_DIR", str(PROJECT))
    monkeypatch.setenv("SLF_WAREHOUSE_PATH", str(build))  # dbt_build sets it; restored after the test
    monkeypatch.chdir(tmp_path)  # dbt's log folder
    settings = Settings.from_env(tmp_path / "landing", tmp_path / "out")
    with pytest.raises(StepFailed) as failed:
        dbt_build(settings, build, target_dir=tmp_path / "target")
    expected = (
        "expression_is_true_stg_budget__allocations_period_end_period_start: bevillinger.csv lines 3, 5"
    )
    assert expected in str(failed.value), str(failed.value)

    # under Airflow the same build runs through Cosmos, whose callbacks get the project folder (with
    # target/run_results.json) and the task, whose env names the warehouse
    from types import SimpleNamespace

    from slf_warehouse.dbt_failures import log_failing_rows

    monkeypatch.delenv("SLF_WAREHOUSE_PATH")
    (tmp_path / "project").mkdir()
    (tmp_path / "target").rename(tmp_path / "project" / "target")
    task = SimpleNamespace(env={"SLF_WAREHOUSE_PATH": str(build)})
    with caplog.at_level("ERROR", logger="slf_warehouse.dbt_failures"):
        assert log_failing_rows(tmp_path / "project", context={"task": task}) == [expected]
    assert f"dbt test failed: {expected}" in caplog.text


def test_a_survey_answer_is_never_quoted(sample_landing: Path, tmp_path: Path) -> None:
    """A survey row is one respondent's answers: a rejection names file, line and column, not the answer."""
    import openpyxl

    workbook = sample_landing / "social_kapital" / "social_kapital_2023.xlsx"
    wb = openpyxl.load_workbook(workbook)
    wb["Besvarelser"].cell(row=9, column=4, value=987654)
    wb.save(workbook)
    report = ingest_source("social_kapital", sample_landing, tmp_path / "wh.duckdb", tmp_path / "quarantine")
    [rejected] = report.rejected
    [error] = rejected.errors
    assert (error.line, error.column, error.value) == (9, "sk2", None)
    assert "expected an answer 0–4" in error.message
    shown = [
        str(error),
        report.summary(),
        *(p.read_text("utf-8") for p in (tmp_path / "quarantine").glob("*.errors.*")),
    ]
    assert not any("987654" in text for text in shown)
