"""The answers read from PostgreSQL give the same letters as from DuckDB.

One throw-away PostgreSQL server (tests/pg_server.py); the session's sample raw layer and load
manifest copied in by pg_raw; one real `dbt build --target postgres` into a build's own schemas
(warehouse_pg's layout), published. Both inquiries are answered from it through
`answer_from_published` with SLF_WAREHOUSE_ENGINE=postgres and compared with the same inquiries
rendered from the session's DuckDB build of the same raw data.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest

from pg_server import PgServer, pg_server_fixture  # noqa: F401 - registers the `pg_server` fixture
from slf_warehouse.warehouse_pg import PgWarehouseStore
from test_end_to_end import pdf_text
from test_warehouse_pg import dbt_build

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
INQUIRIES = ("enhedslisten-slf", "konservative-kompetenceaktiviteter")


@dataclass(frozen=True)
class Published:
    server: PgServer
    store: PgWarehouseStore
    version: str
    run_id: str


@pytest.fixture(scope="module")
def published(
    pg_server: PgServer, raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Published:
    from slf_warehouse.pg_raw import copy_raw_to_postgres

    work = tmp_path_factory.mktemp("pg-answers")
    copy_raw_to_postgres(raw_warehouse, pg_server.conninfo())
    copy_raw_to_postgres(raw_warehouse, pg_server.conninfo(), schema="audit", tables=["load_manifest"])
    store = PgWarehouseStore(pg_server.conninfo())
    build = store.new_build("run-pg-answers")
    command, env = dbt_build(work, "answers", pg_server, build)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    print(f"dbt build --target postgres: {time.perf_counter() - start:.1f} s")
    store.publish(build)
    return Published(pg_server, store, build.version, build.run_id)


def answer(out: Path, server: PgServer, inquiry: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    """`slf answer`'s path with the engine chosen by the setting."""
    from slf_warehouse.answers.published import answer_from_published

    with monkeypatch.context() as m:
        m.setenv("SLF_WAREHOUSE_ENGINE", "postgres")
        for key, value in server.env().items():
            m.setenv(key, value)
        return answer_from_published(inquiry, out)


@pytest.fixture(scope="module")
def renders(published: Published, built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    """Each inquiry rendered from DuckDB, and twice from PostgreSQL (two output folders)."""
    from slf_warehouse.answers.render import render_inquiry

    root = tmp_path_factory.mktemp("pg-answers-out")
    duck, pg = {}, {}
    monkeypatch = pytest.MonkeyPatch()
    try:
        for name in INQUIRIES:
            duck[name] = render_inquiry(
                built_warehouse, PROJECT / "inquiries" / f"{name}.yaml", root / "duck"
            )
            start = time.perf_counter()
            pg[name] = [answer(root / f"pg{i}", published.server, name, monkeypatch) for i in (1, 2)]
            print(f"{name} from PostgreSQL: {(time.perf_counter() - start) / 2:.1f} s a render")
    finally:
        monkeypatch.undo()
    return duck, pg


def sidecar(path: Path | str) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_the_answers_state_the_seed_figures_from_postgresql(published: Published, renders) -> None:
    _, pg = renders
    first = pg["enhedslisten-slf"][0]
    assert (first["warehouse_version"], first["warehouse_run_id"]) == (published.version, published.run_id)
    figures = sidecar(first["figures_json"])["figures"]
    assert figures["allocated_total"]["value"] == "26000000.00"
    assert figures["allocated_apmf"]["value"] == "6600000.00"
    assert figures["staff_learning_partners"]["value"] == 16
    assert Decimal(figures["survey_r_squared"]["value"]) == pytest.approx(
        Decimal("0.80"), abs=Decimal("0.005")
    )
    text = pdf_text(Path(first["pdf"]))
    for figure in ("26 mio. kr.", "6,6 mio. kr.", "16 læringspartnere", "en projektmedarbejder", "80 %"):
        assert figure in text, figure
    # the appendix names the engine and the version's own schema, and the delivered files with hashes
    assert f"PostgreSQL, database slf_warehouse, schema b_{published.version}_marts" in text
    assert "bevillinger" in text and "SHA-256" in text


def test_the_figures_equal_the_duckdb_render(published: Published, renders) -> None:
    duck, pg = renders
    for name in INQUIRIES:
        from_duck, from_pg = sidecar(duck[name].sidecar_path), sidecar(pg[name][0]["figures_json"])
        assert from_pg["warehouse"] == {
            "engine": "postgres",
            "database": "slf_warehouse",
            "schema": f"b_{published.version}_marts",
            "version": published.version,
            "run_id": published.run_id,
        }
        assert from_duck["warehouse"]["engine"] == "duckdb"
        assert from_pg["run_info"]["engine"].startswith("PostgreSQL") and from_duck["run_info"] == {
            "engine": "DuckDB"
        }
        # everything else - every figure's value, text, exact text, rows and table parts - is the same
        for doc in (from_duck, from_pg):
            del doc["warehouse"], doc["run_info"]
        assert from_pg == from_duck, name
        assert len(from_pg["figures"]) >= 10
        assert (
            pdf_text(duck[name].pdf_path).split("Kørsel")[0]
            == pdf_text(Path(pg[name][0]["pdf"])).split("Kørsel")[0]
        )  # the letter and its appendix up to the run block read the same


def test_two_renders_of_one_version_are_byte_identical(renders) -> None:
    _, pg = renders
    for name in INQUIRIES:
        one, two = pg[name]
        for kind in ("pdf", "html", "figures_json"):
            assert Path(one[kind]).read_bytes() == Path(two[kind]).read_bytes(), (name, kind)


def test_an_answer_reads_one_version_while_another_is_published(
    published: Published, renders, tmp_path: Path
) -> None:
    """A publication during an answer waits for it (LOCK on the published views reaches the version's
    tables the answer reads); the answer reads one version throughout; a kept old version is then
    regenerated byte for byte."""
    from psycopg2 import sql

    from slf_warehouse.answers.figures import evaluate_figures
    from slf_warehouse.answers.render import render_inquiry
    from slf_warehouse.warehouse_reader import PostgresSource, open_reader

    server, store = published.server, published.store
    window = {"window_start": date(2022, 1, 1), "window_end": date(2024, 6, 30)}
    old = store.published()
    newer = store.new_build("run-doubled")
    con = psycopg2.connect(server.conninfo())
    try:
        with con, con.cursor() as cur:
            cur.execute(
                sql.SQL("update {} set amount_dkk = amount_dkk * 2").format(
                    sql.Identifier(newer.schema("marts"), "fct_allocations")
                )
            )
    finally:
        con.close()
    publication: list = []
    with open_reader(PostgresSource(server.conninfo())) as reader:
        before = evaluate_figures(reader, ["allocated_total"], window)["allocated_total"].value
        thread = threading.Thread(target=lambda: publication.append(store.publish(newer)), daemon=True)
        thread.start()
        time.sleep(1.5)  # the publisher tries (and retries) meanwhile
        assert not publication and store.published() == old
        during = evaluate_figures(
            reader, ["allocated_total", "allocated_apmf", "staff_learning_partners"], window
        )
        assert reader.version == old.version
    thread.join(timeout=60)
    assert publication and publication[0].version == newer.version  # it went through once the answer ended
    assert before == during["allocated_total"].value == Decimal("26000000.00")
    assert during["allocated_apmf"].value == Decimal("6600000.00")
    assert during["staff_learning_partners"].value == 16

    with open_reader(PostgresSource(server.conninfo())) as reader:  # a new answer reads the new version
        assert reader.version == newer.version
        now = evaluate_figures(reader, ["allocated_total"], window)["allocated_total"]
        assert now.value == Decimal("52000000.00")

    # the old answer again, from the kept version: the same bytes as when it was first published
    first = renders[1]["enhedslisten-slf"][0]
    again = render_inquiry(
        PostgresSource(server.conninfo(), old.version),
        PROJECT / "inquiries" / "enhedslisten-slf.yaml",
        tmp_path / "answers",
    )
    assert again.pdf_path.read_bytes() == Path(first["pdf"]).read_bytes()
    assert again.sidecar_path.read_bytes() == Path(first["figures_json"]).read_bytes()


def test_a_figure_parameter_with_sql_in_it_is_bound(published: Published) -> None:
    from slf_warehouse.answers.figures import FIGURES, Filter, evaluate
    from slf_warehouse.warehouse_reader import PostgresSource, open_reader

    hostile = "APMF'; DROP TABLE marts.fct_allocations; --"
    spec = replace(FIGURES["allocated_total"], filters=(Filter("funding_source", "=", hostile),))
    with open_reader(PostgresSource(published.server.conninfo(), published.version)) as reader:
        result = evaluate(reader, spec, {})
        assert (result.value, result.rows) == (0, 0)  # compared as a value: no funding source is called that
        assert hostile not in result.sql and "DROP" not in result.sql and result.bound == (hostile,)
        quoted = replace(spec, filters=(Filter("funding_source", "=", "?' OR '1'='1"),))
        assert evaluate(reader, quoted, {}).rows == 0  # a ? inside the value is not a placeholder
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):  # and the session cannot write anyway
            reader.execute("CREATE TABLE audit.stolen (i integer)")
    with open_reader(PostgresSource(published.server.conninfo(), published.version)) as reader:
        apmf = replace(spec, filters=(Filter("funding_source", "=", "APMF"),))
        assert evaluate(reader, apmf, {}).value == Decimal("6600000.00")  # the table is there, unchanged


def test_an_unknown_version_is_a_clear_error(published: Published) -> None:
    from slf_warehouse.warehouse_reader import PostgresSource, WarehouseReadError, open_reader

    with (
        pytest.raises(
            WarehouseReadError,
            match=r"'20000101000000000000_abcdef' is not a kept published version "
            r"\(kept: ",
        ),
        open_reader(PostgresSource(published.server.conninfo(), "20000101000000000000_abcdef")),
    ):
        pass
