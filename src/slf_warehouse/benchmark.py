"""`make bench`: a full refresh at a scale factor, each stage timed beside DuckDB's own limit.

The refresh runs once, the way finance staff run it (`slf run`: slf_refresh through Airflow), and
each stage's seconds are that run's task durations: nothing is run twice to be measured. Memory is
sampled while it runs (the resident memory of the whole process tree: Airflow, the tasks, dbt's
subprocess), so each stage's peak is the tree's peak during that task. Beside it, in their own
processes: DuckDB's own `read_csv` of the same ledger files, a plain `CREATE TABLE AS` of the
biggest mart, and the next month's delivery built incrementally. Results go to OUT/bench.json and a
table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
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


def run_stage(stage: str, args: dict[str, object], log_dir: Path) -> Record:
    """One stage in a child process; its peak memory is the child's own (max RSS from wait4)."""
    code = f"import json, sys; from pathlib import Path; a = json.loads(sys.argv[1]); {STAGE_CODE[stage]}"
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{stage}.out", log_dir / f"{stage}.err"
    started = time.perf_counter()
    print(f"bench: {stage} …", file=sys.stderr, flush=True)
    # Files, not pipes: dbt writes its whole log to stdout, which would fill a pipe nobody reads yet.
    with out_path.open("w") as out, err_path.open("w") as err:
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
    return {"seconds": round(seconds, 3), "peak_mb": round(usage.ru_maxrss / 1024, 1), **result}


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


def run_refresh(landing: Path, out: Path) -> tuple[Record, list[tuple[float, float]], float]:
    """`slf run` with its process tree's memory sampled; returns (summary, samples (time, MB), seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "slf_warehouse.cli", "run", "--landing", str(landing), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.time(), _tree_rss_kib(proc.pid) / 1024))
            done.wait(SAMPLE_INTERVAL)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    print("bench: the refresh (slf run) …", file=sys.stderr, flush=True)
    kept = []
    assert proc.stdout is not None
    for line in proc.stdout:  # slf run's step lines, shown as they come (its log stays in its file)
        kept.append(line)
        if line.startswith("  ") and not line.startswith("   "):
            print(f"bench: {line.rstrip()}", file=sys.stderr, flush=True)
    proc.wait()
    output = "".join(kept)
    done.set()
    sampler.join()
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
    summary: Record, samples: list[tuple[float, float]], warehouse: Path, answers_index: Path
) -> list[Record]:
    """One row per stage of the refresh, from its task instances."""
    import duckdb

    tasks = [t for t in summary["tasks"] if t["start"] and t["end"]]

    def peak(start: float, end: float) -> float | None:
        inside = [mb for t, mb in samples if start - SAMPLE_INTERVAL <= t <= end + SAMPLE_INTERVAL]
        return round(max(inside), 1) if inside else None

    def stage(name: str, chosen: list[Record], **extra: object) -> Record:
        seconds = sum(t["end"] - t["start"] for t in chosen)
        start, end = min(t["start"] for t in chosen), max(t["end"] for t in chosen)
        return _row(
            name,
            {
                "seconds": round(seconds, 3),
                "peak_mb": peak(start, end),
                "tasks": [t["task_id"] for t in chosen],
                **extra,
            },
        )

    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded = dict(
            con.execute(
                "SELECT source, sum(rows)::BIGINT FROM audit.load_manifest WHERE run_id = ? "
                "AND status = 'loaded' GROUP BY source",
                [summary["run_id"]],
            ).fetchall()
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


def _ledger_beside_limit(ledger: Path, utf8: Path, scratch: Path, logs: Path) -> tuple[Record, Record]:
    """The ledger load alone and DuckDB's read_csv of the same files, in LIMIT_PAIRS back-to-back
    pairs; returns their rows (median seconds of each, the median of the pairs' ratios)."""
    from statistics import median

    alone, limit = [], []
    for i in range(LIMIT_PAIRS):
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        landing = scratch / "landing"
        # a folder of hard links (the load refuses symbolic ones): it moves a rejected file to
        # quarantine, never the bench's own copy
        (landing / "posteringer").mkdir(parents=True)
        for f in ledger.glob("*.csv"):
            (landing / "posteringer" / f.name).hardlink_to(f)
        alone.append(
            run_stage(
                "ledger_ingest_alone",
                {
                    "landing": str(landing),
                    "warehouse": str(scratch / "w.duckdb"),
                    "quarantine": str(scratch / "quarantine"),
                },
                logs / f"pair{i}",
            )
        )
        limit.append(
            run_stage(
                "limit_read_csv",
                {"glob": str(utf8 / "*.csv"), "scratch": str(scratch / "limit.duckdb")},
                logs / f"pair{i}",
            )
        )
    shutil.rmtree(scratch, ignore_errors=True)
    # same rows in both, so the ratio of rates is the inverse ratio of seconds
    ratios = [lim["seconds"] / a["seconds"] for a, lim in zip(alone, limit)]

    def summary(runs: list[Record]) -> Record:
        return {
            "rows": runs[0]["rows"],
            "seconds": round(median(r["seconds"] for r in runs), 3),
            "peak_mb": max(r["peak_mb"] for r in runs),
            "runs_seconds": [r["seconds"] for r in runs],
        }

    return (
        _row(
            "ingest posteringer alone (the load task's code)",
            {**summary(alone), "ratio_to_limit": round(median(ratios), 3)},
        ),
        _row("limit: DuckDB read_csv of the same ledger files", summary(limit)),
    )


def _biggest_mart(warehouse: Path, run_results: list[Path]) -> tuple[str, str, float]:
    """(name, compiled SQL, seconds in dbt) of the biggest table in marts."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        name = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts' "
            "ORDER BY estimated_size DESC LIMIT 1"
        ).fetchall()[0][0]
    # one file per dbt task (one in the default mode, one per layer or model in the others)
    result = next(
        r
        for f in run_results
        for r in json.loads(f.read_text())["results"]
        if r["unique_id"].endswith(f".{name}")
    )
    return name, result["compiled_code"], result["execution_time"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slf-bench")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--out", default="output/bench")
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
    from slf_warehouse.warehouse import WarehouseStore

    os.environ.update(airflow_environment())
    if not os.environ.get("SLF_PSEUDONYM_KEY"):
        raise SystemExit("set SLF_PSEUDONYM_KEY (make bench does)")
    began = time.perf_counter()
    out = Path(opts.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    landing, run_out, logs = out / "landing", out / "run", out / "logs"
    out.mkdir(parents=True)
    rows: list[Record] = []

    gen = run_stage("generate", {"landing": str(landing), "scale": opts.scale}, logs)
    rows.append(_row("generate sample data", gen))
    # The last ledger and payroll month are held back: after the full refresh they arrive as the
    # next delivery and are built incrementally.
    held_back = out / "held_back"
    new_month = (
        [sorted((landing / source).glob("*.csv"))[-1] for source in MONTHLY_SOURCES]
        if opts.incremental
        else []
    )
    for f in new_month:
        (held_back / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.move(f, held_back / f.parent.name / f.name)

    summary, samples, run_seconds = run_refresh(landing, run_out)
    published = WarehouseStore(run_out / "warehouse").published().path
    stages = _task_rows(summary, samples, published, run_out / "answers" / "index.json")
    rows.extend(stages)
    tasks = [t for t in summary["tasks"] if t["start"] and t["end"]]
    run_span = max(t["end"] for t in tasks) - min(t["start"] for t in tasks)
    rows.append(
        _row(
            "Airflow between tasks (scheduling, XCom)",
            {"seconds": round(run_span - sum(t["end"] - t["start"] for t in tasks), 3)},
        )
    )
    rows.append(
        _row(
            "whole refresh through Airflow (slf run)",
            {
                "seconds": round(run_seconds, 3),
                "peak_mb": round(max(mb for _, mb in samples), 1),
                "airflow_start_seconds": round(run_seconds - run_span, 3),
            },
        )
    )

    # DuckDB's limits on the same data. It cannot read Windows-1252 (its latin-1 reader refuses
    # 0x80-0x9F), so the ledger is transcoded to UTF-8 beforehand, outside the timing.
    utf8 = out / "limit_utf8"
    utf8.mkdir()
    for f in (landing / "posteringer").glob("*.csv"):
        (utf8 / f.name).write_text(f.read_bytes().decode("cp1252"), encoding="utf-8", newline="")
    alone, limits = _ledger_beside_limit(landing / "posteringer", utf8, out / "pairs", logs)
    ledger = next(r for r in rows if r["stage"] == "ingest posteringer")
    ledger["ratio_to_limit"] = round(ledger["rows_per_second"] / limits["rows_per_second"], 3)
    rows.extend([alone, limits])

    from slf_warehouse.quality.history import dbt_run_results_dir

    run_results = sorted(
        dbt_run_results_dir(run_out / "quality", summary["run_id"]).glob("run_results*.json")
    )
    mart, sql, mart_seconds = _biggest_mart(published, run_results)
    (out / "biggest_mart.sql").write_text(sql, encoding="utf-8")
    ctas = run_stage("limit_ctas", {"warehouse": str(published), "sql": str(out / "biggest_mart.sql")}, logs)
    dbt_row = next(r for r in rows if r["stage"].startswith("dbt build"))
    dbt_row.update(
        rows=ctas["rows"],
        biggest_mart=mart,
        biggest_mart_seconds_in_dbt=round(mart_seconds, 3),
        ratio_to_limit=round(ctas["query_seconds"] / mart_seconds, 3) if mart_seconds else None,
    )
    rows.append(_row(f"limit: CREATE TABLE AS {mart}", {**ctas, "seconds": round(ctas["query_seconds"], 3)}))

    # The next delivery: the held-back month, into a copy of the published warehouse (as the
    # next refresh's build starts), built incrementally.
    for f in new_month:
        shutil.move(held_back / f.parent.name / f.name, f)
    if opts.incremental:
        next_build = out / "next_build.duckdb"
        shutil.copyfile(published, next_build)
        inc = run_stage(
            "incremental_month",
            {
                "landing": str(landing),
                "warehouse": str(next_build),
                "out": str(out),
                "sources": list(MONTHLY_SOURCES),
                "target": str(out / "dbt_incremental"),
                "quarantine": str(out / "quarantine"),
            },
            logs,
        )
        full = (
            sum(r["seconds"] for r in rows if r["stage"] in ("ingest posteringer", "ingest loen"))
            + dbt_row["seconds"]
        )
        rows.append(
            _row(
                f"incremental: next month ({', '.join(f.name for f in new_month)}), ingest + dbt",
                {**inc, "ratio_to_full": round(inc["seconds"] / full, 3)},
            )
        )

    report = {
        "scale": opts.scale,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "generated": gen,
        "run_id": summary["run_id"],
        "dag_parse_seconds": summary["parse_seconds"],
        "bench_seconds": round(time.perf_counter() - began, 1),
        "stages": rows,
    }
    (out / "bench.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nscale {opts.scale} on {os.cpu_count()} cores — {out / 'bench.json'}")
    print(f"{'stage':50} {'rows':>10} {'s':>8} {'rows/s':>10} {'peak MB':>8} {'ratio':>7}")
    for r in rows:
        ratio = r.get("ratio_to_limit", r.get("ratio_to_full"))
        extra = {
            k: v
            for k, v in r.items()
            if k
            not in (
                "stage",
                "rows",
                "seconds",
                "rows_per_second",
                "peak_mb",
                "ratio_to_limit",
                "ratio_to_full",
                "tasks",
            )
        }
        print(
            f"{r['stage'][:50]:50} {r['rows'] if r['rows'] is not None else '':>10} {r['seconds']:>8.2f} "
            f"{r['rows_per_second'] or '':>10} {r['peak_mb'] if r['peak_mb'] is not None else '':>8} "
            f"{ratio if ratio is not None else '':>7}"
            + (f"  {json.dumps(extra, ensure_ascii=False)}" if extra else "")
        )
    parse = ", ".join(f"{name} {s:.3f} s" for name, s in summary["parse_seconds"].items())
    print(f"DAG files parse (DagBag, as the dag-processor measures it): {parse}")
    print(f"bench took {report['bench_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
