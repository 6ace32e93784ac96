"""The dbt project on PostgreSQL: the same models, unchanged, give the same marts as on DuckDB.

A throw-away PostgreSQL server (tests/pg_server.py: initdb + pg_ctl, 127.0.0.1, a free port, fsync
off) runs for this module. The sample data is ingested into DuckDB and built there with `dbt build`;
the raw schema is copied into PostgreSQL by slf_warehouse.pg_raw and built with
`dbt build --target postgres`. Both builds must pass every node, and every mart must hold the same
rows on both targets - besides the figures the sample data was generated to produce.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pg_server import PgServer, failed_dbt_nodes, pg_server_fixture  # noqa: F401 - registers the `pg_server` fixture
from pg_server import run_dbt as dbt
from slf_warehouse.sample_data import SampleConfig

PROJECT = Path(__file__).resolve().parents[1]
CONFIG = SampleConfig()
WINDOW_END = date(2024, 6, 30)


# --- the two builds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Builds:
    warehouse: Path
    pg: PgServer
    duckdb_results: dict
    postgres_results: dict
    copied: list
    seconds: dict[str, float]


@pytest.fixture(scope="module")
def builds(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Builds:
    from slf_warehouse.ingest import ingest_landing
    from slf_warehouse.pg_raw import copy_raw_to_postgres
    from slf_warehouse.sample_data import write_sample_data

    work = tmp_path_factory.mktemp("dbt-postgres")
    landing, warehouse = work / "landing", work / "warehouse.duckdb"
    write_sample_data(landing, CONFIG)
    report = ingest_landing(landing, warehouse, quarantine_root=work / "quarantine")
    assert not report.rejected, report.summary()

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    duckdb_results = dbt("duckdb", work, {"SLF_WAREHOUSE_PATH": str(warehouse)}, "build")
    seconds["dbt build duckdb"] = time.perf_counter() - start
    start = time.perf_counter()
    copied = copy_raw_to_postgres(warehouse, pg_server.conninfo())
    seconds["copy raw"] = time.perf_counter() - start
    start = time.perf_counter()
    postgres_results = dbt(
        "postgres", work, {**pg_server.env(), "SLF_WAREHOUSE_PATH": str(warehouse)}, "build"
    )
    seconds["dbt build postgres"] = time.perf_counter() - start
    print(" ".join(f"{k}: {v:.1f} s" for k, v in seconds.items()))
    return Builds(warehouse, pg_server, duckdb_results, postgres_results, copied, seconds)


def duck(builds: Builds, sql: str) -> list[tuple]:
    with duckdb.connect(str(builds.warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def pg(builds: Builds, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2

    con = psycopg2.connect(builds.pg.conninfo())
    try:
        with con.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        con.close()


def both(builds: Builds, sql: str) -> tuple[list[tuple], list[tuple]]:
    return duck(builds, sql), pg(builds, sql)


# --- the tests ------------------------------------------------------------------------------------


def test_pg_type_mapping() -> None:
    from slf_warehouse.pg_raw import UnsupportedType, pg_type

    assert pg_type("VARCHAR") == "text"
    assert pg_type("DECIMAL(18,2)") == "numeric(18, 2)"
    assert pg_type("DECIMAL(7, 4)") == "numeric(7, 4)"
    assert pg_type("DATE") == "date" and pg_type("INTEGER") == "integer"
    assert pg_type("TIMESTAMP WITH TIME ZONE") == "timestamptz"
    with pytest.raises(UnsupportedType):
        pg_type("INTEGER[]")


@pytest.mark.slow
def test_raw_copied_with_types_and_rows(builds: Builds) -> None:
    tables = sorted(
        r[0] for r in duck(builds, "select table_name from duckdb_tables() where schema_name = 'raw'")
    )
    assert (
        sorted(c.table for c in builds.copied)
        == tables
        == ["aktiviteter", "bevillinger", "enheder", "loen", "posteringer", "social_kapital"]
    )
    for entry in builds.copied:
        assert entry.rows == duck(builds, f"select count(*) from raw.{entry.table}")[0][0] > 0
    types = dict(
        ((t, c), d)
        for t, c, d in pg(
            builds,
            """
        select table_name, column_name, data_type from information_schema.columns
        where table_schema = 'raw'""",
        )
    )
    assert types[("posteringer", "beloeb")] == "numeric"
    assert types[("posteringer", "bogfoeringsdato")] == "date"
    assert types[("social_kapital", "sk1")] == "integer"
    assert types[("loen", "medarbejder_key")] == "text"
    # money, NULLs and empty strings arrive as they are
    checks = [
        "select count(*), sum(beloeb), count(tekst), count(aktivitet_id) from raw.posteringer",
        "select count(*), sum(beloeb), sum(beskaeftigelsesgrad) from raw.loen",
        "select count(*), count(aktiv_til), min(aktiv_fra) from raw.enheder",
        "select count(*), count(sk1), count(slf4), sum(sk2) from raw.social_kapital",
        "select count(*), count(bemaerkning), sum(beloeb_kr) from raw.bevillinger",
    ]
    for sql in checks:
        d, p = both(builds, sql)
        assert d == p, sql


@pytest.mark.slow
def test_both_builds_pass_every_node(builds: Builds) -> None:
    for results in (builds.duckdb_results, builds.postgres_results):
        assert not (failed := failed_dbt_nodes(results)), failed
    duck_nodes = {r["unique_id"] for r in builds.duckdb_results["results"]}
    pg_nodes = {r["unique_id"] for r in builds.postgres_results["results"]}
    assert duck_nodes == pg_nodes
    kinds = {uid.split(".")[0] for uid in pg_nodes}
    assert {"model", "seed", "test", "unit_test", "snapshot"} <= kinds


@pytest.mark.slow
def test_allocations_total(builds: Builds) -> None:
    sql = f"""select sum(amount_dkk), sum(case when funding_source = 'APMF' then amount_dkk end)
              from marts.fct_allocations where period_end <= date '{WINDOW_END}'"""
    d, p = both(builds, sql)
    assert d == p == [(Decimal(CONFIG.total_allocated_kr), Decimal(CONFIG.apmf_kr))]


@pytest.mark.slow
def test_staff_in_the_latest_month(builds: Builds) -> None:
    sql = "select role, headcount from marts.rpt_staff_by_role_month where is_latest_month order by role"
    d, p = both(builds, sql)
    assert d == p
    assert dict(p) == {
        "laeringspartner": CONFIG.learning_partners_latest,
        "projektmedarbejder": CONFIG.project_employees_latest,
        "sektionsleder": CONFIG.section_leaders_latest,
    }


@pytest.mark.slow
def test_survey_fit_per_year(builds: Builds) -> None:
    sql = "select survey_year, r_squared, slope, intercept, units_used from marts.rpt_survey_fit order by 1"
    d, p = both(builds, sql)
    assert [r[0] for r in d] == [r[0] for r in p] == sorted(CONFIG.survey_r_squared)
    for (year, *dvals), (_, *pvals) in zip(d, p, strict=True):
        assert [round(v, 6) for v in dvals] == [round(v, 6) for v in pvals], year
        assert abs(pvals[0] - CONFIG.survey_r_squared[year]) < 0.003, year


@pytest.mark.slow
def test_budget_vs_actual(builds: Builds) -> None:
    sql = """select budget_year, sum(allocated_dkk), sum(spent_dkk), sum(remaining_dkk)
             from marts.rpt_budget_vs_actual group by budget_year order by budget_year"""
    d, p = both(builds, sql)
    assert d == p and len(p) >= 3
    (spent,) = pg(builds, "select sum(amount_dkk) from marts.fct_programme_postings where flow = 'expense'")[
        0
    ]
    assert sum(r[2] for r in p) == spent > 0


def _normalise(value: object) -> object:
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, Decimal):
        return value.normalize()
    return value


@pytest.mark.slow
def test_every_mart_identical_on_both_targets(builds: Builds) -> None:
    marts = [
        r[0]
        for r in duck(builds, "select table_name from duckdb_tables() where schema_name = 'marts' order by 1")
    ]
    assert len(marts) >= 15
    for mart in marts:
        d_cols = [
            r[0]
            for r in duck(
                builds,
                f"""select column_name from information_schema.columns
            where table_schema = 'marts' and table_name = '{mart}' order by ordinal_position""",
            )
        ]
        p_cols = [
            r[0]
            for r in pg(
                builds,
                """select column_name from information_schema.columns
            where table_schema = 'marts' and table_name = %s order by ordinal_position""",
                (mart,),
            )
        ]
        assert d_cols == p_cols, mart
        d_rows, p_rows = both(builds, f"select * from marts.{mart}")
        d_rows = sorted((tuple(_normalise(v) for v in r) for r in d_rows), key=repr)
        p_rows = sorted((tuple(_normalise(v) for v in r) for r in p_rows), key=repr)
        assert d_rows == p_rows, mart


@pytest.mark.slow
def test_snapshots_identical_on_both_targets(builds: Builds) -> None:
    sql = """select employee_key, role, fte, is_employed, dbt_valid_from, dbt_valid_to
             from snapshots.snp_staff_roster order by employee_key, dbt_valid_from"""
    d, p = both(builds, sql)
    assert d == p and len(p) > CONFIG.learning_partners_latest


@pytest.mark.slow
def test_raw_recopy_keeps_the_dbt_views(builds: Builds) -> None:
    """A second copy truncates and refills (one transaction); the staging views built on raw stay."""
    from slf_warehouse.pg_raw import copy_raw_to_postgres

    views = "select count(*) from information_schema.views where table_schema = 'staging'"
    before = pg(builds, views)[0][0]
    again = copy_raw_to_postgres(builds.warehouse, builds.pg.conninfo())
    assert not any(entry.recreated for entry in again)
    assert [(e.table, e.rows) for e in again] == [(e.table, e.rows) for e in builds.copied]
    assert pg(builds, views)[0][0] == before >= 6
    assert pg(builds, "select count(*) from staging.stg_ledger__postings") == duck(
        builds, "select count(*) from raw.posteringer"
    )
