"""`make bench`: a full refresh at a scale factor, each stage timed beside DuckDB's own limit.

The refresh runs once, the way finance staff run it (`slf run`: slf_refresh through Airflow), and
each stage's seconds are that run's task durations: nothing is run twice to be measured. Memory is
sampled while it runs (the resident memory of the whole process tree: Airflow, the tasks, dbt's
subprocess), so each stage's peak is the tree's peak during that task. Beside it, in their own
processes: DuckDB's own `read_csv` of the same ledger files, a plain `CREATE TABLE AS` of the
biggest mart, and the next month's delivery built incrementally. Results go to OUT/bench.json and a
table on stdout.

`--engine postgres` (`make bench ENGINE=postgres`) runs the same refresh with
SLF_WAREHOUSE_ENGINE=postgres against the server SLF_PG_* name, or, when SLF_PG_HOST is not set, a
throw-away server on loopback that the bench starts and stops (pg_throwaway, as the tests do); the
memory then includes that server's processes. The side measurements have their PostgreSQL
counterparts (benchmark_pg): the server's COPY of the ledger files as the ingest's limit, the
biggest mart's SQL as a CREATE TABLE AS on the server, the next month into the server's raw.*.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from slf_warehouse.ingest.loading import LOAD_ORDER

# A stage's row, a task instance, a refresh's summary: JSON read from a child process or its log,
# or built from such JSON (numbers, lists and text mixed, as bench.json holds them).
Record = dict[str, Any]

MONTHLY_SOURCES = ("posteringer", "loen")
SAMPLE_INTERVAL = 0.1
# The ledger's ratio to read_csv is taken from this many back-to-back pairs (the load, then the
# limit), and the median reported: on a shared 2-core machine one pair can be 20-30 % off the next,
# and a ratio of two timings taken minutes apart is off by as much.
LIMIT_PAIRS = 3

STAGE_CODE = {
    "generate": "from slf_warehouse.scaled_data import write_scaled_sample as w; "
    "print(json.dumps(w(Path(a['landing']), a['scale'])))",
    "limit_read_csv": "import duckdb; c = duckdb.connect(a['scratch']); "
    "c.execute(\"CREATE OR REPLACE TABLE ledger AS SELECT * FROM read_csv(?, delim=';', "
    "header=true, all_varchar=true, encoding='utf-8')\", [a['glob']]); "
    "print(json.dumps({'rows': c.execute('SELECT count(*) FROM ledger').fetchall()[0][0]}))",
    # The refresh's ledger load task, called as the task calls it, on the same files, outside Airflow.
    "ledger_ingest_alone": "from slf_warehouse.ingest import ingest_source; "
    "r = ingest_source('posteringer', Path(a['landing']), Path(a['warehouse']), "
    "Path(a['quarantine'])); "
    "assert not r.rejected, r.summary(); "
    "print(json.dumps({'rows': sum(f.rows for f in r.files)}))",
    "limit_ctas": "import duckdb, time; c = duckdb.connect(a['warehouse'], read_only=True); "
    "sql = open(a['sql']).read(); t = time.perf_counter(); "
    "c.execute('CREATE OR REPLACE TEMP TABLE bench_ctas AS ' + sql); "
    "print(json.dumps({'rows': c.execute('SELECT count(*) FROM bench_ctas').fetchall()[0][0], "
    "'query_seconds': time.perf_counter() - t}))",
    # The next refresh after a new month arrives: the month's ledger and payroll files loaded into a
    # copy of the published warehouse, then dbt's incremental build; the totals then checked.
    "incremental_month": "import time; from slf_warehouse.ingest import ingest_source; "
    "from slf_warehouse import pipeline; from slf_warehouse.settings import Settings; "
    "from slf_warehouse.benchmark import incremental_totals; "
    "t = time.perf_counter(); rows = sum(f.rows for s in a['sources'] for f in "
    "ingest_source(s, Path(a['landing']), Path(a['warehouse']), "
    "Path(a['quarantine'])).files if f.status == 'loaded'); i = time.perf_counter() - t; "
    "t = time.perf_counter(); pipeline.dbt_build(Settings.from_env(a['landing'], a['out']), "
    "Path(a['warehouse']), Path(a['target'])); d = time.perf_counter() - t; "
    "print(json.dumps({'rows': rows, 'ingest_seconds': round(i, 3), 'dbt_seconds': round(d, 3), "
    "**incremental_totals(Path(a['warehouse']))}))",
    # PostgreSQL's counterparts (benchmark_pg). The child reads the connection from SLF_PG_* (never
    # from its command line, which other users of the machine can read); a['database'] names the
    # bench's scratch database on that server.
    "ledger_ingest_alone_pg": "from slf_warehouse.ingest import ingest_source, PostgresTarget; "
    "from slf_warehouse.benchmark_pg import on_database; "
    "r = ingest_source('posteringer', Path(a['landing']), PostgresTarget(on_database(a['database'])), "
    "Path(a['quarantine'])); "
    "assert not r.rejected, r.summary(); "
    "print(json.dumps({'rows': sum(f.rows for f in r.files)}))",
    "limit_copy_pg": "from slf_warehouse.benchmark_pg import copy_limit, on_database; "
    "print(json.dumps(copy_limit(on_database(a['database']), a['files'])))",
    "limit_ctas_pg": "from slf_warehouse.benchmark_pg import ctas_limit, on_database; "
    "print(json.dumps(ctas_limit(on_database(None), open(a['sql']).read())))",
    "incremental_month_pg": "from slf_warehouse.benchmark_pg import incremental_month; "
    "print(json.dumps(incremental_month(a)))",
}


def incremental_totals(warehouse: Path) -> dict[str, bool]:
    """After an incremental build: does every incremental model still add up to all of raw?"""
    import duckdb

    # not read-only: dbt (in this process) still holds the file open read-write
    with duckdb.connect(str(warehouse)) as con:
        ledger = con.execute(
            "SELECT (SELECT (count(*), sum(beloeb)) FROM raw.posteringer) = "
            "(SELECT (count(*), sum(amount_dkk)) FROM intermediate.int_postings_classified)"
        ).fetchall()[0][0]
        payroll = con.execute(
            "SELECT (SELECT (count(*), sum(beloeb)) FROM raw.loen) = "
            "(SELECT (sum(pay_lines), sum(cost_dkk)) FROM intermediate.int_payroll_person_month)"
        ).fetchall()[0][0]
    return {"ledger_totals_equal_raw": bool(ledger), "payroll_totals_equal_raw": bool(payroll)}


class Memory:
    """Samples the resident memory of a process tree every SAMPLE_INTERVAL, plus the PostgreSQL
    server's processes when the bench started the server: its postmaster is no child of the bench
    (pg_ctl detaches it), so it is sampled as a tree of its own."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid

    @contextmanager
    def sampling(self, root: int | None) -> Iterator[list[tuple[float, float, float]]]:
        """Samples (time, MB of root's tree + the server's, MB of the server's) while the block runs."""
        samples: list[tuple[float, float, float]] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                server = _tree_rss_kib(self.server_pid) / 1024 if self.server_pid else 0.0
                tree = _tree_rss_kib(root) / 1024 if root else 0.0
                samples.append((time.time(), tree + server, server))
                done.wait(SAMPLE_INTERVAL)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield samples
        finally:
            done.set()
            sampler.join()


def run_stage(stage: str, args: dict[str, object], log_dir: Path, memory: Memory) -> Record:
    """One stage in a child process; its peak memory is the child's own (max RSS from wait4), plus
    the peak of the bench's PostgreSQL server during the stage when there is one (an upper bound)."""
    code = f"import json, sys; from pathlib import Path; a = json.loads(sys.argv[1]); {STAGE_CODE[stage]}"
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{stage}.out", log_dir / f"{stage}.err"
    started = time.perf_counter()
    print(f"bench: {stage} …", file=sys.stderr, flush=True)
    # Files, not pipes: dbt writes its whole log to stdout, which would fill a pipe nobody reads yet.
    with out_path.open("w") as out, err_path.open("w") as err, memory.sampling(None) as samples:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(args)], stdout=out, stderr=err, text=True
        )
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed ({proc.returncode}):\n{err_path.read_text()[-3000:]}")
    print(f"bench: {stage} done in {seconds:.1f} s (log: {err_path})", file=sys.stderr, flush=True)
    lines = [line for line in out_path.read_text().splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    # ru_maxrss is in KiB on Linux: the child's own peak, including DuckDB's native memory.
    peak = usage.ru_maxrss / 1024
    server = {}
    if memory.server_pid:
        server_peak = max((s for _, _, s in samples), default=0.0)
        peak += server_peak
        server = {"server_peak_mb": round(server_peak, 1)}
    return {"seconds": round(seconds, 3), "peak_mb": round(peak, 1), **server, **result}


def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants (a sum of RSS: shared pages count twice)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rfind(b")") + 2 :].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, ppid in parents.items() if ppid == pid and p not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total


def run_refresh(
    landing: Path, out: Path, memory: Memory
) -> tuple[Record, list[tuple[float, float, float]], float]:
    """`slf run` with its process tree's memory sampled; returns (summary, samples, seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "slf_warehouse.cli", "run", "--landing", str(landing), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    print("bench: the refresh (slf run) …", file=sys.stderr, flush=True)
    kept = []
    assert proc.stdout is not None
    with memory.sampling(proc.pid) as samples:
        for line in proc.stdout:  # slf run's step lines, shown as they come (its log stays in its file)
            kept.append(line)
            if line.startswith("  ") and not line.startswith("   "):
                print(f"bench: {line.rstrip()}", file=sys.stderr, flush=True)
        proc.wait()
    output = "".join(kept)
    seconds = time.perf_counter() - started
    log = out / "logs" / "slf_refresh.log"
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    summary = next((json.loads(line) for line in reversed(lines) if line.startswith('{"dag_id"')), None)
    if proc.returncode != 0 or summary is None:
        raise RuntimeError(f"the refresh failed ({proc.returncode}):\n{output[-3000:]}")
    return summary, samples, seconds


def _row(name: str, r: Record) -> Record:
    rows = r.get("rows")
    rate = round(rows / r["seconds"]) if isinstance(rows, int) and rows and r["seconds"] else None
    return {
        "stage": name,
        "rows": rows,
        "seconds": r["seconds"],
        "rows_per_second": rate,
        "peak_mb": r.get("peak_mb"),
        **{k: v for k, v in r.items() if k not in ("rows", "seconds", "peak_mb")},
    }


def _task_rows(
    summary: Record,
    samples: list[tuple[float, float, float]],
    loaded: dict[str, int],
    answers_index: Path,
    with_server: bool,
) -> list[Record]:
    """One row per stage of the refresh, from its task instances."""
    tasks = [t for t in summary["tasks"] if t["start"] and t["end"]]

    def peak(start: float, end: float) -> Record:
        inside = [(mb, s) for t, mb, s in samples if start - SAMPLE_INTERVAL <= t <= end + SAMPLE_INTERVAL]
        if not inside:
            return {"peak_mb": None}
        server = {"server_peak_mb": round(max(s for _, s in inside), 1)} if with_server else {}
        return {"peak_mb": round(max(mb for mb, _ in inside), 1), **server}

    def stage(name: str, chosen: list[Record], **extra: object) -> Record:
        seconds = sum(t["end"] - t["start"] for t in chosen)
        start, end = min(t["start"] for t in chosen), max(t["end"] for t in chosen)
        return _row(
            name,
            {
                "seconds": round(seconds, 3),
                **peak(start, end),
                "tasks": [t["task_id"] for t in chosen],
                **extra,
            },
        )

    rows = [stage("pull (all sources)", [t for t in tasks if t["task_id"].endswith(".pull")])]
    for source in LOAD_ORDER:
        chosen = [t for t in tasks if t["task_id"] == f"ingest_{source}.load"]
        rows.append(stage(f"ingest {source}", chosen, rows=int(loaded.get(source, 0))))
    rows.append(
        stage(
            "dbt build (all models and tests)",
            [t for t in tasks if t["task_id"].startswith("dbt") and t["task_id"] != "dbt_docs"],
        )
    )
    rows.append(stage("quality checks", [t for t in tasks if t["task_id"] == "quality_checkpoint"]))
    rows.append(stage("dbt docs generate", [t for t in tasks if t["task_id"] == "dbt_docs"]))
    answers = json.loads(answers_index.read_text(encoding="utf-8"))
    render = stage(
        f"render answers ({len(answers)} PDFs)",
        [t for t in tasks if t["task_id"] == "render_answers"],
        rows=len(answers),
    )
    render["pdf_seconds"] = {Path(a["pdf"]).stem: a["seconds"] for a in answers}
    rows.append(render)
    named = {t for r in rows for t in r["tasks"]}
    rows.append(
        stage("other tasks (prepare, publish, record)", [t for t in tasks if t["task_id"] not in named])
    )
    return rows


def _loaded_duckdb(warehouse: Path, run_id: str) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(
            con.execute(
                "SELECT source, sum(rows)::BIGINT FROM audit.load_manifest WHERE run_id = ? "
                "AND status = 'loaded' GROUP BY source",
                [run_id],
            ).fetchall()
        )


def _pairs_summary(
    alone: list[Record], limit: list[Record], alone_name: str, limit_name: str
) -> list[Record]:
    """The pairs' rows: median seconds of each side, the median of the pairs' ratios."""
    from statistics import median

    # same rows in both, so the ratio of rates is the inverse ratio of seconds
    ratios = [lim["seconds"] / a["seconds"] for a, lim in zip(alone, limit, strict=True)]

    def summary(runs: list[Record]) -> Record:
        extra = (
            {"server_peak_mb": max(r["server_peak_mb"] for r in runs)} if "server_peak_mb" in runs[0] else {}
        )
        return {
            "rows": runs[0]["rows"],
            "seconds": round(median(r["seconds"] for r in runs), 3),
            "peak_mb": max(r["peak_mb"] for r in runs),
            **extra,
            "runs_seconds": [r["seconds"] for r in runs],
        }

    return [
        _row(alone_name, {**summary(alone), "ratio_to_limit": round(median(ratios), 3)}),
        _row(limit_name, summary(limit)),
    ]


def _hard_linked_ledger(ledger: Path, scratch: Path) -> Path:
    """A landing folder of hard links to the ledger files (the load refuses symbolic ones): it moves
    a rejected file to quarantine, never the bench's own copy."""
    shutil.rmtree(scratch, ignore_errors=True)
    landing = scratch / "landing"
    (landing / "posteringer").mkdir(parents=True)
    for f in ledger.glob("*.csv"):
        (landing / "posteringer" / f.name).hardlink_to(f)
    return landing


def _ledger_beside_limit(ledger: Path, scratch: Path, logs: Path, memory: Memory) -> list[Record]:
    """The ledger load alone and DuckDB's read_csv of the same files, in LIMIT_PAIRS back-to-back pairs.

    DuckDB cannot read Windows-1252 (its latin-1 reader refuses 0x80-0x9F), so its limit reads a
    UTF-8 copy of the ledger, transcoded beforehand, outside the timing."""
    utf8 = scratch.parent / "limit_utf8"
    utf8.mkdir()
    for f in ledger.glob("*.csv"):
        (utf8 / f.name).write_text(f.read_bytes().decode("cp1252"), encoding="utf-8", newline="")
    alone, limit = [], []
    for i in range(LIMIT_PAIRS):
        landing = _hard_linked_ledger(ledger, scratch)
        alone.append(
            run_stage(
                "ledger_ingest_alone",
                {
                    "landing": str(landing),
                    "warehouse": str(scratch / "w.duckdb"),
                    "quarantine": str(scratch / "quarantine"),
                },
                logs / f"pair{i}",
                memory,
            )
        )
        limit.append(
            run_stage(
                "limit_read_csv",
                {"glob": str(utf8 / "*.csv"), "scratch": str(scratch / "limit.duckdb")},
                logs / f"pair{i}",
                memory,
            )
        )
    shutil.rmtree(scratch, ignore_errors=True)
    return _pairs_summary(
        alone,
        limit,
        "ingest posteringer alone (the load task's code)",
        "limit: DuckDB read_csv of the same ledger files",
    )


SCRATCH_DATABASE = "slf_bench_scratch"


def _ledger_beside_copy_limit(
    ledger: Path, scratch: Path, logs: Path, memory: Memory, skipped: list[str]
) -> list[Record]:
    """On PostgreSQL: the ledger load alone into an empty scratch database, then the server's own
    COPY of the same files there, in LIMIT_PAIRS back-to-back pairs. Skipped (said why) when the
    bench's login may not create a database."""
    import psycopg2

    from slf_warehouse.benchmark_pg import drop_database, on_database, scratch_database

    alone, limit = [], []
    try:
        for i in range(LIMIT_PAIRS):
            landing = _hard_linked_ledger(ledger, scratch)
            try:
                scratch_database(on_database(None), SCRATCH_DATABASE)
            except psycopg2.Error as e:
                reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                skipped.append(
                    f"the ledger load alone and the COPY limit: no scratch database "
                    f"{SCRATCH_DATABASE} could be created on the server ({reason})"
                )
                return []
            args = {"landing": str(landing), "database": SCRATCH_DATABASE}
            alone.append(
                run_stage(
                    "ledger_ingest_alone_pg",
                    {**args, "quarantine": str(scratch / "quarantine")},
                    logs / f"pair{i}",
                    memory,
                )
            )
            files = [str(f) for f in sorted(ledger.glob("*.csv"))]
            limit.append(run_stage("limit_copy_pg", {**args, "files": files}, logs / f"pair{i}", memory))
    finally:
        drop_database(on_database(None), SCRATCH_DATABASE)
        shutil.rmtree(scratch, ignore_errors=True)
    return _pairs_summary(
        alone,
        limit,
        "ingest posteringer alone (the load task's code, into an empty database)",
        "limit: PostgreSQL COPY of the same ledger files (Windows-1252, text columns)",
    )


def _biggest_duckdb_mart(warehouse: Path) -> str:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' "
            "ORDER BY estimated_size DESC LIMIT 1"
        ).fetchall()[0][0]


def _compiled(name: str, run_results: list[Path]) -> tuple[str, float]:
    """(compiled SQL, seconds in dbt) of a model, from the refresh's run_results files (one per dbt
    task: one in the default mode, one per layer or model in the others)."""
    result = next(
        r
        for f in run_results
        for r in json.loads(f.read_text())["results"]
        if r["unique_id"].endswith(f".{name}")
    )
    return result["compiled_code"], result["execution_time"]


def _mart_limit(
    engine: str,
    published: Path | None,
    out: Path,
    run_results: list[Path],
    logs: Path,
    memory: Memory,
    dbt_row: Record,
) -> Record:
    """The biggest mart's compiled SQL as a plain CREATE TABLE AS, beside its time in dbt."""
    if engine == "postgres":
        from slf_warehouse.benchmark_pg import biggest_mart, on_database

        mart = biggest_mart(on_database(None))
    else:
        assert published is not None
        mart = _biggest_duckdb_mart(published)
    sql, mart_seconds = _compiled(mart, run_results)
    (out / "biggest_mart.sql").write_text(sql, encoding="utf-8")
    if engine == "postgres":
        ctas = run_stage("limit_ctas_pg", {"sql": str(out / "biggest_mart.sql")}, logs, memory)
    else:
        ctas = run_stage(
            "limit_ctas", {"warehouse": str(published), "sql": str(out / "biggest_mart.sql")}, logs, memory
        )
    dbt_row.update(
        rows=ctas["rows"],
        biggest_mart=mart,
        biggest_mart_seconds_in_dbt=round(mart_seconds, 3),
        ratio_to_limit=round(ctas["query_seconds"] / mart_seconds, 3) if mart_seconds else None,
    )
    where = " on the server" if engine == "postgres" else ""
    return _row(f"limit: CREATE TABLE AS {mart}{where}", {**ctas, "seconds": round(ctas["query_seconds"], 3)})


def _incremental(
    engine: str, published: Path | None, landing: Path, out: Path, logs: Path, memory: Memory
) -> Record:
    """The next delivery (the held-back month) built incrementally as the next refresh builds it:
    on DuckDB into a copy of the published file, on PostgreSQL into a new build (a copy of the
    published version's tables, made beforehand and timed apart, dropped afterwards)."""
    args: dict[str, object] = {
        "landing": str(landing),
        "out": str(out),
        "sources": list(MONTHLY_SOURCES),
        "target": str(out / "dbt_incremental"),
        "quarantine": str(out / "quarantine"),
    }
    if engine == "duckdb":
        assert published is not None
        next_build = out / "next_build.duckdb"
        shutil.copyfile(published, next_build)
        return run_stage("incremental_month", {**args, "warehouse": str(next_build)}, logs, memory)
    from slf_warehouse.benchmark_pg import on_database
    from slf_warehouse.warehouse_pg import PgWarehouseStore

    store = PgWarehouseStore(on_database(None))
    started = time.perf_counter()
    build = store.new_build("bench-incremental")
    prepare = round(time.perf_counter() - started, 3)
    try:
        inc = run_stage(
            "incremental_month_pg", {**args, "version": build.version, "run_id": build.run_id}, logs, memory
        )
    finally:
        blockers = _discard_waiting(store, build)
    return {**inc, "prepare_build_seconds": prepare, **({"discard_waited_for": blockers} if blockers else {})}


def _discard_waiting(store: Any, build: Any, wait_s: float = 120.0) -> list[str]:
    """Drops the build, retrying while something holds its tables past the store's lock timeout
    (a first scale-100 run failed so); returns what held them (backend type and query start)."""
    from psycopg2 import errors

    from slf_warehouse.benchmark_pg import lock_holders, on_database

    deadline = time.monotonic() + wait_s
    seen: list[str] = []
    while True:
        try:
            store.discard(build)
            return seen
        except errors.LockNotAvailable:
            seen.extend(h for h in lock_holders(on_database(None), build.prefix) if h not in seen)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _postgres_for_bench(stack: ExitStack) -> Memory:
    """The server SLF_PG_* name, or (SLF_PG_HOST not set) a throw-away one on loopback, started here
    and stopped when the bench ends, also when it fails or is sent SIGTERM."""
    from slf_warehouse.pg_raw import conninfo_from_env, server_name

    if os.environ.get("SLF_PG_HOST"):
        print(f"bench: PostgreSQL at {server_name(conninfo_from_env())} (SLF_PG_*)", file=sys.stderr)
        return Memory()
    from slf_warehouse.pg_throwaway import throwaway_postgres

    # SIGTERM would end the bench without unwinding; as SystemExit, the server is stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    started = time.perf_counter()
    server = stack.enter_context(throwaway_postgres("slf", "slf_warehouse"))
    os.environ.update(server.env())
    print(
        f"bench: started a throw-away PostgreSQL at {server.host}:{server.port} in "
        f"{time.perf_counter() - started:.1f} s (SLF_PG_HOST is not set); it is stopped at the end",
        file=sys.stderr,
    )
    return Memory(server.postmaster_pid())


def _hold_back(landing: Path, held_back: Path, incremental: bool) -> list[Path]:
    """The last ledger and payroll month are held back: after the full refresh they arrive as the
    next delivery and are built incrementally. Returns where they go back to."""
    new_month = [sorted((landing / s).glob("*.csv"))[-1] for s in MONTHLY_SOURCES] if incremental else []
    for f in new_month:
        (held_back / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.move(f, held_back / f.parent.name / f.name)
    return new_month


def _refresh_rows(
    summary: Record, samples: list[tuple[float, float, float]], run_seconds: float
) -> list[Record]:
    tasks = [t for t in summary["tasks"] if t["start"] and t["end"]]
    run_span = max(t["end"] for t in tasks) - min(t["start"] for t in tasks)
    server = (
        {"server_peak_mb": round(max(s for _, _, s in samples), 1)} if any(s for _, _, s in samples) else {}
    )
    return [
        _row(
            "Airflow between tasks (scheduling, XCom)",
            {"seconds": round(run_span - sum(t["end"] - t["start"] for t in tasks), 3)},
        ),
        _row(
            "whole refresh through Airflow (slf run)",
            {
                "seconds": round(run_seconds, 3),
                "peak_mb": round(max(mb for _, mb, _ in samples), 1),
                **server,
                "airflow_start_seconds": round(run_seconds - run_span, 3),
            },
        ),
    ]


def _load() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (`uptime`): it is shared."""
    return [round(x, 2) for x in os.getloadavg()]


def bench(opts: argparse.Namespace, memory: Memory) -> Record:
    """The whole bench on opts.engine; its report (bench.json)."""
    began, load_before = time.perf_counter(), _load()
    out = Path(opts.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    landing, run_out, logs = out / "landing", out / "run", out / "logs"
    out.mkdir(parents=True)
    pg = opts.engine == "postgres"

    gen = run_stage("generate", {"landing": str(landing), "scale": opts.scale}, logs, memory)
    rows = [_row("generate sample data", gen)]
    new_month = _hold_back(landing, out / "held_back", opts.incremental)

    summary, samples, run_seconds = run_refresh(landing, run_out, memory)
    if pg:
        from slf_warehouse.benchmark_pg import loaded_rows, on_database

        published, loaded = None, loaded_rows(on_database(None), summary["run_id"])
    else:
        from slf_warehouse.warehouse import WarehouseStore

        published = WarehouseStore(run_out / "warehouse").published().path
        loaded = _loaded_duckdb(published, summary["run_id"])
    rows.extend(
        _task_rows(
            summary, samples, loaded, run_out / "answers" / "index.json", memory.server_pid is not None
        )
    )
    rows.extend(_refresh_rows(summary, samples, run_seconds))

    skipped: list[str] = []
    ledger_args = (landing / "posteringer", out / "pairs", logs, memory)
    limits = _ledger_beside_copy_limit(*ledger_args, skipped) if pg else _ledger_beside_limit(*ledger_args)
    if limits:
        ledger = next(r for r in rows if r["stage"] == "ingest posteringer")
        ledger["ratio_to_limit"] = round(ledger["rows_per_second"] / limits[1]["rows_per_second"], 3)
        rows.extend(limits)

    from slf_warehouse.quality.history import dbt_run_results_dir

    run_results = sorted(
        dbt_run_results_dir(run_out / "quality", summary["run_id"]).glob("run_results*.json")
    )
    dbt_row = next(r for r in rows if r["stage"].startswith("dbt build"))
    rows.append(_mart_limit(opts.engine, published, out, run_results, logs, memory, dbt_row))

    for f in new_month:
        shutil.move(out / "held_back" / f.parent.name / f.name, f)
    if opts.incremental:
        inc = _incremental(opts.engine, published, landing, out, logs, memory)
        full = sum(r["seconds"] for r in rows if r["stage"] in ("ingest posteringer", "ingest loen"))
        rows.append(
            _row(
                f"incremental: next month ({', '.join(f.name for f in new_month)}), ingest + dbt",
                {**inc, "ratio_to_full": round(inc["seconds"] / (full + dbt_row["seconds"]), 3)},
            )
        )
    return {
        "scale": opts.scale,
        "engine": opts.engine,
        "postgres_started_by_bench": memory.server_pid is not None,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": _load(),
        },
        "generated": gen,
        "run_id": summary["run_id"],
        "dag_parse_seconds": summary["parse_seconds"],
        "bench_seconds": round(time.perf_counter() - began, 1),
        "skipped": skipped,
        "stages": rows,
    }


def _print_table(report: Record, out: Path) -> None:
    plain = (
        "stage",
        "rows",
        "seconds",
        "rows_per_second",
        "peak_mb",
        "ratio_to_limit",
        "ratio_to_full",
        "tasks",
    )
    print(f"\nscale {report['scale']} on {report['engine']}, {os.cpu_count()} cores — {out / 'bench.json'}")
    print(f"{'stage':50} {'rows':>10} {'s':>8} {'rows/s':>10} {'peak MB':>8} {'ratio':>7}")
    for r in report["stages"]:
        ratio = r.get("ratio_to_limit", r.get("ratio_to_full"))
        extra = {k: v for k, v in r.items() if k not in plain}
        print(
            f"{r['stage'][:50]:50} {r['rows'] if r['rows'] is not None else '':>10} {r['seconds']:>8.2f} "
            f"{r['rows_per_second'] or '':>10} {r['peak_mb'] if r['peak_mb'] is not None else '':>8} "
            f"{ratio if ratio is not None else '':>7}"
            + (f"  {json.dumps(extra, ensure_ascii=False)}" if extra else "")
        )
    for reason in report["skipped"]:
        print(f"skipped: {reason}")
    parse = ", ".join(f"{name} {s:.3f} s" for name, s in report["dag_parse_seconds"].items())
    print(f"DAG files parse (DagBag, as the dag-processor measures it): {parse}")
    machine = report["machine"]
    print(
        f"load average (1, 5, 15 min) before {machine['load_average_before']}, "
        f"after {machine['load_average_after']}"
    )
    print(f"bench took {report['bench_seconds']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slf-bench")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--out", default="output/bench")
    parser.add_argument(
        "--engine",
        choices=("duckdb", "postgres"),
        default=os.environ.get("SLF_WAREHOUSE_ENGINE") or "duckdb",
        help="the warehouse engine the refresh runs on (SLF_WAREHOUSE_ENGINE); postgres: the server "
        "SLF_PG_* name, or a throw-away one on loopback when SLF_PG_HOST is not set",
    )
    parser.add_argument(
        "--incremental",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time the next month built incrementally (default: at scale > 1; at scale 1 "
        "a month is 86 lines and the stage would time dbt's start-up only)",
    )
    opts = parser.parse_args(argv)
    if opts.incremental is None:
        opts.incremental = opts.scale > 1
    from slf_warehouse.airflow_env import airflow_environment

    os.environ.update(airflow_environment())
    if not os.environ.get("SLF_PSEUDONYM_KEY"):
        raise SystemExit("set SLF_PSEUDONYM_KEY (make bench does)")
    os.environ["SLF_WAREHOUSE_ENGINE"] = opts.engine
    with ExitStack() as stack:
        memory = _postgres_for_bench(stack) if opts.engine == "postgres" else Memory()
        report = bench(opts, memory)
    out = Path(opts.out).resolve()
    (out / "bench.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    _print_table(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
