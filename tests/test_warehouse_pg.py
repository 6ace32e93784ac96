"""Publication on PostgreSQL (slf_warehouse.warehouse_pg) and the read-only role, on a real server.

One throw-away PostgreSQL server for the module (tests/pg_server.py); the session's sample raw layer
copied in by pg_raw; ONE full `dbt build --target postgres` into a build's own schemas, published;
one more `dbt build` started and killed with SIGKILL mid-build. Every further version is made by
`new_build` (which copies the published version's tables, as a refresh starts) and, where a test
needs other figures, an UPDATE in the build's schema: cheap, and real PostgreSQL throughout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import errors, sql
from psycopg2.extensions import make_dsn

from pg_server import PgServer, dbt_build, failed_dbt_nodes, pg_server_fixture  # noqa: F401 - registers the `pg_server` fixture
from slf_warehouse.sample_data import SampleConfig
from slf_warehouse.warehouse_pg import (
    KEEP_VERSIONS,
    PgBuild,
    PgWarehouseStore,
    PublicationBlocked,
    StaleBuild,
    ensure_reader_role,
)

pytestmark = pytest.mark.slow

CONFIG = SampleConfig()
WINDOW_END = date(2024, 6, 30)
READER, READER_PASSWORD = "slf_reader", "reader-test-password-7c1d"
# Two marts whose totals must always come from the same version
PAIR = sql.SQL(
    "select (select sum(amount_dkk) from {s}.fct_allocations), "
    "(select sum(allocated_dkk) from {s}.rpt_budget_vs_actual)"
)


@dataclass(frozen=True)
class Warehouse:
    server: PgServer
    store: PgWarehouseStore
    first: PgBuild
    dbt_results: dict
    work: Path
    seconds: float


@pytest.fixture(scope="module")
def warehouse(
    pg_server: PgServer, raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory
) -> Warehouse:
    from slf_warehouse.pg_raw import copy_raw_to_postgres

    work = tmp_path_factory.mktemp("pg-publish")
    copy_raw_to_postgres(raw_warehouse, pg_server.conninfo())
    store = PgWarehouseStore(pg_server.conninfo())
    first = store.new_build("run-first")
    command, env = dbt_build(work, "first", pg_server, first)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    results = json.loads((work / "target-first" / "run_results.json").read_text())
    store.publish(first)
    print(f"dbt build into {first.prefix}_*: {seconds:.1f} s")
    return Warehouse(pg_server, store, first, results, work, seconds)


def rows(server: PgServer, query, params: tuple = (), **login: str) -> list[tuple]:
    con = psycopg2.connect(make_dsn(server.conninfo(), **login))
    try:
        with con, con.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else []
    finally:
        con.close()


def relations(server: PgServer, schema: str) -> dict[str, str]:
    return dict(
        rows(
            server,
            """select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
                                where n.nspname = %s and c.relkind in ('r', 'v')""",
            (schema,),
        )
    )


def schemas(server: PgServer) -> set[str]:
    return {r[0] for r in rows(server, "select nspname from pg_namespace")}


def checksums(server: PgServer, schema: str = "marts") -> dict[str, tuple[int, str]]:
    """Rows and an md5 of the ordered rows of every relation in a schema."""
    found = {}
    for name in sorted(relations(server, schema)):
        query = sql.SQL(
            "select count(*), md5(coalesce(string_agg(t::text, e'\\n' order by t::text), '')) from {} as t"
        ).format(sql.Identifier(schema, name))
        found[name] = rows(server, query)[0]
    return found


def pair(server: PgServer, schema: str) -> tuple[Decimal, Decimal]:
    return rows(server, PAIR.format(s=sql.Identifier(schema)))[0]


def next_version(store: PgWarehouseStore, server: PgServer, run_id: str, *changes: str) -> PgBuild:
    """A build as a refresh starts it (a copy of the published tables), with `changes` applied to
    its marts (`{marts}` is the build's marts schema)."""
    build = store.new_build(run_id)
    for change in changes:
        rows(server, sql.SQL(change).format(marts=sql.Identifier(build.schema("marts"))))
    return build


def test_a_build_publishes_the_sample_figures(warehouse: Warehouse) -> None:
    server, first = warehouse.server, warehouse.first
    assert warehouse.dbt_results["results"] and not (failed := failed_dbt_nodes(warehouse.dbt_results)), (
        failed
    )
    published = warehouse.store.published()
    assert (published.version, published.run_id) == (first.version, "run-first")

    # dbt wrote only the build's own schemas; readers get views in the stable schema onto them
    found = schemas(server)
    assert {first.schema(layer) for layer in ("staging", "intermediate", "marts", "snapshots")} <= found
    assert not {"staging", "intermediate", "snapshots"} & found
    built, stable = relations(server, first.schema("marts")), relations(server, "marts")
    assert len(built) >= 15 and set(stable) == set(built) and set(stable.values()) == {"v"}
    assert rows(
        server,
        """select count(distinct view_name) from information_schema.view_table_usage
                           where view_schema = 'marts' and table_schema = %s""",
        (first.schema("marts"),),
    )[0][0] == len(stable)

    total, apmf = rows(
        server,
        """select sum(amount_dkk), sum(case when funding_source = 'APMF' then amount_dkk end)
                                  from marts.fct_allocations where period_end <= %s""",
        (WINDOW_END,),
    )[0]
    assert (total, apmf) == (
        Decimal(CONFIG.total_allocated_kr),
        Decimal(CONFIG.apmf_kr),
    )  # 26 and 6,6 mio. kr.
    staff = dict(
        rows(server, "select role, headcount from marts.rpt_staff_by_role_month where is_latest_month")
    )
    assert staff["laeringspartner"] == CONFIG.learning_partners_latest
    assert checksums(server, "marts") == checksums(server, first.schema("marts"))


def test_a_refresh_killed_mid_build_leaves_the_published_marts(warehouse: Warehouse) -> None:
    server, store = warehouse.server, warehouse.store
    published, before = store.published(), checksums(server)
    killed = store.new_build("run-killed")
    oid_sql = """select c.relname, c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname = %s and c.relkind = 'r' and c.relname not like '%%__dbt_%%'"""
    copied = dict(rows(server, oid_sql, (killed.schema("marts"),)))
    assert len(copied) >= 15  # the build starts as a copy of the published version

    # a new delivery, so anything the killed build leaked into the published marts would show
    rows(server, "update raw.aktiviteter set deltagere = deltagere + 1")
    command, env = dbt_build(warehouse.work, "killed", server, killed)
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 600
        while True:  # kill it once dbt has rebuilt a first mart in the build
            assert proc.poll() is None, "dbt finished before the test could kill it"
            assert time.monotonic() < deadline, "dbt rebuilt no mart within 600 s"
            now = dict(rows(server, oid_sql, (killed.schema("marts"),)))
            if any(now.get(name) != oid for name, oid in copied.items()):
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        rows(server, "update raw.aktiviteter set deltagere = deltagere - 1")
    assert not (warehouse.work / "target-killed" / "run_results.json").exists()  # dbt never finished
    deadline = time.monotonic() + 30
    while (
        rows(
            server,
            """select count(*) from pg_stat_activity where backend_type = 'client backend'
                          and pid <> pg_backend_pid()""",
        )[0][0]
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)  # the server ends the killed client's session and rolls back its transaction
    now = dict(rows(server, oid_sql, (killed.schema("marts"),)))
    rebuilt = [name for name, oid in copied.items() if now.get(name) != oid]
    assert 1 <= len(rebuilt) < len(copied), rebuilt  # killed mid-build: some marts rebuilt, not all

    assert store.published() == published
    assert checksums(server) == before
    assert checksums(server, published.schema("marts")) == before

    # the next refresh publishes; the killed build is dropped as abandoned and can never be published
    newer = next_version(store, server, "run-after-kill")
    store.publish(newer)
    assert not any(s.startswith(killed.prefix + "_") for s in schemas(server))
    with pytest.raises(StaleBuild):
        store.publish(killed)
    assert checksums(server) == before  # an unchanged copy published: same marts


def test_the_reader_role_reads_the_published_marts_and_nothing_else(warehouse: Warehouse) -> None:
    server, store = warehouse.server, warehouse.store
    ensure_reader_role(server.conninfo(), "an-older-password-51ab")
    ensure_reader_role(server.conninfo(), READER_PASSWORD)  # idempotent; the password is rotated
    with pytest.raises(psycopg2.OperationalError):
        rows(server, "select 1", user=READER, password="an-older-password-51ab")
    reader = {"user": READER, "password": READER_PASSWORD}
    rows(
        server,
        "create schema if not exists audit; create table if not exists audit.run_history (run_id text)",
    )
    build_marts = store.published().schema("marts")

    # unqualified names work: search_path is the published schema
    assert rows(
        server, "select sum(amount_dkk) from fct_allocations where period_end <= %s", (WINDOW_END,), **reader
    ) == [(Decimal(CONFIG.total_allocated_kr),)]
    assert rows(server, "show default_transaction_read_only", **reader) == [("on",)]
    with pytest.raises(errors.ReadOnlySqlTransaction):  # the session refuses before privileges are asked
        rows(server, "create table marts.mine (i int)", **reader)

    refused = [
        "select count(*) from raw.loen",
        "select count(*) from raw.posteringer",
        "select count(*) from audit.run_history",
        "select count(*) from slf_publication.versions",
        f'select count(*) from "{build_marts}".fct_allocations',
        "insert into marts.fct_allocations select * from marts.fct_allocations limit 1",
        "update marts.fct_allocations set amount_dkk = 0",
        "delete from marts.fct_allocations",
        "drop view marts.fct_allocations",
        "alter view marts.fct_allocations rename to stolen",
        "create table marts.mine (i int)",
        "create view public.mine as select 1",
        "create table raw.mine (i int)",
        f'create table "{build_marts}".mine (i int)',
        "create temporary table mine (i int)",
        "create schema mine",
        "insert into raw.loen select * from raw.loen limit 1",
    ]
    for statement in refused:
        # read-only off, so what refuses each statement is the role's privileges, not the session
        with pytest.raises(errors.InsufficientPrivilege):
            rows(server, "set transaction read write; " + statement, **reader)

    # a new publication with a new mart and a mart whose columns changed: still readable, still only that
    changed = next_version(
        store,
        server,
        "run-new-columns",
        "create table {marts}.rpt_new_mart as select 1 as answer",
        "alter table {marts}.rpt_survey_fit drop column intercept",
    )
    store.publish(changed)
    assert rows(server, "select answer from marts.rpt_new_mart", **reader) == [(1,)]
    columns = [
        r[0]
        for r in rows(
            server,
            "select * from marts.rpt_survey_fit limit 0; "
            "select column_name from information_schema.columns where "
            "table_schema = 'marts' and table_name = 'rpt_survey_fit'",
            **reader,
        )
    ]
    assert "intercept" not in columns and "r_squared" in columns
    assert rows(server, "select count(*) from rpt_survey_fit", **reader)[0][0] > 0
    with pytest.raises(errors.InsufficientPrivilege):
        rows(server, f'select count(*) from "{changed.schema("marts")}".rpt_new_mart', **reader)


def test_readers_see_one_version_while_versions_are_published(warehouse: Warehouse) -> None:
    server, store = warehouse.server, warehouse.store
    ensure_reader_role(server.conninfo(), READER_PASSWORD)
    base = pair(server, "marts")
    versions = {base, (base[0] * 2, base[1] * 2)}
    seen: dict[str, list[tuple]] = {"statement": [], "transaction": []}
    failures: list[BaseException] = []
    stop = threading.Event()

    def read(kind: str) -> None:
        con = psycopg2.connect(make_dsn(server.conninfo(), user=READER, password=READER_PASSWORD))
        try:
            con.autocommit = kind == "statement"
            with con.cursor() as cur:
                while not stop.is_set():
                    if kind == "statement":  # one statement over both marts
                        cur.execute(PAIR.format(s=sql.Identifier("marts")))
                        seen[kind].append(cur.fetchone())
                    else:  # two statements in one transaction, as a BI refresh of two tables; in the
                        # opposite order to the publisher's, which is where lock waits could deadlock
                        cur.execute("select sum(allocated_dkk) from marts.rpt_budget_vs_actual")
                        allocated = cur.fetchone()[0]
                        time.sleep(0.01)
                        cur.execute("select sum(amount_dkk) from marts.fct_allocations")
                        seen[kind].append((cur.fetchone()[0], allocated))
                        con.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            con.close()

    threads = [threading.Thread(target=read, args=(kind,), daemon=True) for kind in seen]
    for thread in threads:
        thread.start()
    publish_seconds = []
    try:
        deadline = time.monotonic() + 60
        while not all(seen.values()) and not failures and time.monotonic() < deadline:
            time.sleep(0.05)
        for i in range(6):  # alternately double and halve both marts' money
            op = "* 2" if i % 2 == 0 else "/ 2"
            build = next_version(
                store,
                server,
                f"run-flip-{i}",
                f"update {{marts}}.fct_allocations set amount_dkk = amount_dkk {op}",
                f"update {{marts}}.rpt_budget_vs_actual set allocated_dkk = allocated_dkk {op}",
            )
            start = time.perf_counter()
            store.publish(build)
            publish_seconds.append(time.perf_counter() - start)
            assert pair(server, "marts") in versions
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not failures, failures
    counts = {kind: len(values) for kind, values in seen.items()}
    print(f"reads {counts}; publish {min(publish_seconds):.2f}-{max(publish_seconds):.2f} s")
    for kind, values in seen.items():
        assert set(values) <= versions, (kind, set(values) - versions)  # never a mix of two versions
        assert set(values) == versions, kind  # and the reader did read across the publications


def test_a_reader_holding_the_marts_delays_publication_then_it_goes_through(warehouse: Warehouse) -> None:
    server, store = warehouse.server, warehouse.store
    published = store.published()
    hold = psycopg2.connect(server.conninfo())
    try:
        with hold.cursor() as cur:  # an open transaction that read a mart holds its view
            cur.execute("select count(*) from marts.fct_allocations")
        build = next_version(store, server, "run-blocked")
        impatient = PgWarehouseStore(server.conninfo(), publish_wait_s=1.0)
        with pytest.raises(PublicationBlocked):
            impatient.publish(build)
        assert store.published() == published
    finally:
        hold.rollback()
        hold.close()
    assert store.publish(build).version == build.version


def test_a_refused_build_is_dropped_once_another_session_lets_go_of_its_tables(warehouse: Warehouse) -> None:
    # What autovacuum did at scale 100: a lock on a table dbt had just written, held longer than the
    # store's 200 ms lock timeout while the refused build was dropped.
    server, store = warehouse.server, warehouse.store
    refused = next_version(store, server, "run-refused-while-vacuumed")
    hold = psycopg2.connect(server.conninfo())
    with hold.cursor() as cur:
        cur.execute(
            sql.SQL("lock table {} in share update exclusive mode").format(
                sql.Identifier(refused.schema("marts"), "fct_allocations")
            )
        )
    releaser = threading.Timer(1.5, hold.rollback)
    releaser.start()
    try:
        store.discard(refused)
    finally:
        releaser.join()
        hold.close()
    assert not any(s.startswith(refused.prefix + "_") for s in schemas(server))
    assert rows(
        server,
        "select dropped_at is not null from slf_publication.versions where version = %s",
        (refused.version,),
    ) == [(True,)]


def test_only_the_last_versions_are_kept(warehouse: Warehouse) -> None:
    server, store = warehouse.server, warehouse.store
    discarded = next_version(store, server, "run-refused-by-the-gate")
    store.discard(discarded)
    assert not any(s.startswith(discarded.prefix + "_") for s in schemas(server))
    figures = {}
    for i in range(KEEP_VERSIONS + 1):
        build = next_version(
            store,
            server,
            f"run-keep-{i}",
            f"update {{marts}}.fct_allocations set amount_dkk = amount_dkk + {i + 1}",
        )
        figures[build.version] = pair(server, build.schema("marts"))
        store.publish(build)

    kept = store.versions()
    assert len(kept) == KEEP_VERSIONS and kept[0] == store.published()
    assert [v.version for v in kept] == list(figures)[::-1][:KEEP_VERSIONS]
    # the older versions and every abandoned build are gone; the kept ones still answer as they did
    builds = {s.split("_")[1] + "_" + s.split("_")[2] for s in schemas(server) if s.startswith("b_")}
    assert builds == {v.version for v in kept}
    for version in kept:
        assert pair(server, version.schema("marts")) == figures[version.version]
    assert pair(server, "marts") == figures[kept[0].version]
    assert rows(server, "select count(*) from slf_publication.versions where dropped_at is null") == [
        (KEEP_VERSIONS,)
    ]
