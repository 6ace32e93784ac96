"""Ingestion against the contract: the sample loads whole, re-deliveries replace, bad files are refused."""

from __future__ import annotations

import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from conftest import attached, dk_amount, raw_totals
from slf_warehouse.contract import SOURCES
from slf_warehouse.ingest import ConfigurationError, IngestReport, ingest_landing, ingest_source

BAD = Path(__file__).parent / "data" / "bad"
CASES = json.loads((BAD / "cases.json").read_text(encoding="utf-8"))


def _data_rows(path: Path) -> int:
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        return load_workbook(path, read_only=True)["Besvarelser"].max_row - 1
    return len(path.read_bytes().splitlines()) - 1


def test_sample_loads_every_row_of_every_file(raw_ingest: tuple[Path, IngestReport]) -> None:
    # the whole sample as ingest_landing loaded it into an empty warehouse, once per session
    warehouse, report = raw_ingest
    assert not report.rejected
    assert {f.status for f in report.files} == {"loaded"}
    with attached(warehouse) as con:
        for source in SOURCES:
            files = sorted((warehouse.parent / "landing" / source).iterdir())  # the folder it read
            expected = sum(_data_rows(f) for f in files)
            assert con.execute(f"SELECT count(*) FROM raw.{source}").fetchall()[0][0] == expected, source
        # Lineage: every row says where it came from, with the line a person sees.
        assert con.execute(
            "SELECT _source_file, _source_line FROM raw.bevillinger ORDER BY _source_line LIMIT 1"
        ).fetchall() == [("bevillinger.csv", 2)]
        # Danish letters survive cp1252 (en dash included, which latin-1 would not carry).
        remark = con.execute(
            "SELECT bemaerkning FROM raw.bevillinger WHERE bevilling_id = 'BEV-2022-001'"
        ).fetchall()[0][0]
        assert remark == "Overført fra centralt opsparede midler – Børn og Unge"
        name = con.execute("SELECT enhed_navn FROM raw.enheder WHERE enhed_id = 'DAG-102'").fetchall()[0][0]
        assert name == 'Børnehuset "Spiren", Hasle'
        assert con.execute(
            "SELECT beloeb_kr FROM raw.bevillinger WHERE bevilling_id = 'BEV-2022-001'"
        ).fetchall()[0][0] == Decimal("3492000.00")


def test_payroll_names_and_numbers_never_stored(
    sample_landing_master: Path, tmp_path: Path, one_source_loaded
) -> None:
    # the sample's 30 payroll months as ingest_source loaded them into an empty warehouse
    warehouse = one_source_loaded("loen", tmp_path / "wh.duckdb")
    text = (sample_landing_master / "loen" / "loen_2024-06.csv").read_text("utf-8-sig").splitlines()[1:]
    numbers = {line.split(";")[0] for line in text}
    with attached(warehouse) as con:
        columns = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'loen'"
            ).fetchall()
        ]
        keys = {r[0] for r in con.execute("SELECT DISTINCT medarbejder_key FROM raw.loen").fetchall()}
    assert "navn" not in columns and "medarbejdernr" not in columns
    assert not numbers & keys
    assert all(len(k) == 64 for k in keys)
    raw_bytes = warehouse.read_bytes()
    assert b"Hansen, S\xc3\xb8ren" not in raw_bytes and b"Sonne" not in raw_bytes
    assert not [n for n in numbers if _outside_hex(raw_bytes, n)]


def _outside_hex(raw: bytes, number: str) -> bool:
    """The number, standing alone: the file holds hex strings (pseudonyms, load ids), and a run
    of six digits turns up inside one of those by chance (it failed CI once)."""
    return re.search(rb"(?<![0-9a-f])" + re.escape(number.encode()) + rb"(?![0-9a-f])", raw) is not None


def test_payroll_is_read_only_by_another_process(
    sample_landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB may write stale heap memory into the database file (duckdb#23382), so the process
    that writes the warehouse must never have parsed a payroll file itself."""
    import slf_warehouse.ingest.loading as loading
    from slf_warehouse.contract import SourceSpec
    from slf_warehouse.ingest.reading import StagedFile

    read_here = []
    real_stage_file = loading.stage_file

    def stage_file_here(
        con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path, tmp: Path
    ) -> StagedFile:
        read_here.append(path.name)
        return real_stage_file(con, spec, path, tmp)

    monkeypatch.setattr(loading, "stage_file", stage_file_here)
    report = ingest_source("loen", sample_landing, tmp_path / "wh.duckdb")
    assert read_here == []
    assert len(report.files) == 30 and not report.rejected
    ingest_source("enheder", sample_landing, tmp_path / "wh.duckdb")
    assert read_here == ["enheder.csv"]  # a source without personal data is read in process


def test_a_failure_in_the_reading_process_names_the_file(sample_landing: Path, tmp_path: Path) -> None:
    from slf_warehouse.ingest.apart import PersonalDataReader

    path = sample_landing / "loen" / "loen_2024-06.csv"
    with PersonalDataReader(1) as reader:
        with pytest.raises(RuntimeError, match=r"(?s)loen_2024-06.csv.*pseudonymisation key is needed"):
            reader.prepare("loen", path, tmp_path, None)
        # the child survives an error and reads the next file
        prepared = reader.prepare("loen", path, tmp_path, b"test-only-key-0f1e2d3c4b5a6978")
    assert prepared.rows == _data_rows(path) and not prepared.issues
    assert duckdb.sql(f"SELECT count(*) FROM '{prepared.parquet}'").fetchall() == [(prepared.rows,)]


@pytest.mark.airflow  # without the variable in the environment the key is looked up as an Airflow Variable
def test_missing_key_stops_payroll_load(
    sample_landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLF_PSEUDONYM_KEY")
    with pytest.raises(ConfigurationError, match="SLF_PSEUDONYM_KEY"):
        ingest_source("loen", sample_landing, tmp_path / "wh.duckdb")
    assert len(list((sample_landing / "loen").iterdir())) == 30  # nothing moved, nothing loaded


def test_loading_twice_changes_nothing(sample_landing: Path, tmp_path: Path, raw_warehouse: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    shutil.copy2(raw_warehouse, warehouse)  # the sample as ingest_landing loaded it, once per session
    before = raw_totals(warehouse)
    again = ingest_landing(sample_landing, warehouse)
    assert {f.status for f in again.files} == {"skipped-duplicate"}
    assert raw_totals(warehouse) == before


def test_corrected_month_replaces_it(sample_landing: Path, tmp_path: Path, raw_warehouse: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    shutil.copy2(raw_warehouse, warehouse)  # the sample as ingest_landing loaded it, once per session
    before = raw_totals(warehouse)
    month = sample_landing / "posteringer" / "posteringer_2023-03.csv"
    lines = month.read_bytes().decode("cp1252").splitlines(keepends=True)
    fields = lines[5].split(";")
    old = dk_amount(fields[9])
    fields[9] = "1.000,00"
    lines[5] = ";".join(fields)
    month.write_bytes("".join(lines).encode("cp1252"))

    report = ingest_source("posteringer", sample_landing, warehouse)
    statuses = {f.file_name: f.status for f in report.files}
    assert statuses["posteringer_2023-03.csv"] == "loaded"
    assert set(statuses.values()) == {"loaded", "skipped-duplicate"}
    after = raw_totals(warehouse)
    assert after["posteringer"][0] == before["posteringer"][0]
    assert after["posteringer"][1] - before["posteringer"][1] == Decimal("1000.00") - old
    with attached(warehouse) as con:
        replaced = con.execute(
            "SELECT count(*) FROM audit.load_manifest WHERE file_name = ? AND status = 'replaced'",
            [month.name],
        ).fetchall()[0][0]
    assert replaced == 1


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_bad_file_is_rejected_whole(case: dict, landing_with, tmp_path: Path, one_source_loaded) -> None:
    warehouse = tmp_path / "wh.duckdb"
    source = case["source"]
    one_source_loaded(source, warehouse)
    before = raw_totals(warehouse)
    # the source's other files would be skipped as loaded already: they play no part here
    sample_landing = landing_with({source: []})

    bad = BAD / case["case"] / source / case["file"]
    shutil.copyfile(bad, sample_landing / source / case["file"])
    quarantine = tmp_path / "quarantine"
    report = ingest_source(source, sample_landing, warehouse, quarantine)

    rejected = report.rejected
    assert [f.file_name for f in rejected] == [case["file"]]
    errors = rejected[0].errors
    assert any(
        case["message"] in e.message
        and e.line == case["line"]
        and e.column == case["column"]
        and e.file == case["file"]
        for e in errors
    ), [str(e) for e in errors]
    assert raw_totals(warehouse) == before
    assert not (sample_landing / source / case["file"]).exists()
    assert (quarantine / case["file"]).exists()
    written = json.loads((quarantine / f"{case['file']}.errors.json").read_text(encoding="utf-8"))
    assert written["errors"] and written["file"] == case["file"]


def _big_month(sample_landing: Path, lines_wanted: int) -> tuple[Path, list[str], Decimal]:
    """The sample's March 2023 ledger repeated to `lines_wanted` data lines (a month at Børn og
    Unge's scale), with a blank line in the middle; returns (file, data lines, their sum)."""
    month = sample_landing / "posteringer" / "posteringer_2023-03.csv"
    header, *rows = month.read_bytes().decode("cp1252").splitlines(keepends=True)
    data = (rows * (lines_wanted // len(rows) + 1))[:lines_wanted]
    total = sum(dk_amount(r.split(";")[9]) for r in data)
    middle = len(data) // 2
    month.write_bytes((header + "".join(data[:middle]) + "\r\n" + "".join(data[middle:])).encode("cp1252"))
    return month, data, total


def test_a_month_of_several_row_groups_keeps_every_line(landing_with, tmp_path: Path) -> None:
    """Months this big are written in whole row groups as the insert runs (LOAD_ROW_GROUP_SIZE), not
    through the WAL: every line, its number and its amount must still arrive, once."""
    from slf_warehouse.ingest.loading import LOAD_ROW_GROUP_SIZE

    sample_landing = landing_with(
        {"posteringer": ["posteringer_2023-03.csv"]}
    )  # the month alone: its row groups are all the table has
    month, data, total = _big_month(sample_landing, 3 * LOAD_ROW_GROUP_SIZE + 1_000)
    warehouse = tmp_path / "wh.duckdb"
    report = ingest_source("posteringer", sample_landing, warehouse)
    assert not report.rejected
    middle = len(data) // 2
    # line 1 is the header and line middle + 2 the blank one
    expected_lines = [*range(2, middle + 2), *range(middle + 3, len(data) + 3)]
    with attached(warehouse) as con:
        count, amount, lines = con.execute(
            "SELECT count(*), sum(beloeb), list(_source_line ORDER BY _source_line) FROM raw.posteringer "
            "WHERE _source_file = ?",
            [month.name],
        ).fetchall()[0]
        # the first line after the blank one, on the line number a person sees
        first = con.execute(
            "SELECT bilagsnr FROM raw.posteringer WHERE _source_file = ? AND _source_line = ?",
            [month.name, middle + 3],
        ).fetchall()[0][0]
        groups = con.execute(
            "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('raw.posteringer')"
        ).fetchall()[0][0]
    assert (count, amount, lines) == (len(data), total, expected_lines)
    assert first == data[middle].split(";")[0]
    assert groups >= 4


def test_a_bad_last_line_of_a_big_month_is_named_and_nothing_loads(
    sample_landing: Path, tmp_path: Path, one_source_loaded
) -> None:
    """With the other months in the folder too (skipped as loaded already), the month is read by one
    of the parallel loaders' threads: a rejection there is handled as in the single-file path."""
    from slf_warehouse.ingest.loading import LOAD_ROW_GROUP_SIZE

    warehouse = tmp_path / "wh.duckdb"
    one_source_loaded("posteringer", warehouse)
    before = raw_totals(warehouse)
    month, data, _ = _big_month(sample_landing, 2 * LOAD_ROW_GROUP_SIZE + 10)
    text = month.read_bytes().decode("cp1252").rstrip("\r\n").rsplit("\n", 1)
    fields = text[1].split(";")
    fields[9] = "12,34,56"
    month.write_bytes((text[0] + "\n" + ";".join(fields) + "\r\n").encode("cp1252"))

    report = ingest_source("posteringer", sample_landing, warehouse, tmp_path / "quarantine")
    [error] = report.rejected[0].errors
    assert (error.file, error.line, error.column, error.value) == (
        month.name,
        len(data) + 2,
        "beloeb",
        "12,34,56",
    )
    assert raw_totals(warehouse) == before


def test_blank_lines_are_skipped_and_later_lines_keep_their_numbers(landing_with, tmp_path: Path) -> None:
    """A blank line is found only when DuckDB reads fewer rows than the file has lines; the error
    after it must still name the line a person sees in an editor."""
    sample_landing = landing_with({"posteringer": ["posteringer_2023-03.csv"]})
    month = sample_landing / "posteringer" / "posteringer_2023-03.csv"
    header, *rows = month.read_bytes().decode("cp1252").splitlines(keepends=True)
    fields = rows[6].split(";")
    fields[9] = "not a number"
    rows[6] = ";".join(fields)
    # blank lines at file lines 4 and 7 and at the end, so rows[6] ends up on line 10
    month.write_bytes(
        (
            header + "".join(rows[:2]) + "\r\n" + "".join(rows[2:4]) + "\r\n" + "".join(rows[4:]) + "\r\n"
        ).encode("cp1252")
    )
    report = ingest_source("posteringer", sample_landing, tmp_path / "wh.duckdb", tmp_path / "quarantine")
    [rejected] = report.rejected
    assert [(e.line, e.column, e.value) for e in rejected.errors] == [(10, "beloeb", "not a number")]
    [warning] = [i for i in rejected.issues if i.severity == "warning"]
    assert (warning.line, warning.message) == (4, "3 blank line(s) skipped")


def test_a_file_whose_lines_end_both_ways_loads_with_its_line_numbers(landing_with, tmp_path: Path) -> None:
    """The contract lets lines end with CRLF or LF; a file edited in two editors has both, and
    DuckDB's reader alone refuses that without a line number."""
    sample_landing = landing_with({"posteringer": ["posteringer_2023-03.csv"]})
    month = sample_landing / "posteringer" / "posteringer_2023-03.csv"
    header, *rows = month.read_bytes().decode("cp1252").splitlines()
    fields = rows[5].split(";")
    fields[9] = "not a number"
    rows[5] = ";".join(fields)

    def both_ways(rows: list[str]) -> bytes:
        """CRLF, except line 3 (ends with a bare LF), the blank line 4 (LF) and LF from line 8 on:
        rows[5] is on line 8."""
        return (
            header
            + "\r\n"
            + rows[0]
            + "\r\n"
            + rows[1]
            + "\n\n"
            + "\r\n".join(rows[2:5])
            + "\r\n"
            + "\n".join(rows[5:])
            + "\n"
        ).encode("cp1252")

    month.write_bytes(both_ways(rows))
    report = ingest_source("posteringer", sample_landing, tmp_path / "wh.duckdb", tmp_path / "quarantine")
    [rejected] = report.rejected
    assert [(e.line, e.column, e.value) for e in rejected.errors] == [(8, "beloeb", "not a number")]

    rows[5] = rows[4]  # mended: the same mix of line endings loads whole
    month.write_bytes(both_ways(rows))  # back from quarantine, into the landing folder
    report = ingest_source("posteringer", sample_landing, tmp_path / "wh.duckdb", tmp_path / "quarantine")
    [loaded] = [f for f in report.files if f.file_name == month.name]
    assert (loaded.status, loaded.rows) == ("loaded", len(rows))
    assert any("lines end both with CRLF" in i.message for i in loaded.issues)
    with attached(tmp_path / "wh.duckdb") as con:
        lines = con.execute(
            "SELECT list(_source_line ORDER BY _source_line) FROM raw.posteringer WHERE _source_file = ?",
            [month.name],
        ).fetchall()[0][0]
    assert lines == [2, 3, *range(5, len(rows) + 3)]


def test_an_lf_file_with_one_crlf_line_loads(sample_landing: Path, tmp_path: Path) -> None:
    units = sample_landing / "enheder" / "enheder.csv"
    lines = units.read_bytes().split(b"\n")
    assert b"\r" not in units.read_bytes()
    units.write_bytes(b"\n".join(lines[:3]) + b"\r\n" + b"\n".join(lines[3:]))
    report = ingest_source("enheder", sample_landing, tmp_path / "wh.duckdb")
    assert not report.rejected and report.files[0].rows == len([x for x in lines[1:] if x])


def test_a_carriage_return_inside_a_line_is_named(sample_landing: Path, tmp_path: Path) -> None:
    units = sample_landing / "enheder" / "enheder.csv"
    lines = units.read_bytes().split(b"\n")
    lines[4] = lines[4].replace(b",", b"\r,", 1)
    units.write_bytes(b"\n".join(lines))
    report = ingest_source("enheder", sample_landing, tmp_path / "wh.duckdb", tmp_path / "quarantine")
    [error] = report.rejected[0].errors
    assert error.line == 5 and "carriage return (CR)" in error.message


def test_a_reading_process_that_dies_is_named_and_replaced(sample_landing: Path, tmp_path: Path) -> None:
    from slf_warehouse.ingest.apart import PersonalDataReader

    path = sample_landing / "loen" / "loen_2024-06.csv"
    key = b"test-only-key-0f1e2d3c4b5a6978"
    with PersonalDataReader(1) as reader:
        reader.prepare("loen", path, tmp_path, key)
        [child] = reader._started
        child.kill()
        child.wait()
        with pytest.raises(RuntimeError, match=r"reading loen_2024-06.csv \(loen\) ended with exit code -9"):
            reader.prepare("loen", path, tmp_path, key)
        # the dead one does not hold the only place: the next file gets a new process
        assert reader.prepare("loen", path, tmp_path, key).rows == _data_rows(path)


def test_what_staging_made_is_dropped_by_name(landing_with, tmp_path: Path) -> None:
    """drop_staged drops staging's objects by their names, without asking the catalog: a CSV file
    with a blank line (a view over two tables) and a workbook (a view over one) leave nothing."""
    from slf_warehouse.ingest.reading import drop_staged, stage_file

    landing = landing_with(
        {"posteringer": ["posteringer_2023-03.csv"], "social_kapital": ["social_kapital_2023.xlsx"]}
    )
    month = landing / "posteringer" / "posteringer_2023-03.csv"
    header, *rows = month.read_bytes().splitlines(keepends=True)
    month.write_bytes(header + b"".join(rows[:2]) + b"\r\n" + b"".join(rows[2:]))

    def temporary(con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
        return set(
            con.execute(
                "SELECT 'view', view_name FROM duckdb_views() WHERE temporary AND NOT internal UNION ALL "
                "SELECT 'table', table_name FROM duckdb_tables() WHERE temporary AND NOT internal"
            ).fetchall()
        )

    made = {}
    with duckdb.connect() as con:
        for path in (month, landing / "social_kapital" / "social_kapital_2023.xlsx"):
            staged = stage_file(con, SOURCES[path.parent.name], path, tmp_path)
            made[path.parent.name] = temporary(con)
            drop_staged(con, staged.table)
            assert temporary(con) == set(), path.name
    assert made == {
        "posteringer": {
            ("view", "stage_posteringer"),
            ("table", "stage_posteringer_read"),
            ("table", "stage_posteringer_lines"),
        },
        "social_kapital": {("view", "stage_social_kapital"), ("table", "stage_social_kapital_read")},
    }
