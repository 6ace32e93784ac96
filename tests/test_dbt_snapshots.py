"""Snapshots: two deliveries, two `dbt build`s, and the history answers "who was employed on day X".

Delivery 1 is the sample data up to May 2024 (June's payroll and ledger held back). Delivery 2 adds
June, in which one learning partner changes fte, one leaves and a new person starts (with the
leaver's pay, so the ledger still reconciles with payroll), and the organisation register renames a
school. Both builds are full `dbt build`s that must pass; then the snapshots must hold the history.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
DBT_PROJECT = PROJECT / "dbt_project"
MAY, JUNE = date(2024, 5, 1), date(2024, 6, 1)
NEW_FTE = "0,9000"
NEW_PERSON = "999001"

EMPLOYED_AT = """
    select employee_key, role, fte
    from snapshots.snp_staff_roster
    where is_employed
      and dbt_valid_from <= cast(? as timestamp)
      and (dbt_valid_to is null or dbt_valid_to > cast(? as timestamp))
"""


def dbt(work: Path, warehouse: Path, *args: str) -> dict:
    dbt_exe = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [
            str(dbt_exe) if dbt_exe.exists() else "dbt",
            *args,
            "--project-dir",
            str(DBT_PROJECT),
            "--profiles-dir",
            str(DBT_PROJECT),
            "--target",
            "duckdb",
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={
            **os.environ,
            "SLF_WAREHOUSE_PATH": str(warehouse),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_USE_COLORS": "false",
        },
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return json.loads((work / "target" / "run_results.json").read_text())


def read_semicolon_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=";"))
    return rows[0], rows[1:]


def write_semicolon_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows([header, *rows])
    path.write_text(buffer.getvalue(), encoding="utf-8-sig")


@dataclass(frozen=True)
class History:
    warehouse: Path
    changed: str  # employee key of the learning partner whose fte changes in June
    left: str  # ... who is not paid in June
    joined: str  # ... who is paid for the first time in June
    old_fte: Decimal
    renamed_unit: str
    new_unit_name: str
    roster_rows_after_first: int
    units_rows_after_first: int


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    from slf_warehouse.ingest import ingest_landing
    from slf_warehouse.ingest.pseudonym import pseudonym_key, pseudonymise
    from slf_warehouse.sample_data import write_sample_data

    work = tmp_path_factory.mktemp("snapshots")
    landing, warehouse, held = work / "landing", work / "warehouse.duckdb", work / "held"
    write_sample_data(landing)
    held.mkdir()
    for source in ("loen", "posteringer"):
        shutil.move(landing / source / f"{source}_2024-06.csv", held / f"{source}_2024-06.csv")

    # delivery 1: up to May
    report = ingest_landing(landing, warehouse, quarantine_root=work / "quarantine")
    assert not report.rejected, report.summary()
    dbt(work, warehouse, "build")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        roster_rows = con.execute("select count(*) from snapshots.snp_staff_roster").fetchall()[0][0]
        units_rows = con.execute("select count(*) from snapshots.snp_units").fetchall()[0][0]

    # delivery 2: June, with a changed fte, a leaver and a newcomer; a school renamed
    header, rows = read_semicolon_csv(held / "loen_2024-06.csv")
    col = {name: i for i, name in enumerate(header)}
    partners = sorted(
        {
            r[col["medarbejdernr"]]
            for r in rows
            if r[col["rolle"]] == "laeringspartner" and r[col["beskaeftigelsesgrad"]] != NEW_FTE
        }
    )
    changed, left = partners[0], partners[1]
    old_fte = Decimal(
        next(r[col["beskaeftigelsesgrad"]] for r in rows if r[col["medarbejdernr"]] == changed).replace(
            ",", "."
        )
    )
    june = []
    for row in rows:
        if row[col["medarbejdernr"]] == changed:
            row[col["beskaeftigelsesgrad"]] = NEW_FTE
        if row[col["medarbejdernr"]] == left:  # the newcomer takes over the leaver's post and pay
            row[col["medarbejdernr"]], row[col["navn"]] = NEW_PERSON, "Ny Medarbejder"
        june.append(row)
    write_semicolon_csv(landing / "loen" / "loen_2024-06.csv", header, june)
    shutil.move(held / "posteringer_2024-06.csv", landing / "posteringer" / "posteringer_2024-06.csv")

    units_file = landing / "enheder" / "enheder.csv"
    units = list(csv.reader(io.StringIO(units_file.read_text(encoding="utf-8"))))  # as delivered: utf-8, LF
    unit_col = {name: i for i, name in enumerate(units[0])}
    school = next(r for r in units[1:] if r[unit_col["enhedstype"]] == "skole")
    school[unit_col["enhed_navn"]] += " (omdøbt)"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(units)
    units_file.write_text(buffer.getvalue(), encoding="utf-8")

    report = ingest_landing(landing, warehouse, quarantine_root=work / "quarantine")
    assert not report.rejected, report.summary()
    dbt(work, warehouse, "build")

    keys = dict(pseudonymise([changed, left, NEW_PERSON], pseudonym_key()))
    return History(
        warehouse,
        keys[changed],
        keys[left],
        keys[NEW_PERSON],
        old_fte,
        school[unit_col["enhed_id"]],
        school[unit_col["enhed_navn"]],
        roster_rows,
        units_rows,
    )


def query(history: History, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(history.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def employed_at(history: History, day: date) -> dict[str, tuple[str, Decimal]]:
    return {key: (role, fte) for key, role, fte in query(history, EMPLOYED_AT, [day, day])}


def paid_in(history: History, month: date) -> set[str]:
    return {
        r[0]
        for r in query(history, "select employee_key from marts.fct_payroll where payroll_month = ?", [month])
    }


def test_who_was_employed_in_may(history: History) -> None:
    may = employed_at(history, date(2024, 5, 15))
    assert set(may) == paid_in(history, MAY)
    assert history.left in may and history.joined not in may
    assert may[history.changed][1] == history.old_fte


def test_who_was_employed_in_june(history: History) -> None:
    june = employed_at(history, date(2024, 6, 15))
    assert set(june) == paid_in(history, JUNE)
    assert history.left not in june and history.joined in june
    assert june[history.changed] == ("laeringspartner", Decimal("0.9"))
    # the first of the month belongs to the new versions
    assert employed_at(history, JUNE) == june


def test_versions_of_the_changed_people(history: History) -> None:
    def versions(key: str) -> list[tuple]:
        return query(
            history,
            """
            select fte, is_employed, cast(dbt_valid_from as date), cast(dbt_valid_to as date)
            from snapshots.snp_staff_roster where employee_key = ? order by dbt_valid_from""",
            [key],
        )

    changed = versions(history.changed)
    assert [(v[0], v[1]) for v in changed] == [(history.old_fte, True), (Decimal("0.9"), True)]
    assert changed[0][3] == changed[1][2] == JUNE and changed[1][3] is None
    left = versions(history.left)
    assert [v[1] for v in left] == [True, False]
    assert left[0][3] == left[1][2] == JUNE and left[1][3] is None
    assert versions(history.joined) == [(left[0][0], True, JUNE, None)]
    # nobody else got a new version: three rows more than after the first build
    total, current = query(
        history,
        "select count(*), count(*) filter (where dbt_valid_to is null) from snapshots.snp_staff_roster",
    )[0]
    assert total == history.roster_rows_after_first + 3
    assert current == history.roster_rows_after_first + 1


def test_units_history(history: History) -> None:
    rows = query(
        history,
        """select unit_name, dbt_valid_from, dbt_valid_to from snapshots.snp_units
                             where unit_id = ? order by dbt_valid_from""",
        [history.renamed_unit],
    )
    assert len(rows) == 2
    (old_name, _, closed), (new_name, opened, still) = rows
    assert new_name == history.new_unit_name and old_name != new_name
    assert closed == opened and still is None
    total, current = query(
        history, "select count(*), count(*) filter (where dbt_valid_to is null) from snapshots.snp_units"
    )[0]
    assert (total, current) == (history.units_rows_after_first + 1, history.units_rows_after_first)
    assert current == query(history, "select count(*) from marts.dim_units")[0][0]


def test_a_rerun_without_news_adds_no_version(history: History, tmp_path: Path) -> None:
    copy = tmp_path / "rerun.duckdb"
    shutil.copy(history.warehouse, copy)
    count = (
        "select (select count(*) from snapshots.snp_staff_roster), (select count(*) from snapshots.snp_units)"
    )
    with duckdb.connect(str(copy), read_only=True) as con:
        before = con.execute(count).fetchall()
    dbt(tmp_path, copy, "snapshot")
    with duckdb.connect(str(copy), read_only=True) as con:
        assert con.execute(count).fetchall() == before
