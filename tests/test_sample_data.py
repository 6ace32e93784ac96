"""The sample data is deterministic and written exactly in the sources' own formats."""

from __future__ import annotations

import hashlib
from pathlib import Path

from slf_warehouse.sample_data import write_sample_data


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_bytes_every_time(sample_landing_master: Path, tmp_path: Path) -> None:
    write_sample_data(tmp_path)
    assert _digests(tmp_path) == _digests(sample_landing_master)


def test_formats_follow_the_contract(sample_landing_master: Path) -> None:
    root = sample_landing_master
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["enheder", "bevillinger", "posteringer", "loen", "social_kapital", "aktiviteter"]
    )
    bevillinger = (root / "bevillinger" / "bevillinger.csv").read_bytes()
    assert "–".encode("cp1252") in bevillinger and "ø".encode("cp1252") in bevillinger  # Windows-1252
    assert b"\r\n" in bevillinger and b";" in bevillinger.splitlines()[0]
    assert "3.492.000,00" in bevillinger.decode("cp1252")  # decimal comma with thousands points
    loen = (root / "loen" / "loen_2024-06.csv").read_bytes()
    assert loen.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    assert '"Hansen, Søren ""Sønne"""'.encode() in loen  # a name with a comma and quotes
    enheder = (root / "enheder" / "enheder.csv").read_bytes()
    assert b"\r\n" not in enheder and enheder.decode("utf-8").startswith("enhed_id,enhed_navn,")
    assert len(list((root / "posteringer").glob("posteringer_20??-??.csv"))) == 30
    posteringer = (root / "posteringer" / "posteringer_2023-03.csv").read_bytes().decode("cp1252")
    assert ";DRIFT;" in posteringer and ";SLF;" in posteringer  # postings outside the programme too
    from openpyxl import load_workbook

    sheet = load_workbook(root / "social_kapital" / "social_kapital_2023.xlsx", read_only=True)["Besvarelser"]
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header == ["enhed_id", "aar", "sk1", "sk2", "sk3", "sk4", "slf1", "slf2", "slf3", "slf4"]
