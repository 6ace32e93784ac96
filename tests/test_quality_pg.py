"""The quality step on PostgreSQL (quality.target.PgTarget), on a real server.

One throw-away server for the module (tests/pg_server.py); the session's sample raw layer and its
load manifest copied in by pg_raw (raw.* and audit.load_manifest, as ingestion will write them);
ONE `dbt build --target postgres` into a build's own schemas. The step runs on that build and must
give what it gives on the DuckDB build of the same data (conftest's `built_warehouse`): the same
suites, expectations and outcomes, the same reconciliations. Further builds are `new_build` copies
of the published one, changed in SQL where a test needs broken data. The server logs every
statement while the step runs, which shows where GE computed its metrics.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg2
import pytest

from leak_scan import amount_forms, files_under, find_leaks
from pg_server import PgServer, pg_server_fixture  # noqa: F401 - registers the `pg_server` fixture
from slf_warehouse.pg_raw import copy_raw_to_postgres
from slf_warehouse.quality.checkpoint import run_quality_checks
from slf_warehouse.quality.gate import QualityGateRefused
from slf_warehouse.quality.reconciliations import compute_reconciliations, read_reconciliations
from slf_warehouse.quality.step import check_build, mark_published
from slf_warehouse.quality.suites import default_suites_dir, load_suites
from slf_warehouse.quality.target import PgTarget
from slf_warehouse.warehouse_pg import PgBuild, PgWarehouseStore
from test_quality_personal_data import SMALL_GROUP_PAY_SHOWN, payroll_identities, suites_with_small_groups
from test_warehouse_pg import dbt_build

pytestmark = pytest.mark.slow

EXPECTATIONS = sum(len(s.expectations) for s in load_suites(default_suites_dir()))

APMF_FAILURES = {
    ("raw_posteringer", "expect_column_sum_to_be_between", "apmf_salary_postings"),
    ("marts_fct_programme_postings", "expect_column_values_to_be_in_set", "apmf_pays_salary"),
}


def query(server: PgServer, text: str, params: tuple = ()) -> list[tuple]:
    con = psycopg2.connect(server.conninfo())
    con.autocommit = True  # ALTER SYSTEM runs outside a transaction
    try:
        with con.cursor() as cur:
            cur.execute(text, params)
            return cur.fetchall() if cur.description else []
    finally:
        con.close()


class StatementLog:
    """The server's log of every statement (log_statement = all) from a point on."""

    def __init__(self, server: PgServer):
        ((data_dir,),) = query(server, "show data_directory")
        self.path = Path(data_dir).parent / "server.log"  # pg_server's `pg_ctl -l`
        self.server = server

    def __enter__(self) -> StatementLog:
        query(self.server, "alter system set log_statement = 'all'")
        query(self.server, "select pg_reload_conf()")
        time.sleep(0.5)
        self.start = self.path.stat().st_size
        return self

    def __exit__(self, *exc) -> None:
        query(self.server, "alter system reset log_statement")
        query(self.server, "select pg_reload_conf()")

    def statements(self) -> list[str]:
        text = self.path.read_bytes()[self.start :].decode("utf-8", "replace")
        found = re.findall(
            r"LOG:  statement: (.*?)(?=\n\S[^\n]*(?:LOG|ERROR|WARNING|DETAIL|STATEMENT):  |\Z)", text, re.S
        )
        return [" ".join(s.split()) for s in found]


def _outer(statement: str) -> tuple[str, str]:
    """A SELECT's select list at parenthesis depth 0, and what its FROM names up to the next
    keyword (a subquery's text without its parentheses, when FROM is followed by one)."""
    depth, start, select_list, from_at = 0, None, "", None
    for match in re.finditer(r"\(|\)|\bSELECT\b|\bFROM\b", statement, re.I):
        token = match.group(0).upper()
        if token == "(":
            if depth == 0 and from_at is not None and not statement[from_at : match.start()].strip():
                start = match.end()
            depth += 1
        elif token == ")":
            depth -= 1
            if depth == 0 and from_at is not None and start is not None and start > from_at:
                return select_list, statement[start : match.start()]
        elif depth == 0 and token == "SELECT" and start is None:
            start = match.end()
        elif depth == 0 and token == "FROM" and from_at is None:
            select_list, from_at = statement[start : match.start()].strip(), match.end()
    return select_list, ""


AGGREGATE = re.compile(r"\b(count|sum|max|min|avg|stddev\w*|regr_\w+)\s*\(", re.I)


def is_aggregate(statement: str) -> bool:
    """Whether a SELECT returns aggregates: its select list has one, or it only picks columns of a
    FROM subquery whose select list has one (GE's `SELECT "UnexpectedCountSubquery".unexpected_count
    FROM (SELECT sum(condition) ...)`)."""
    select_list, subquery = _outer(statement)
    if AGGREGATE.search(select_list):
        return True
    return bool(subquery) and "(" not in select_list and bool(AGGREGATE.search(_outer(subquery)[0]))


def limit_of(statement: str) -> int | None:
    match = re.search(r"\bLIMIT\s+(\d+)\s*(?:OFFSET\s+\d+\s*)?;?$", statement, re.I)
    return int(match.group(1)) if match else None


def test_layers_map_to_the_build_schemas_and_nothing_else_is_rewritten(pg_server: PgServer) -> None:
    build = PgBuild("20260101000000000000_abcdef", "run-x")
    with PgTarget(pg_server.conninfo(), build).connect() as con:
        text = con.sql(
            "SELECT m.x, 'marts.x ?', \"marts\".y, raw.z, audit.runs /* staging.a */ "
            "FROM marts.fct AS m JOIN Staging . b ON information_schema.tables.t = ? -- marts.c",
            with_params=True,
        )
        assert text == (
            'SELECT m.x, \'marts.x ?\', "marts".y, "raw".z, "audit".runs /* staging.a */ '
            'FROM "b_20260101000000000000_abcdef_marts".fct AS m JOIN '
            '"b_20260101000000000000_abcdef_staging" . b ON information_schema.tables.t = %s -- marts.c'
        )
        # a value is bound, never formatted into the statement (quotes and % survive as data)
        assert con.execute("SELECT ? || '%', ?", ["it's 100", "raw.x"]).fetchall() == [("it's 100%", "raw.x")]


@pytest.fixture(scope="module")
def pg(pg_server: PgServer, raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("pg-quality")
    copy_raw_to_postgres(raw_warehouse, pg_server.conninfo())
    copy_raw_to_postgres(raw_warehouse, pg_server.conninfo(), schema="audit", tables=["load_manifest"])
    # the sample was ingested outside a refresh; here its loads are this run's, as a refresh records them
    query(pg_server, "update audit.load_manifest set run_id = 'run-pg'")
    store = PgWarehouseStore(pg_server.conninfo())
    build = store.new_build("run-pg")
    command, env = dbt_build(work, "first", pg_server, build)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return pg_server, store, build, work


@pytest.fixture(scope="module")
def passed(pg):
    """The quality step on the PG build, every statement the server ran meanwhile logged."""
    server, store, build, work = pg
    quality = work / "out" / "quality"
    with StatementLog(server) as log:
        started = time.perf_counter()
        decision = check_build(
            PgTarget(server.conninfo(), build),
            quality,
            "run-pg",
            dbt_run_results=work / "target-first" / "run_results.json",
        )
        seconds = time.perf_counter() - started
        statements = log.statements()
    (work / "statements.log").write_text("\n".join(statements), encoding="utf-8")  # to read when a test fails
    print(f"quality step on PostgreSQL: {seconds:.1f} s, {len(statements)} statements")
    return decision, quality, statements


def outcome_set(results: dict) -> set[tuple]:
    return {
        (r["suite"], r["expectation_type"], r["column"], r["success"], r["severity"], r["unexpected_count"])
        for r in results["results"]
    }


def test_the_step_passes_with_the_same_checks_and_reconciliations_as_on_duckdb(
    pg, passed, built_warehouse: Path, tmp_path: Path
) -> None:
    server, store, build, work = pg
    decision, quality, _ = passed
    assert decision.publish and decision.status == "passed" and not decision.failed_checks

    pg_results = json.loads((quality / "quality_results.json").read_text(encoding="utf-8"))
    duck = run_quality_checks(built_warehouse, tmp_path / "duck", "run-duck")
    duck_results = json.loads(duck.results_path.read_text(encoding="utf-8"))
    assert set(pg_results) == set(duck_results)  # the same shape
    assert [s["name"] for s in pg_results["suites"]] == [s["name"] for s in duck_results["suites"]]
    assert {(s["name"], s["batch_rows"], s["success"]) for s in pg_results["suites"]} == {
        (s["name"], s["batch_rows"], s["success"]) for s in duck_results["suites"]
    }
    assert pg_results["summary"] == duck_results["summary"]
    assert outcome_set(pg_results) == outcome_set(duck_results)
    assert len(pg_results["results"]) == EXPECTATIONS and pg_results["success"] and duck_results["success"]
    assert (pg_results["failed"], pg_results["warnings"]) == (
        duck_results["failed"],
        duck_results["warnings"],
    )
    assert "postgresql://127.0.0.1" in pg_results["warehouse"] and build.prefix in pg_results["warehouse"]

    target = PgTarget(server.conninfo(), build)
    with target.connect(read_only=True) as con:
        pg_recs = read_reconciliations(con, "run-pg")
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        duck_recs = compute_reconciliations(con)
    assert len(pg_recs) >= 10 and [r.as_dict() for r in pg_recs] == [r.as_dict() for r in duck_recs]

    # Data Docs and the report were written from PostgreSQL
    assert (quality / "data_docs" / "index.html").is_file() and (quality / "report.pdf").is_file()
    text = subprocess.run(
        ["pdftotext", str(quality / "report.pdf"), "-"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "bestået" in text and build.prefix in text
    # GE's project never holds the connection's password
    for path in files_under(quality / "gx"):
        assert server.password not in path.read_text(encoding="utf-8", errors="replace"), path


def test_the_run_history_is_in_the_shared_audit_schema(pg, passed) -> None:
    server, store, build, work = pg
    (runs,) = query(
        server,
        "select status, build_file, checks, checks_failed, reconciliations, files_loaded "
        "from audit.runs where run_id = 'run-pg'",
    )
    assert runs[:2] == ("passed", build.prefix) and runs[2] == EXPECTATIONS and runs[3] == 0 and runs[4] >= 10
    ((manifest_files,),) = query(
        server, "select count(*) from audit.load_manifest where status <> 'rejected'"
    )
    assert runs[5] == manifest_files > 0
    counts = dict(
        query(
            server,
            """select 'run_files', count(*) from audit.run_files where run_id = 'run-pg'
               union all select 'dbt_results', count(*) from audit.dbt_results where run_id = 'run-pg'
               union all select 'expectation_results', count(*) from audit.expectation_results
               where run_id = 'run-pg'""",
        )
    )
    assert counts["run_files"] == query(server, "select count(*) from audit.load_manifest")[0][0]
    assert counts["dbt_results"] > 50 and counts["expectation_results"] == EXPECTATIONS
    # nothing of the history is in the build's own schemas, so dropping a build loses none of it
    assert not query(
        server,
        "select table_schema, table_name from information_schema.tables "
        "where table_schema like %s and table_name in ('runs', 'reconciliations')",
        (build.prefix + "%",),
    )
    lines = [json.loads(line) for line in (passed[1] / "history.jsonl").read_text().splitlines()]
    assert lines[-1]["run_id"] == "run-pg" and lines[-1]["status"] == "passed"


def test_great_expectations_ran_as_sql_in_the_server(pg, passed) -> None:
    server, store, build, work = pg
    _, quality, statements = passed
    views = build.schema("quality")  # the step's view of each suite's batch query, in the build's schemas
    ((definition,),) = query(
        server,
        "select definition from pg_views where schemaname = %s and viewname = 'marts_fct_payroll'",
        (views,),
    )
    assert f"{build.schema('marts')}.fct_payroll" in definition
    # the statements on the views' data (not SQLAlchemy's catalogue look-ups of their columns)
    view_names = "|".join(spec.name for spec in load_suites(default_suites_dir()))
    selects = [
        s
        for s in statements
        if s.upper().startswith("SELECT")
        and "FROM pg_catalog." not in s
        and re.search(rf"\b({view_names})\b", s)
    ]
    aggregates = [s for s in selects if is_aggregate(s)]
    suites = {spec.name for spec in load_suites(default_suites_dir())}
    assert {
        name for name in suites if any(re.search(rf'\bFROM ("{views}"\.)?"?{name}\b', s) for s in aggregates)
    } == suites
    assert len(aggregates) > 5 * len(suites), len(aggregates)
    # e.g. the payroll suite's unexpected counts are aggregates computed over its view in the server
    assert any("marts_fct_payroll" in s and "sum(CASE WHEN" in s for s in aggregates)
    # no statement returned a whole batch: every one that returns rows is limited (GE's few examples of
    # a non-personal suite, or the step's LIMIT 0 probe of the columns)
    whole = [s for s in selects if not is_aggregate(s) and limit_of(s) is None]
    assert not whole, whole[:3]
    limits = {limit_of(s) for s in selects if not is_aggregate(s)}
    assert limits == {0, 1, 20}
    assert all(_outer(s)[0] == "1" for s in selects if limit_of(s) == 1)  # GE's `SELECT 1 ... LIMIT 1` test
    # GE's stored validation results say the batch was that view, validated by its SQL engine
    validation = next((quality / "gx" / "uncommitted" / "validations" / "marts_fct_payroll").rglob("*.json"))
    meta = json.loads(validation.read_text(encoding="utf-8"))["meta"]
    assert meta["active_batch_definition"]["data_asset_name"] == "marts_fct_payroll"
    assert meta["batch_spec"]["table_name"] == "marts_fct_payroll" and meta["batch_spec"]["type"] == "table"


def _next_build(pg, run_id: str, *statements: str) -> tuple[PgBuild, PgTarget]:
    server, store, build, work = pg
    new = store.new_build(run_id)
    target = PgTarget(server.conninfo(), new)
    with target.connect() as con:  # the statements name layers as on DuckDB: marts.x is the new build's
        for statement in statements:
            con.execute(statement)
    return new, target


def test_the_gate_refuses_apmf_money_on_salaries(pg, passed, tmp_path: Path) -> None:
    server, store, build, work = pg
    quality = passed[1]
    mark_published(PgTarget(server.conninfo(), build), quality, "run-pg", render_report=False)
    store.publish(build)
    # a programme salary posting paid by the APMF donation, in the ledger (raw, shared by every build)
    # and so in the build's marts (as dbt would have built it from that ledger)
    ((line,),) = query(server, "select max(_source_line) + 1 from raw.posteringer")
    query(
        server,
        """insert into raw.posteringer select * from raw.posteringer
           where projekt = 'SLF' and left(art, 1) = '1' order by _source_file, _source_line limit 1""",
    )
    query(
        server,
        """update raw.posteringer set finansieringskilde = 'APMF', _source_line = %s
                     where ctid = (select max(ctid) from raw.posteringer)""",
        (line,),
    )
    try:
        broken, target = _next_build(
            pg,
            "run-apmf",
            """
            UPDATE marts.fct_programme_postings SET funding_source = 'APMF'
            WHERE posting_id = (
                SELECT min(posting_id) FROM marts.fct_programme_postings WHERE main_type = 1
            )""",
        )
        with pytest.raises(QualityGateRefused) as refused:
            check_build(target, quality, "run-apmf")
        message = str(refused.value)
        for suite, kind, column in APMF_FAILURES:
            assert f"{suite}: {kind} on {column}" in message
        assert "apmf_not_on_salaries [antal]" in message and "apmf_not_on_salaries [beløb]" in message
        store.discard(broken)
    finally:
        query(server, "delete from raw.posteringer where _source_line = %s", (line,))
    # the refused run's history outlives its build's schemas
    assert not query(server, "select nspname from pg_namespace where nspname like %s", (broken.prefix + "%",))
    ((status, build_file),) = query(
        server, "select status, build_file from audit.runs where run_id = 'run-apmf'"
    )
    assert (status, build_file) == ("refused", broken.prefix)
    recs = dict(
        query(
            server,
            "select key, passed from audit.reconciliations where run_id = 'run-apmf' "
            "and check_name = 'apmf_not_on_salaries'",
        )
    )
    assert recs == {"antal": False, "beløb": False}
    assert store.published().version == build.version  # the refused build was never published


def test_no_quality_output_shows_small_group_pay_on_postgres(
    pg, passed, sample_landing_master: Path, tmp_path: Path
) -> None:
    server, store, build, work = pg
    broken, target = _next_build(pg, "run-pii", *SMALL_GROUP_PAY_SHOWN)
    suites = suites_with_small_groups(tmp_path / "expectations")
    quality = tmp_path / "out" / "quality"
    with StatementLog(server) as log:
        with pytest.raises(QualityGateRefused) as refused:
            check_build(target, quality, "run-pii", expectations_dir=suites)
        statements = log.statements()
    (tmp_path / "gate-message.txt").write_text(str(refused.value), encoding="utf-8")

    with target.connect(read_only=True) as con:
        small_group_pay = {
            Decimal(v)
            for (v,) in con.execute(
                "SELECT cost_dkk FROM marts.rpt_staff_by_role_month WHERE headcount < 5"
            ).fetchall()
        }
        person_pay = {
            Decimal(v)
            for (v,) in con.execute(
                "SELECT cost_dkk FROM marts.fct_payroll WHERE role IN (SELECT role FROM "
                "marts.rpt_staff_by_role_month GROUP BY role HAVING max(headcount) < 5)"
            ).fetchall()
        }
        keys = {k for (k,) in con.execute("SELECT DISTINCT employee_key FROM marts.fct_payroll").fetchall()}
        recorded = con.execute(
            "SELECT suite, column_name, unexpected_count, success, severity FROM audit.expectation_results "
            "WHERE run_id = 'run-pii' AND NOT success"
        ).fetchall()
        audit_dump = []
        for (table,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'audit' ORDER BY 1"
        ).fetchall():
            for row in con.execute(f"SELECT * FROM audit.{table}").fetchall():
                audit_dump.append(f"{table}: " + " | ".join(str(v) for v in row))
    assert ("marts_fct_payroll", "cost_dkk", 1, False, "warning") in recorded
    assert ("marts_rpt_staff_by_role_month", "headcount, fte", 1, False, "error") in recorded
    assert any(r[0] == "marts_small_groups" for r in recorded)
    assert len(small_group_pay) > 3
    (tmp_path / "audit.txt").write_text("\n".join(audit_dump), encoding="utf-8")
    # what the personal-data suites asked the server for came back as aggregates only: no statement
    # on a payroll or survey table fetched rows (GE's examples are switched off for them)
    personal = [
        s
        for s in statements
        if s.upper().startswith("SELECT")
        and "FROM pg_catalog." not in s
        and re.search(
            r"\b(raw_loen|raw_social_kapital|marts_fct_payroll|marts_rpt_staff_by_role_month|marts_rpt_survey_\w+|"
            r"marts_small_groups)\b",
            s,
        )
    ]
    fetched = [s for s in personal if not is_aggregate(s) and limit_of(s) != 0 and _outer(s)[0] != "1"]
    assert len(personal) > 50 and not fetched, fetched[:3]

    numbers, names = payroll_identities(sample_landing_master)
    files = files_under(quality) + [tmp_path / "audit.txt", tmp_path / "gate-message.txt"]
    needles = (
        {form for pay in small_group_pay | person_pay for form in amount_forms(pay)} | keys | numbers | names
    )
    leaks = find_leaks(files, needles)
    assert not leaks, {k: sorted(set(v))[:4] for k, v in sorted(leaks.items())[:10]}
    store.discard(broken)
