from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from slf_warehouse.airflow_env import airflow_environment

# Every test process gets a pseudonymisation key unless a test removes it on purpose, and a
# project-local Airflow (set before anything imports airflow).
os.environ.setdefault("SLF_PSEUDONYM_KEY", "test-only-key-0f1e2d3c4b5a6978")
os.environ.update(airflow_environment())

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sample_landing_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from slf_warehouse.sample_data import write_sample_data

    root = tmp_path_factory.mktemp("sample-landing")
    write_sample_data(root)
    return root


@pytest.fixture()
def sample_landing(sample_landing_master: Path, tmp_path: Path) -> Path:
    """A private copy: ingestion moves rejected files to quarantine."""
    landing = tmp_path / "landing"
    shutil.copytree(sample_landing_master, landing)
    return landing


@pytest.fixture()
def landing_with(sample_landing_master: Path, tmp_path: Path):
    """`landing_with({"enheder": None, "loen": ["loen_2024-06.csv"]})`: a private landing folder
    holding only these of the sample's files (None: all of the source's; []: an empty source folder),
    for a test about those files alone: loading the others costs time and plays no part in it."""

    def make(files: dict[str, list[str] | None]) -> Path:
        landing = tmp_path / "landing"
        for source, names in files.items():
            (landing / source).mkdir(parents=True)
            sample = {p.name: p for p in (sample_landing_master / source).iterdir()}
            assert names is None or set(names) <= sample.keys(), (source, names)
            for name in sorted(sample if names is None else names):
                shutil.copy2(sample[name], landing / source / name)
        return landing

    return make


def dk_amount(text: str) -> Decimal:
    """A ledger amount as the file writes it (1.234,56) read back as a number."""
    return Decimal(text.replace(".", "").replace(",", "."))


# Row counts and money per raw table (plain SQL: also run on PostgreSQL, test_ingest_postgres).
RAW_TOTALS = {
    "enheder": "SELECT count(*) FROM raw.enheder",
    "bevillinger": "SELECT count(*), sum(beloeb_kr) FROM raw.bevillinger",
    "posteringer": "SELECT count(*), sum(beloeb) FROM raw.posteringer",
    "loen": "SELECT count(*), sum(beloeb) FROM raw.loen",
    "social_kapital": "SELECT count(*), sum(sk1) FROM raw.social_kapital",
    "aktiviteter": "SELECT count(*), sum(deltagere) FROM raw.aktiviteter",
}


@functools.cache
def _memory_database() -> duckdb.DuckDBPyConnection:
    """One in-memory database per test process, for `attached`."""
    return duckdb.connect()


def raw_totals(warehouse: Path) -> dict[str, tuple]:
    """Row counts and money per raw table: what a re-delivery must not change."""
    with attached(warehouse) as con:
        return {name: tuple(con.execute(sql).fetchall()[0]) for name, sql in RAW_TOTALS.items()}


@contextlib.contextmanager
def attached(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse file attached read-only (as the default catalog) to one in-memory database kept
    for the test process: a new DuckDB database costs about 25 ms of CPU, an ATTACH about 1 ms."""
    con = _memory_database()
    con.execute("ATTACH ? AS warehouse (READ_ONLY)", [str(warehouse)])
    try:
        con.execute("USE warehouse")
        yield con
    finally:
        con.execute("USE memory")
        con.execute("DETACH warehouse")


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """The project-local Airflow metadata database, migrated (tests that touch Airflow's models)."""
    from slf_warehouse.airflow_env import migrate_metadata_db

    migrate_metadata_db(dict(os.environ))


@pytest.fixture(scope="session")
def raw_ingest(sample_landing_master: Path, tmp_path_factory: pytest.TempPathFactory):
    """The sample ingested once per session by `ingest_landing` (raw layer only) into an empty
    warehouse: (the warehouse, the IngestReport). Read it, or change a copy: other tests share it."""
    from slf_warehouse.ingest import ingest_landing

    root = tmp_path_factory.mktemp("raw-warehouse")
    shutil.copytree(sample_landing_master, root / "landing")
    report = ingest_landing(root / "landing", root / "warehouse.duckdb")
    return root / "warehouse.duckdb", report


@pytest.fixture(scope="session")
def raw_warehouse(raw_ingest) -> Path:
    """The sample ingested once per session (raw layer only). Read it, or change a copy
    (`corrupted_copy`): other tests share it."""
    warehouse: Path = raw_ingest[0]
    return warehouse


@pytest.fixture(scope="session")
def _one_source_warehouses() -> dict[str, Path]:
    """Per source, a warehouse holding just that source of the sample (`one_source_loaded` fills it)."""
    return {}


@pytest.fixture()
def one_source_loaded(
    _one_source_warehouses: dict[str, Path],
    sample_landing_master: Path,
    tmp_path_factory: pytest.TempPathFactory,
):
    """`one_source_loaded(source, target)` puts at `target` a copy of a warehouse into which the real
    `ingest_source` loaded that source of the sample (loaded once per session, then copied): what a
    test that re-delivers a file starts from, without paying the first load again."""
    from slf_warehouse.ingest import ingest_source

    def loaded(source: str, target: Path) -> Path:
        if source not in _one_source_warehouses:
            root = tmp_path_factory.mktemp(f"loaded-{source}")
            shutil.copytree(sample_landing_master, root / "landing")
            report = ingest_source(source, root / "landing", root / "warehouse.duckdb")
            assert not report.rejected and report.files, (source, report)
            assert not (root / "warehouse.duckdb.wal").exists()  # the copy below is the whole warehouse
            _one_source_warehouses[source] = root / "warehouse.duckdb"
        shutil.copy2(_one_source_warehouses[source], target)
        return target

    return loaded


@pytest.fixture(scope="session")
def built_warehouse(raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`raw_warehouse` built by a real `dbt build` (dbt's target and logs kept in tmp), once per session."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("built-warehouse")
    warehouse = root / "warehouse.duckdb"
    shutil.copyfile(raw_warehouse, warehouse)
    dbt_project = PROJECT / "dbt_project"
    env = {**os.environ, "SLF_WAREHOUSE_PATH": str(warehouse), "DBT_PROFILES_DIR": str(dbt_project)}
    build = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "build",
            "--project-dir",
            str(dbt_project),
            "--profiles-dir",
            str(dbt_project),
            "--target-path",
            str(root / "dbt_target"),
            "--log-path",
            str(root / "dbt_logs"),
        ],
        cwd=dbt_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, f"dbt build failed:\n{build.stdout[-4000:]}\n{build.stderr[-2000:]}"
    return warehouse


def corrupted_copy(warehouse: Path, target: Path, *statements: str) -> Path:
    """A copy of a shared warehouse with the given SQL applied."""
    shutil.copyfile(warehouse, target)
    with duckdb.connect(str(target)) as con:
        for sql in statements:
            con.execute(sql)
    return target


def failed_checks(result) -> set[tuple[str, str, str | None]]:
    """(suite, expectation, column) of every error-severity check that failed."""
    return {
        (r.suite, r.expectation_type, r.column)
        for r in result.results
        if not r.success and r.severity == "error"
    }


# What a test needs, by the fixtures it uses (directly or through other fixtures): `make test-fast`
# leaves out the tests marked so (and `slow` ones), so a new test that uses one of these fixtures
# leaves the fast set by itself. A new fixture that starts Airflow, runs dbt, starts PostgreSQL or a
# browser belongs here; a test that does so itself carries the marker (`@pytest.mark.dbt`).
NEEDS_BY_FIXTURE = {
    "airflow_db": "airflow",
    "dagbag": "airflow",
    "dag": "airflow",
    "airflow_server": "airflow",
    "built_warehouse": "dbt",
    "pg_server": "postgres",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in NEEDS_BY_FIXTURE:
                item.add_marker(NEEDS_BY_FIXTURE[fixture])


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fixtures start their servers in this phase: tell the PostgreSQL helper whose they are."""
    import postgres_server

    postgres_server.running_test_is_marked = item.get_closest_marker("postgres") is not None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A test that imports Airflow in the test process without the `airflow` marker fails: the import
    alone costs seconds, which `make test-fast` leaves out (a test run after one that imported Airflow
    already is not checked; the fast set, which imports none, checks every test)."""
    imported_before = "airflow" in sys.modules
    result = yield
    if not imported_before and "airflow" in sys.modules and item.get_closest_marker("airflow") is None:
        pytest.fail(
            f"{item.nodeid} imports Airflow: mark it @pytest.mark.airflow (with the reason), "
            f"so that make test-fast leaves it out",
            pytrace=False,
        )
    return result
