"""`slf`: the commands finance staff, answer writers and scripts call."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slf_warehouse.run_lock import OutputLock


def _sample_data(args: argparse.Namespace) -> int:
    from slf_warehouse.sample_data import write_sample_data

    written = write_sample_data(Path(args.out))
    for source, files in written.items():
        print(f"{source}: {len(files)} file(s) in {Path(args.out) / source}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """The main job, through Airflow: the slf_refresh DAG run once with dag.test(), holding the
    output folder's lock throughout (its Airflow process shares it, so it outlives a killed CLI)."""
    from slf_warehouse.run_lock import RunInProgress, hold_output

    from slf_warehouse.pipeline import StepFailed, check_refresh_engine
    from slf_warehouse.settings import Settings

    landing, out = Path(args.landing).resolve(), Path(args.out).resolve()
    if not landing.is_dir():
        print(f"slf run: landing folder {landing} does not exist", file=sys.stderr)
        return 2
    try:
        check_refresh_engine(Settings.from_env(landing, out))
    except (StepFailed, ValueError) as refused:
        print(f"slf run: {refused}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    try:
        with hold_output(out) as lock:
            return _run_locked(args, landing, out, lock)
    except RunInProgress as busy:
        print(f"slf run: refused: {busy}", file=sys.stderr)
        return 3


def _run_locked(args: argparse.Namespace, landing: Path, out: Path, lock: OutputLock) -> int:
    from slf_warehouse.airflow_env import airflow_environment, migrate_metadata_db

    env = airflow_environment()
    env.update(lock.env())
    env.update({"SLF_LANDING_DIR": str(landing), "SLF_OUTPUT_DIR": str(out)})
    if env.get("SLF_DBT_MODE") == "watcher":
        # dag.test() runs one task at a time in this process: a watcher sensor that starts before
        # the producer has run waits for it until its timeout. Watcher mode is for the scheduler
        # (`slf airflow`).
        print("slf run: SLF_DBT_MODE=watcher needs Airflow's scheduler; running dbt as one "
              "`dbt build` task instead", file=sys.stderr)
        env["SLF_DBT_MODE"] = "build"
    migrate_metadata_db(env)
    conf = json.dumps({"landing_dir": str(landing), "output_dir": str(out),
                       "quality_override": args.quality_override or "", "full_refresh": args.full_refresh})
    started = time.time()
    log_path = out / "logs" / "slf_refresh.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.run([sys.executable, "-m", "slf_warehouse.airflow_runner", "slf_refresh", conf],
                              env=env, stdout=log, stderr=subprocess.STDOUT, text=True, pass_fds=(lock.fd,))
    log_lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    summary = next((line for line in reversed(log_lines) if line.startswith('{"dag_id"')), "{}")
    if proc.returncode != 0:
        print(f"slf run: the refresh failed ({summary}).", file=sys.stderr)
        _print_failure_reasons(log_path)
        _print_rejections(out / "quarantine", since=started)
        print(f"Full Airflow log: {log_path}", file=sys.stderr)
        return 1
    print(f"slf run: refresh succeeded ({summary})")
    print(f"  answers:  {out / 'answers'}")
    print(f"  quality:  {out / 'quality'} (report.pdf, data_docs/index.html)")
    print(f"  log:      {log_path}")
    return 0


def _print_failure_reasons(log_path: Path) -> None:
    """The lines of the Airflow log that say why a task failed, so nobody must dig for them."""
    interesting = ("IngestFailed", "StepFailed", "ConfigurationError", "FileRejected", "ERROR", "Error:",
                   "- check ", "- reconciliation ")
    seen: set[str] = set()
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if any(k in line for k in interesting) and "Traceback" not in line and not line.strip().startswith("raise ") and line not in seen and len(seen) < 40:
            seen.add(line)
            print("  " + line.strip()[:400], file=sys.stderr)


def _print_rejections(quarantine: Path, since: float) -> None:
    for report in sorted(quarantine.glob("*/*.errors.txt")):
        if report.stat().st_mtime >= since:
            print(f"Rejected {report.parent.name}/{report.name.removesuffix('.errors.txt')} "
                  f"(moved to {report.parent}):", file=sys.stderr)
            for line in report.read_text(encoding="utf-8").splitlines()[:20]:
                print(f"  {line}", file=sys.stderr)


def _ingest(args: argparse.Namespace) -> int:
    from slf_warehouse.ingest import ConfigurationError, ingest_landing

    try:
        report = ingest_landing(Path(args.landing), Path(args.warehouse))
    except ConfigurationError as e:
        print(f"slf ingest: {e}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if report.rejected else 0


def _answer(args: argparse.Namespace) -> int:
    from slf_warehouse.answers.published import answer_from_published
    from slf_warehouse.warehouse import NoPublishedWarehouse

    from slf_warehouse.answers.inquiry import InquiryError

    given = Path(args.inquiry)
    inquiry = given.resolve() if given.is_file() else args.inquiry  # else a name in inquiries/
    try:
        answer = answer_from_published(inquiry, Path(args.out).resolve(),
                                       out_dir=Path(args.to).resolve() if args.to else None)
    except (NoPublishedWarehouse, InquiryError) as e:
        print(f"slf answer: {e}", file=sys.stderr)
        return 2
    print(f"{answer['pdf']}\n{answer['html']}")
    if not answer["official"]:
        print("not official: the inquiry file is not one of the project's inquiries/; the letter says so on "
              "every page", file=sys.stderr)
    if not answer["first_edition"]:
        print("figures changed since the last edition: " + (", ".join(answer["changed_figures"]) or "none"))
    return 0


def _airflow(args: argparse.Namespace) -> int:
    """The Airflow UI and scheduler on loopback, with the project's DAGs (foreground; Ctrl-C stops)."""
    from slf_warehouse.airflow_env import airflow_environment, migrate_metadata_db
    from slf_warehouse.local_airflow import private_password_file, run_components

    env = airflow_environment()
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    env.setdefault("AIRFLOW__API__PORT", str(args.port))
    env.setdefault("AIRFLOW__API__BASE_URL", f"http://127.0.0.1:{args.port}")
    env.setdefault("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", f"http://127.0.0.1:{args.port}/execution/")
    env.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "True")
    # One laptop, one person: the simple auth manager (the shared deployment uses FAB, docs/deploy.md).
    env.setdefault("AIRFLOW__CORE__AUTH_MANAGER",
                   "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    # Under the scheduler the dbt step shows one task per model (Cosmos watcher mode: one producer
    # runs `dbt build`, one poking sensor reports each model); docs/performance.md has its cost.
    env.setdefault("SLF_DBT_MODE", "watcher")
    migrate_metadata_db(env)
    password_file = private_password_file(env)
    print(f"Airflow UI: http://127.0.0.1:{args.port}  (user admin; the generated password is printed below "
          f"and kept in {password_file}, readable by you only)", flush=True)
    return run_components(env)


def _deploy(args: argparse.Namespace) -> int:
    """The shared deployment's start-up steps (docker-compose.yml runs them)."""
    from slf_warehouse.deployment import DeploymentError, init_deployment, require_strong_secrets, serve

    try:
        if args.step == "check":
            require_strong_secrets(dict(os.environ))
            print("slf deploy: secrets look strong")
        elif args.step == "init":
            for line in init_deployment():
                print(f"slf deploy init: {line}")
        else:
            if not args.component:
                print("slf deploy serve: name the Airflow component, e.g. `scheduler`", file=sys.stderr)
                return 2
            serve(args.component)
    except DeploymentError as e:
        print(f"slf deploy {args.step}: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    from slf_warehouse.file_modes import private_outputs

    private_outputs()  # outputs and logs may hold personal data; children inherit the umask
    parser = argparse.ArgumentParser(prog="slf", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample-data", help="write the deterministic sample data set in the contract's formats")
    p.add_argument("--out", required=True, help="landing folder to write (one folder per source)")
    p.set_defaults(func=_sample_data)

    p = sub.add_parser("run", help="run the refresh end to end through Airflow (slf_refresh)")
    p.add_argument("--landing", required=True, help="landing folder with one folder per source")
    p.add_argument("--out", required=True, help="output folder: answers/, quality/, warehouse/, logs/")
    p.add_argument("--quality-override", metavar="REASON",
                   help="publish even if quality checks fail; the reason is recorded in the run history and "
                        "printed on every page of the answers")
    p.add_argument("--full-refresh", action="store_true",
                   help="rebuild dbt's incremental models from every loaded row (after a change to their logic)")
    p.set_defaults(func=_run)

    p = sub.add_parser("ingest", help="validate and load a landing folder into a warehouse file (no Airflow)")
    p.add_argument("--landing", required=True)
    p.add_argument("--warehouse", required=True, help="DuckDB file")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("answer", help="render one inquiry from the last published warehouse")
    p.add_argument("inquiry", help="inquiry YAML file (or its name in inquiries/)")
    p.add_argument("--out", required=True,
                   help="the refresh's output folder: its published warehouse is read, the PDF goes to answers/")
    p.add_argument("--to", metavar="DIR",
                   help="folder for the letter (default: answers/ for the project's inquiries/, answers/drafts/ "
                        "for an inquiry file from elsewhere, which never publishes to answers/)")
    p.set_defaults(func=_answer)

    p = sub.add_parser("airflow", help="start Airflow (UI, API, scheduler) on loopback with the project's DAGs")
    p.add_argument("--port", type=int, default=int(os.environ.get("SLF_AIRFLOW_PORT", "8080")))
    p.set_defaults(func=_airflow)

    p = sub.add_parser("deploy", help="the shared deployment: check secrets, init roles and users, serve a component")
    p.add_argument("step", choices=["check", "init", "serve"],
                   help="check: refuse placeholder/short secrets; init: migrate, pool, roles, users from "
                        "SLF_USERS_FILE; serve: check, then run `airflow COMPONENT...`")
    p.add_argument("component", nargs=argparse.REMAINDER, help="for serve: the airflow command and its options")
    p.set_defaults(func=_deploy)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
