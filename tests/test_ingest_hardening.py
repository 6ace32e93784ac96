"""What arrives in the landing folder cannot leak personal data, read outside it, or crash the load
without naming the file, line and column (issue 14, points 3 and 4)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import duckdb
import pytest

from conftest import raw_totals
from slf_warehouse.ingest import IngestFailed, ingest_source

PAYROLL = "loen_2024-06.csv"


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
def test_a_scrambled_payroll_is_rejected_without_quoting_it(scramble: str, sample_landing: Path, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
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
    with duckdb.connect(str(warehouse), read_only=True) as con:
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


def test_a_quarantined_payroll_and_its_reports_are_the_service_users_only(sample_landing: Path,
                                                                          tmp_path: Path) -> None:
    header, rows = _payroll_rows(sample_landing)
    _write_payroll(sample_landing, _swap(header, "navn", "rolle"), rows)
    quarantine = tmp_path / "quarantine" / "loen"
    ingest_source("loen", sample_landing, tmp_path / "wh.duckdb", quarantine)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in quarantine.iterdir()}
    assert modes == {PAYROLL: 0o600, f"{PAYROLL}.errors.json": 0o600, f"{PAYROLL}.errors.txt": 0o600}
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o700


def test_a_failure_in_the_reading_process_does_not_quote_the_file(sample_landing: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An error nobody foresaw (here: DuckDB refusing a value) reaches the parent's log as where it
    happened and its type, without the message that quotes the row."""
    from slf_warehouse.ingest.apart import _failure_report

    try:
        duckdb.sql("SELECT 'Søren Jensen'::INTEGER").fetchall()
    except duckdb.Error as e:
        report = _failure_report(e)
    assert "Søren" not in report and "ConversionException" in report and "withheld" in report
