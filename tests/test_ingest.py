"""Ingestion against the contract: the sample loads whole, re-deliveries replace, bad files are refused."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from conftest import raw_totals
from slf_warehouse.contract import SOURCES
from slf_warehouse.ingest import ConfigurationError, ingest_landing, ingest_source

BAD = Path(__file__).parent / "data" / "bad"
CASES = json.loads((BAD / "cases.json").read_text(encoding="utf-8"))


def _data_rows(path: Path) -> int:
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        return load_workbook(path, read_only=True)["Besvarelser"].max_row - 1
    return len(path.read_bytes().splitlines()) - 1


def test_sample_loads_every_row_of_every_file(sample_landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    report = ingest_landing(sample_landing, warehouse)
    assert not report.rejected
    assert {f.status for f in report.files} == {"loaded"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for source in SOURCES:
            files = sorted((sample_landing / source).iterdir())
            expected = sum(_data_rows(f) for f in files)
            assert con.execute(f"SELECT count(*) FROM raw.{source}").fetchall()[0][0] == expected, source
        # Lineage: every row says where it came from, with the line a person sees.
        assert con.execute("SELECT _source_file, _source_line FROM raw.bevillinger ORDER BY _source_line "
                           "LIMIT 1").fetchall() == [("bevillinger.csv", 2)]
        # Danish letters survive cp1252 (en dash included, which latin-1 would not carry).
        remark = con.execute("SELECT bemaerkning FROM raw.bevillinger WHERE bevilling_id = 'BEV-2022-001'"
                             ).fetchall()[0][0]
        assert remark == "Overført fra centralt opsparede midler – Børn og Unge"
        name = con.execute("SELECT enhed_navn FROM raw.enheder WHERE enhed_id = 'DAG-102'").fetchall()[0][0]
        assert name == 'Børnehuset "Spiren", Hasle'
        assert con.execute("SELECT beloeb_kr FROM raw.bevillinger WHERE bevilling_id = 'BEV-2022-001'"
                           ).fetchall()[0][0] == Decimal("3492000.00")


def test_payroll_names_and_numbers_never_stored(sample_landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    ingest_source("loen", sample_landing, warehouse)
    text = (sample_landing / "loen" / "loen_2024-06.csv").read_text("utf-8-sig").splitlines()[1:]
    numbers = {line.split(";")[0] for line in text}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = 'loen'").fetchall()]
        keys = {r[0] for r in con.execute("SELECT DISTINCT medarbejder_key FROM raw.loen").fetchall()}
    assert "navn" not in columns and "medarbejdernr" not in columns
    assert not numbers & keys
    assert all(len(k) == 64 for k in keys)
    raw_bytes = warehouse.read_bytes()
    assert b"Hansen, S\xc3\xb8ren" not in raw_bytes and b"Sonne" not in raw_bytes
    assert not any(n.encode() in raw_bytes for n in numbers)


def test_missing_key_stops_payroll_load(sample_landing: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLF_PSEUDONYM_KEY")
    with pytest.raises(ConfigurationError, match="SLF_PSEUDONYM_KEY"):
        ingest_source("loen", sample_landing, tmp_path / "wh.duckdb")
    assert len(list((sample_landing / "loen").iterdir())) == 30  # nothing moved, nothing loaded


def test_loading_twice_changes_nothing(sample_landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    ingest_landing(sample_landing, warehouse)
    before = raw_totals(warehouse)
    again = ingest_landing(sample_landing, warehouse)
    assert {f.status for f in again.files} == {"skipped-duplicate"}
    assert raw_totals(warehouse) == before


def test_corrected_month_replaces_it(sample_landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    ingest_landing(sample_landing, warehouse)
    before = raw_totals(warehouse)
    month = sample_landing / "posteringer" / "posteringer_2023-03.csv"
    lines = month.read_bytes().decode("cp1252").splitlines(keepends=True)
    fields = lines[5].split(";")
    old = Decimal(fields[9].replace(".", "").replace(",", "."))
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
    with duckdb.connect(str(warehouse), read_only=True) as con:
        replaced = con.execute("SELECT count(*) FROM audit.load_manifest WHERE file_name = ? AND status = "
                               "'replaced'", [month.name]).fetchall()[0][0]
    assert replaced == 1


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_bad_file_is_rejected_whole(case: dict, sample_landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    source = case["source"]
    ingest_source(source, sample_landing, warehouse)
    before = raw_totals(warehouse)

    bad = BAD / case["case"] / source / case["file"]
    shutil.copyfile(bad, sample_landing / source / case["file"])
    quarantine = tmp_path / "quarantine"
    report = ingest_source(source, sample_landing, warehouse, quarantine)

    rejected = report.rejected
    assert [f.file_name for f in rejected] == [case["file"]]
    errors = rejected[0].errors
    assert any(case["message"] in e.message and e.line == case["line"] and e.column == case["column"]
               and e.file == case["file"] for e in errors), [str(e) for e in errors]
    assert raw_totals(warehouse) == before
    assert not (sample_landing / source / case["file"]).exists()
    assert (quarantine / case["file"]).exists()
    written = json.loads((quarantine / f"{case['file']}.errors.json").read_text(encoding="utf-8"))
    assert written["errors"] and written["file"] == case["file"]
