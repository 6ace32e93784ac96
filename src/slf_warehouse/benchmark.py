"""`make bench`: a full refresh at a scale factor, each stage timed beside DuckDB's own limit.

Every stage runs in a child process so its peak memory (max RSS, from wait4) is its own.
Results go to OUT/bench/bench.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from slf_warehouse.ingest.loading import LOAD_ORDER

STAGE_CODE = {
    "generate": "from slf_warehouse.scaled_data import write_scaled_sample as w; import json,sys; "
                "print(json.dumps(w(Path(a['landing']), a['scale'])))",
    "ingest": "from slf_warehouse.ingest import ingest_source; import json; "
              "r = ingest_source(a['source'], Path(a['landing']), Path(a['warehouse']), Path(a['quarantine'])); "
              "print(json.dumps({'rows': sum(f.rows for f in r.files), 'rejected': len(r.rejected)}))",
    "limit_read_csv": "import duckdb, json; c = duckdb.connect(a['scratch']); "
                      "c.execute(\"CREATE OR REPLACE TABLE ledger AS SELECT * FROM read_csv(?, delim=';', "
                      "header=true, all_varchar=true, encoding='utf-8')\", [a['glob']]); "
                      "print(json.dumps({'rows': c.execute('SELECT count(*) FROM ledger').fetchall()[0][0]}))",
    "dbt_build": "from slf_warehouse import pipeline; from slf_warehouse.settings import Settings; "
                 "pipeline.dbt_build(Settings.from_env(a['landing'], a['out']), Path(a['warehouse']), "
                 "Path(a['target']))",
    "limit_ctas": "import duckdb, json, time; c = duckdb.connect(a['warehouse']); sql = open(a['sql']).read(); "
                  "t = time.perf_counter(); c.execute('CREATE OR REPLACE TEMP TABLE bench_ctas AS ' + sql); "
                  "print(json.dumps({'rows': c.execute('SELECT count(*) FROM bench_ctas').fetchall()[0][0], "
                  "'query_seconds': time.perf_counter() - t}))",
    "quality": "from slf_warehouse.quality.checkpoint import run_quality_checks; import json; "
               "r = run_quality_checks(Path(a['warehouse']), Path(a['out']) / 'quality', 'bench', "
               "Path(a['project']) / 'expectations'); print(json.dumps({'success': r.success}))",
    "render": "from slf_warehouse.answers.render import render_inquiry; import json, time; "
              "t = time.perf_counter(); r = render_inquiry(Path(a['warehouse']), Path(a['inquiry']), "
              "Path(a['out']) / 'answers', run_info={'run_id': 'bench'}); "
              "print(json.dumps({'rows': 1, 'pdf_seconds': time.perf_counter() - t}))",
    # As the dag-processor measures it: `airflow dags report` parses each file after airflow is imported.
    "dag_import": "import subprocess, sys, json, os; p = subprocess.run([os.path.join(os.path.dirname("
                  "sys.executable), 'airflow'), 'dags', 'report', '-o', 'json'], capture_output=True, text=True); "
                  "r = json.loads(p.stdout.strip().splitlines()[-1]); "
                  "print(json.dumps({'parse_seconds': {x['file']: float(x['duration'].split(':')[-1]) for x in r}}))",
    "whole_run": "import subprocess, sys, json; p = subprocess.run([sys.executable, '-m', 'slf_warehouse.cli', "
                 "'run', '--landing', a['landing'], '--out', a['out']], capture_output=True, text=True); "
                 "print(json.dumps({'returncode': p.returncode}))",
}


def run_stage(stage: str, args: dict[str, object]) -> dict[str, object]:
    code = f"import json, sys; from pathlib import Path; a = json.loads(sys.argv[1]); {STAGE_CODE[stage]}"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed ({proc.returncode}):\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else {}
    # ru_maxrss is in KiB on Linux: the child's own peak, including DuckDB's native memory.
    return {"seconds": round(seconds, 3), "peak_mb": round(usage.ru_maxrss / 1024, 1), **result}


def _row(name: str, r: dict[str, object]) -> dict[str, object]:
    rows = r.get("rows")
    rate = round(rows / r["seconds"]) if isinstance(rows, int) and rows and r["seconds"] else None
    return {"stage": name, "rows": rows, "seconds": r["seconds"], "rows_per_second": rate,
            "peak_mb": r["peak_mb"], **{k: v for k, v in r.items() if k not in ("rows", "seconds", "peak_mb")}}


def _biggest_mart(warehouse: Path, target: Path) -> tuple[str, Path]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute("SELECT table_name, estimated_size FROM duckdb_tables() WHERE schema_name = 'marts' "
                             "ORDER BY estimated_size DESC").fetchall()
    name = tables[0][0]
    compiled = next(target.rglob(f"compiled/**/marts/{name}.sql"))
    return name, compiled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="slf-bench")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--out", default="output/bench")
    parser.add_argument("--skip-whole-run", action="store_true")
    opts = parser.parse_args(argv)
    from slf_warehouse.airflow_env import airflow_environment
    from slf_warehouse.settings import project_dir

    os.environ.update(airflow_environment())
    if not os.environ.get("SLF_PSEUDONYM_KEY"):
        raise SystemExit("set SLF_PSEUDONYM_KEY (make bench does)")
    project = project_dir()
    out = Path(opts.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    landing, warehouse, target = out / "landing", out / "warehouse.duckdb", out / "dbt_target"
    out.mkdir(parents=True)
    base = {"landing": str(landing), "warehouse": str(warehouse), "out": str(out), "project": str(project)}
    rows: list[dict[str, object]] = []

    gen = run_stage("generate", {**base, "scale": opts.scale})
    rows.append(_row("generate sample data", gen))
    for source in LOAD_ORDER:
        r = run_stage("ingest", {**base, "source": source, "quarantine": str(out / "quarantine" / source)})
        rows.append(_row(f"ingest {source}", r))
    # DuckDB cannot read Windows-1252 here (its latin-1 reader refuses 0x80-0x9F), so its limit is
    # measured on the same rows transcoded to UTF-8 beforehand, outside the timing.
    utf8 = out / "limit_utf8"
    utf8.mkdir()
    for f in (landing / "posteringer").glob("*.csv"):
        (utf8 / f.name).write_text(f.read_bytes().decode("cp1252"), encoding="utf-8", newline="")
    limit = run_stage("limit_read_csv", {"glob": str(utf8 / "*.csv"), "scratch": str(out / "limit.duckdb")})
    rows.append(_row("limit: DuckDB read_csv of the ledger", limit))
    ingest_ledger = next(r for r in rows if r["stage"] == "ingest posteringer")
    limit_row = rows[-1]
    ingest_ledger["ratio_to_limit"] = round(ingest_ledger["rows_per_second"] / limit_row["rows_per_second"], 3)

    dbt = run_stage("dbt_build", {**base, "target": str(target)})
    mart, compiled = _biggest_mart(warehouse, target)
    ctas = run_stage("limit_ctas", {"warehouse": str(warehouse), "sql": str(compiled)})
    results = json.loads((target / "run_results.json").read_text())["results"]
    mart_seconds = next(r["execution_time"] for r in results if r["unique_id"].endswith(f".{mart}"))
    rows.append(_row("dbt build (all models and tests)", {**dbt, "rows": ctas["rows"]}))
    rows[-1]["ratio_to_limit"] = round(ctas["query_seconds"] / mart_seconds, 3) if mart_seconds else None
    rows[-1]["biggest_mart"] = mart
    rows[-1]["biggest_mart_seconds_in_dbt"] = round(mart_seconds, 3)
    rows.append(_row(f"limit: CREATE TABLE AS {mart}", {**ctas, "seconds": round(ctas["query_seconds"], 3)}))
    rows.append(_row("quality checks", run_stage("quality", base)))
    for inquiry in sorted((project / "inquiries").glob("*.yaml")):
        r = run_stage("render", {**base, "inquiry": str(inquiry)})
        rows.append(_row(f"render {inquiry.stem}", r))
    rows.append(_row("DAG files parse (airflow dags report)", run_stage("dag_import", {})))
    if not opts.skip_whole_run:
        whole = run_stage("whole_run", {"landing": str(landing), "out": str(out / "run")})
        rows.append(_row("whole refresh through Airflow (slf run)", whole))

    report = {"scale": opts.scale, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                                "python": platform.python_version()},
              "generated": gen, "stages": rows}
    (out / "bench.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nscale {opts.scale} on {os.cpu_count()} cores — {out / 'bench.json'}")
    print(f"{'stage':48} {'rows':>10} {'s':>8} {'rows/s':>10} {'peak MB':>8} {'ratio':>7}")
    for r in rows:
        ratio = r.get("ratio_to_limit")
        print(f"{r['stage']:48} {r['rows'] if r['rows'] is not None else '':>10} {r['seconds']:>8.2f} "
              f"{r['rows_per_second'] or '':>10} {r['peak_mb']:>8.0f} {ratio if ratio is not None else '':>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
