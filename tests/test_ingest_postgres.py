"""Ingestion into PostgreSQL (ingest.targets.PostgresTarget): the same files, the same checks and
errors as into the DuckDB file, the rows written with COPY in one transaction with the manifest row.

One throw-away PostgreSQL server for the module (tests/pg_server.py), a fresh database per test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg2
import psycopg2.errors
import pytest

from conftest import RAW_TOTALS, dk_amount, raw_totals
from pg_server import PgServer, pg_server_fixture  # noqa: F401 - registers the `pg_server` fixture
from postgres_server import PG_BIN
from slf_warehouse.ingest import PostgresTarget, ingest_landing, ingest_source
from slf_warehouse.pg_types import pg_type

MANIFEST = (
    "SELECT source, file_name, period, sha256, size_bytes, rows, status, error, warnings "
    "FROM audit.load_manifest ORDER BY source, file_name, status"
)
# NULL and empty string kept apart, dates and the lineage columns, besides the money
DETAILS = [
    "SELECT count(*), count(tekst), count(projekt), count(aktivitet_id), min(bogfoeringsdato), "
    "sum(_source_line), count(DISTINCT _period) FROM raw.posteringer",
    "SELECT count(*), sum(beskaeftigelsesgrad), count(DISTINCT medarbejder_key), min(loenperiode) "
    "FROM raw.loen",
    "SELECT count(*), count(aktiv_til), min(aktiv_fra) FROM raw.enheder",
    "SELECT count(*), count(sk1), count(slf4), sum(sk2) FROM raw.social_kapital",
    "SELECT count(*), count(bemaerkning), max(periode_til) FROM raw.bevillinger",
]


@pytest.fixture()
def pg(pg_server: PgServer) -> PgServer:  # noqa: F811 - the fixture above
    """A database of its own for the test, on the module's server."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    pg_server.execute(f"CREATE DATABASE {database}")
    return PgServer(pg_server.host, pg_server.port, pg_server.user, pg_server.password, database)


def query(server: PgServer, sql: str, params: tuple = ()) -> list[tuple]:
    con = psycopg2.connect(server.conninfo())
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


def pg_totals(server: PgServer) -> dict[str, tuple]:
    return {name: tuple(query(server, sql)[0]) for name, sql in RAW_TOTALS.items()}


def duck(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def landing_copy(sample_landing: Path, name: str) -> Path:
    """Another landing folder with the same files (ingestion moves a rejected file away)."""
    copy = sample_landing.parent / name
    shutil.copytree(sample_landing, copy)
    return copy


def correct_a_posting(landing: Path, month: str = "2023-03", line: int = 5) -> tuple[Path, Decimal]:
    """One posting's amount changed to 1.000,00 in the month's file; returns it and the change."""
    path = landing / "posteringer" / f"posteringer_{month}.csv"
    lines = path.read_bytes().decode("cp1252").splitlines(keepends=True)
    fields = lines[line].split(";")
    old = dk_amount(fields[9])
    fields[9] = "1.000,00"
    lines[line] = ";".join(fields)
    path.write_bytes("".join(lines).encode("cp1252"))
    return path, Decimal("1000.00") - old


def test_the_sample_lands_in_postgres_as_in_duckdb(
    sample_landing: Path, tmp_path: Path, pg: PgServer
) -> None:
    warehouse = tmp_path / "wh.duckdb"
    on_duckdb = ingest_landing(landing_copy(sample_landing, "duck"), warehouse)
    on_postgres = ingest_landing(sample_landing, PostgresTarget(pg.conninfo()))
    assert not on_postgres.rejected and len(on_postgres.files) == len(on_duckdb.files) > 60
    assert [(f.file_name, f.status, f.rows, f.sha256) for f in on_postgres.files] == [
        (f.file_name, f.status, f.rows, f.sha256) for f in on_duckdb.files
    ]

    totals = pg_totals(pg)
    assert totals == raw_totals(warehouse)
    assert all(t[0] > 0 for t in totals.values())
    for sql in DETAILS:
        assert query(pg, sql) == duck(warehouse, sql), sql
    assert query(pg, MANIFEST) == duck(warehouse, MANIFEST)
    # the columns and their types are DuckDB's, mapped as pg_raw maps them
    duck_types = duck(
        warehouse,
        "SELECT table_schema, table_name, column_name, data_type, is_nullable = 'YES' "
        "FROM information_schema.columns WHERE table_schema IN ('raw', 'audit') ORDER BY 1, 2, "
        "ordinal_position",
    )
    pg_types = query(
        pg,
        "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
        "NOT a.attnotnull FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace "
        "n ON n.oid = c.relnamespace WHERE n.nspname IN ('raw', 'audit') AND c.relkind = 'r' AND "
        "a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2, a.attnum",
    )
    assert [(s, t, c, pg_type(d).replace(" ", ""), n) for s, t, c, d, n in duck_types] == [
        (s, t, c, d.replace(" ", "").replace("timestampwithouttimezone", "timestamp"), n)
        for s, t, c, d, n in pg_types
    ]

    again = ingest_landing(sample_landing, PostgresTarget(pg.conninfo()))
    assert {f.status for f in again.files} == {"skipped-duplicate"}
    assert pg_totals(pg) == totals
    assert query(pg, "SELECT status, count(*) FROM audit.load_manifest GROUP BY 1 ORDER BY 1") == [
        ("loaded", len(on_postgres.files)),
        ("skipped-duplicate", len(on_postgres.files)),
    ]


def test_a_corrected_month_replaces_its_period(sample_landing: Path, tmp_path: Path, pg: PgServer) -> None:
    target = PostgresTarget(pg.conninfo())
    ingest_source("posteringer", sample_landing, target)
    before = pg_totals(pg)["posteringer"]
    month, change = correct_a_posting(sample_landing)

    report = ingest_source("posteringer", sample_landing, target)
    statuses = {f.file_name: f.status for f in report.files}
    assert statuses.pop(month.name) == "loaded" and set(statuses.values()) == {"skipped-duplicate"}
    after = pg_totals(pg)["posteringer"]
    assert after[0] == before[0] and after[1] - before[1] == change != 0
    [new_load] = [f.load_id for f in report.files if f.status == "loaded"]
    assert query(
        pg,
        "SELECT status, replaced_by FROM audit.load_manifest WHERE file_name = %s ORDER BY loaded_at",
        (month.name,),
    ) == [("replaced", new_load), ("loaded", None)]
    assert query(pg, "SELECT DISTINCT _load_id FROM raw.posteringer WHERE _period = '2023-03'") == [
        (new_load,)
    ]
    # and the same landing folder into DuckDB gives the same totals
    warehouse = tmp_path / "wh.duckdb"
    ingest_source("posteringer", sample_landing, warehouse)
    assert raw_totals(warehouse)["posteringer"] == after


def break_a_date(landing: Path, month: str = "2023-04", line: int = 7) -> Path:
    """The month's file with a booking date that does not exist on one line (line+1 as a person counts)."""
    path = landing / "posteringer" / f"posteringer_{month}.csv"
    lines = path.read_bytes().decode("cp1252").splitlines(keepends=True)
    fields = lines[line].split(";")
    fields[1] = "31-02-2023"
    lines[line] = ";".join(fields)
    path.write_bytes("".join(lines).encode("cp1252"))
    return path


def test_a_file_failing_validation_leaves_postgres_untouched(sample_landing: Path, pg: PgServer) -> None:
    target, warehouse = PostgresTarget(pg.conninfo()), sample_landing.parent / "wh.duckdb"
    duck_landing = landing_copy(sample_landing, "duck")
    ingest_source("posteringer", sample_landing, target)
    ingest_source("posteringer", duck_landing, warehouse)
    before = pg_totals(pg)
    broken = break_a_date(sample_landing).name
    break_a_date(duck_landing)

    [rejected] = ingest_source("posteringer", sample_landing, target, sample_landing.parent / "q-pg").rejected
    [rejected_duck] = ingest_source(
        "posteringer", duck_landing, warehouse, sample_landing.parent / "q-duck"
    ).rejected
    assert rejected.file_name == rejected_duck.file_name == broken
    assert pg_totals(pg) == before == raw_totals(warehouse)
    assert query(pg, "SELECT count(*) FROM raw.posteringer WHERE _load_id = %s", (rejected.load_id,)) == [
        (0,)
    ]

    [error] = [str(i) for i in rejected.errors]
    assert [str(i) for i in rejected_duck.errors] == [error]
    assert broken in error and "line 8" in error and "bogfoeringsdato" in error
    for quarantine, landing in (("q-pg", sample_landing), ("q-duck", duck_landing)):
        assert (sample_landing.parent / quarantine / broken).exists()
        assert not (landing / "posteringer" / broken).exists()
    assert (sample_landing.parent / "q-pg" / f"{broken}.errors.txt").read_text() == (
        sample_landing.parent / "q-duck" / f"{broken}.errors.txt"
    ).read_text()
    manifest = f"SELECT status, error FROM audit.load_manifest WHERE file_name = '{broken}' ORDER BY status"
    assert query(pg, manifest) == duck(warehouse, manifest) == [("loaded", None), ("rejected", error)]


KILL_ME = """CREATE FUNCTION kill_me() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"""


@pytest.mark.parametrize("fault", ["constraint", "killed connection"])
def test_a_copy_failing_mid_file_rolls_back_its_rows_and_manifest_row(
    fault: str, sample_landing: Path, pg: PgServer
) -> None:
    target = PostgresTarget(pg.conninfo())
    ingest_source("posteringer", sample_landing, target)
    before = pg_totals(pg)
    loaded = MANIFEST.replace("ORDER BY", "WHERE status <> 'skipped-duplicate' ORDER BY")
    manifest_before = query(pg, loaded)
    month, change = correct_a_posting(sample_landing)
    lines = len(month.read_bytes().splitlines())
    assert lines > 25
    # line 20 of the corrected month: its first lines are in PostgreSQL's hands when it fails
    if fault == "constraint":
        pg.execute(
            "ALTER TABLE raw.posteringer ADD CONSTRAINT not_line_20 "
            "CHECK (_period <> '2023-03' OR _source_line <> 20) NOT VALID",
            database=pg.database,
        )
        expected: type[Exception] = psycopg2.errors.CheckViolation
    else:
        pg.execute(
            KILL_ME,
            "CREATE TRIGGER kill_at_line_20 BEFORE INSERT ON raw.posteringer FOR EACH ROW WHEN "
            "(NEW._period = '2023-03' AND NEW._source_line = 20) EXECUTE FUNCTION kill_me()",
            database=pg.database,
        )
        expected = psycopg2.OperationalError

    with pytest.raises(expected):
        ingest_source("posteringer", sample_landing, target)
    assert pg_totals(pg) == before  # the old month is still there, whole, and nothing of the new
    # the months before it were skipped as unchanged; of the failed load, no manifest row
    assert query(pg, loaded) == manifest_before
    assert query(pg, "SELECT count(*) FROM audit.load_manifest WHERE file_name = %s", (month.name,)) == [(1,)]
    assert month.exists()  # not quarantined: the file is good, the warehouse failed

    pg.execute(
        "ALTER TABLE raw.posteringer DROP CONSTRAINT IF EXISTS not_line_20",
        "DROP TRIGGER IF EXISTS kill_at_line_20 ON raw.posteringer",
        database=pg.database,
    )
    report = ingest_source("posteringer", sample_landing, target)
    assert {f.file_name: f.status for f in report.files}[month.name] == "loaded"
    assert pg_totals(pg)["posteringer"][1] - before["posteringer"][1] == change


def test_the_payroll_is_read_apart_and_never_reaches_postgres_in_clear(
    sample_landing: Path, pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import slf_warehouse.ingest.loading as loading

    read_here: list[str] = []
    real_stage_file = loading.stage_file
    monkeypatch.setattr(
        loading,
        "stage_file",
        lambda con, spec, path, tmp: read_here.append(path.name) or real_stage_file(con, spec, path, tmp),
    )
    report = ingest_landing(sample_landing, PostgresTarget(pg.conninfo()))
    assert not report.rejected
    assert read_here and not [name for name in read_here if name.startswith("loen")]

    names, numbers = set(), set()
    for path in (sample_landing / "loen").iterdir():
        for line in path.read_text("utf-8-sig").splitlines()[1:]:
            fields = line.split(";")
            numbers.add(fields[0])
            names.add(fields[1])
    assert len(numbers) > 10 and len(names) > 10
    dump = tmp_path / "raw-audit.sql"
    subprocess.run(
        [
            str(PG_BIN / "pg_dump"),
            "--host",
            pg.host,
            "--port",
            str(pg.port),
            "--username",
            pg.user,
            "--schema=raw",
            "--schema=audit",
            "--file",
            str(dump),
            pg.database,
        ],
        env={**os.environ, "PGPASSWORD": pg.password},
        check=True,
        timeout=120,
        capture_output=True,
    )
    text = dump.read_text("utf-8")
    assert "COPY raw.loen (medarbejder_key, stilling" in text
    assert (
        query(
            pg,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' AND "
            "column_name IN ('navn', 'medarbejdernr')",
        )
        == []
    )
    assert not [n for n in names if n in text]
    assert not [n for n in numbers if re.search(rf"(?<![0-9a-f]){re.escape(n)}(?![0-9a-f])", text)]
    assert query(
        pg, "SELECT count(DISTINCT medarbejder_key), min(length(medarbejder_key)) FROM raw.loen"
    ) == [(len(numbers), 64)]


@pytest.mark.slow
def test_dbt_builds_on_what_the_postgres_ingest_wrote(
    sample_landing: Path, tmp_path: Path, pg: PgServer
) -> None:
    """No pg_raw copy: dbt's postgres target reads the raw layer ingestion wrote."""
    from pg_server import failed_dbt_nodes, run_dbt
    from test_dbt_postgres import CONFIG, WINDOW_END

    assert not ingest_landing(sample_landing, PostgresTarget(pg.conninfo())).rejected
    results = run_dbt(
        "postgres", tmp_path, {**pg.env(), "SLF_WAREHOUSE_PATH": str(tmp_path / "unused.duckdb")}, "build"
    )
    assert not (failed := failed_dbt_nodes(results)), failed
    assert {r["unique_id"].split(".")[0] for r in results["results"]} >= {"model", "seed", "test", "snapshot"}
    assert query(
        pg,
        "SELECT sum(amount_dkk), sum(CASE WHEN funding_source = 'APMF' THEN amount_dkk END) FROM "
        "marts.fct_allocations WHERE period_end <= %s",
        (WINDOW_END,),
    ) == [(Decimal(CONFIG.total_allocated_kr), Decimal(CONFIG.apmf_kr))]
    assert not (tmp_path / "unused.duckdb").exists()
