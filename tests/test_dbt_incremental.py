"""Incremental dbt: a new month (and a corrected old one) built incrementally gives exactly what a
full rebuild of the same raw data gives.

Real ingestion, real `dbt build` on DuckDB files: the sample without its last ledger and payroll
month is built, then the month arrives together with a correction of the first ledger month, and
the incremental build is compared table by table with `dbt build --full-refresh` of a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from slf_warehouse.ingest import ingest_landing

PROJECT = Path(__file__).resolve().parents[1]
DBT_PROJECT = PROJECT / "dbt_project"
INCREMENTAL_MODELS = ("int_postings_classified", "int_payroll_person_month")

pytestmark = pytest.mark.slow


def _dbt_build(warehouse: Path, target: Path, *extra: str) -> dict[str, dict]:
    env = {**os.environ, "SLF_WAREHOUSE_PATH": str(warehouse)}
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "build",
            "--project-dir",
            str(DBT_PROJECT),
            "--profiles-dir",
            str(DBT_PROJECT),
            "--target-path",
            str(target),
            "--log-path",
            str(target / "logs"),
            *extra,
        ],
        cwd=DBT_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"dbt build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r for r in results}


def _correct_one_amount(path: Path) -> None:
    """Re-deliver a ledger month with one ordinary operations line's amount changed (Windows-1252)."""
    lines = path.read_bytes().split(b"\r\n" if b"\r\n" in path.read_bytes() else b"\n")
    for i, line in enumerate(lines[1:], start=1):
        fields = line.split(b";")
        if len(fields) > 9 and fields[6] == b"DRIFT":
            fields[9] = b"1.234.567,89"
            lines[i] = b";".join(fields)
            break
    else:
        raise AssertionError(f"no DRIFT line in {path.name}")
    newline = b"\r\n" if b"\r\n" in path.read_bytes() else b"\n"
    path.write_bytes(newline.join(lines))


def _tables(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...]) -> list[str]:
    rows = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE schema_name IN "
        f"({', '.join('?' * len(schemas))}) ORDER BY 1",
        list(schemas),
    ).fetchall()
    return [r[0] for r in rows]


def test_new_month_built_incrementally_equals_a_full_rebuild(
    sample_landing_master: Path, tmp_path: Path
) -> None:
    landing, later = tmp_path / "landing", tmp_path / "later"
    shutil.copytree(sample_landing_master, landing)
    last_ledger = sorted((landing / "posteringer").glob("*.csv"))[-1]
    last_payroll = sorted((landing / "loen").glob("*.csv"))[-1]
    first_ledger = sorted((landing / "posteringer").glob("*.csv"))[0]
    for f in (last_ledger, last_payroll):
        (later / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.move(f, later / f.parent.name / f.name)

    warehouse = tmp_path / "incremental.duckdb"
    assert not ingest_landing(landing, warehouse).rejected
    _dbt_build(warehouse, tmp_path / "target-1")

    # The next delivery: a new month for ledger and payroll, and a corrected first ledger month.
    for f in (last_ledger, last_payroll):
        shutil.move(later / f.parent.name / f.name, f)
    _correct_one_amount(first_ledger)
    report = ingest_landing(landing, warehouse)
    loaded = sorted(f.file_name for f in report.files if f.status == "loaded")
    assert loaded == sorted([last_ledger.name, last_payroll.name, first_ledger.name])

    incremental = _dbt_build(warehouse, tmp_path / "target-2")
    for model in INCREMENTAL_MODELS:
        # the incremental branch ran: only loads the table had not seen were read
        assert "load_id not in" in incremental[model]["compiled_code"], model

    full = tmp_path / "full.duckdb"
    shutil.copyfile(warehouse, full)
    _dbt_build(full, tmp_path / "target-3", "--full-refresh")

    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(f"ATTACH '{full}' AS full_build (READ_ONLY)")
        tables = _tables(con, ("intermediate", "marts"))
        assert any(t.endswith(".int_postings_classified") for t in tables), tables
        for table in tables:
            for a, b in ((table, f"full_build.{table}"), (f"full_build.{table}", table)):
                differing = con.execute(
                    f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})"
                ).fetchall()[0][0]
                assert differing == 0, f"{a} has {differing} row(s) that {b} has not"
        # and the corrected month's amount replaced the old one rather than adding to it
        raw_total, classified_total = con.execute(
            "SELECT (SELECT sum(beloeb) FROM raw.posteringer), "
            "(SELECT sum(amount_dkk) FROM "
            + next(t for t in tables if t.endswith(".int_postings_classified"))
            + ")"
        ).fetchall()[0]
        assert raw_total == classified_total
