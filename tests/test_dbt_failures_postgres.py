"""A failed dbt test on PostgreSQL names its failing rows' delivered file and line, as on DuckDB
(test_ingest_hardening's test_a_failed_dbt_test_names_the_failing_rows_file_and_line): in the
refresh's error (pipeline.dbt_build) and in the Cosmos callback's log (dbt_failures.log_failing_rows),
where the build is known by its schema prefix only. A real server (tests/pg_server.py), a real dbt build.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pg_server import PgServer, fresh_database, pg_server_fixture  # noqa: F401 - registers the `pg_server` fixture

pytestmark = [pytest.mark.slow, pytest.mark.dbt]

EXPECTED = "expression_is_true_stg_budget__allocations_period_end_period_start: bevillinger.csv lines 3, 5"


def test_a_failed_dbt_test_names_the_failing_rows_file_and_line_on_postgres(
    raw_warehouse: Path,
    pg_server: PgServer,  # noqa: F811 - the fixture above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from conftest import PROJECT, corrupted_copy
    from slf_warehouse.build_ref import BuildRef
    from slf_warehouse.dbt_failures import log_failing_rows
    from slf_warehouse.pg_raw import copy_raw_to_postgres
    from slf_warehouse.pipeline import StepFailed, dbt_build
    from slf_warehouse.settings import Settings
    from slf_warehouse.warehouse_pg import PgWarehouseStore

    # rows that got past the edge (written into raw directly), on the server's raw.*
    corrupted = corrupted_copy(
        raw_warehouse,
        tmp_path / "corrupted.duckdb",
        "UPDATE raw.bevillinger SET periode_til = DATE '2000-12-31' WHERE _source_line IN (3, 5)",
    )
    pg = fresh_database(pg_server)
    copy_raw_to_postgres(corrupted, pg.conninfo())
    for name, value in {**pg.env(), "SLF_WAREHOUSE_ENGINE": "postgres"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SLF_PROJECT_DIR", str(PROJECT))
    monkeypatch.delenv("SLF_WAREHOUSE_PATH", raising=False)
    monkeypatch.chdir(tmp_path)  # dbt's log folder
    build = PgWarehouseStore(pg.conninfo()).new_build("test-dbt-failures")
    settings = Settings.from_env(tmp_path / "landing", tmp_path / "out")

    with pytest.raises(StepFailed) as failed:
        dbt_build(settings, build, target_dir=tmp_path / "target")
    assert EXPECTED in str(failed.value), str(failed.value)

    # under Airflow: the Cosmos callback, with the task's env as build_env renders it on PostgreSQL
    # (SLF_WAREHOUSE_PATH empty, the build's schema prefix set); SLF_PG_* from the worker's env
    (tmp_path / "project").mkdir()
    (tmp_path / "target").rename(tmp_path / "project" / "target")
    task = SimpleNamespace(env=BuildRef.of(build).dbt_env())
    assert task.env["SLF_WAREHOUSE_PATH"] == ""
    with caplog.at_level("ERROR", logger="slf_warehouse.dbt_failures"):
        assert log_failing_rows(tmp_path / "project", context={"task": task}) == [EXPECTED]
    assert f"dbt test failed: {EXPECTED}" in caplog.text
    assert pg.password not in str(failed.value) + caplog.text
