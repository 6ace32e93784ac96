"""`slf`: the commands finance staff, answer writers and scripts call."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slf_warehouse.preflight import EXIT_USAGE, UsageError

if TYPE_CHECKING:
    from datetime import date

    from slf_warehouse.run_lock import OutputLock

EXIT_CODES = """exit codes:
  0  done
  1  data rejected, the quality gate refused publication, a step of the refresh failed, or an
     inquiry file has problems (`slf inquiry check`)
  2  a usage or configuration mistake: a missing or misspelt inquiry, no published warehouse yet,
     no SLF_PSEUDONYM_KEY, a landing folder that does not exist or has no source folders, an output
     folder that is not writable (the message says which and what to do)
  3  another refresh holds the output folder (`slf run`)

Full logs: `slf run` writes OUT/logs/slf_refresh.log; answer, figures and ingest write OUT/logs/slf_*.log.
-v/--verbose shows them live as well."""


def _sample_data(args: argparse.Namespace) -> int:
    from slf_warehouse.sample_data import write_sample_data

    written = write_sample_data(Path(args.out))
    for source, files in written.items():
        print(f"{source}: {len(files)} file(s) in {Path(args.out) / source}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """The main job, through Airflow: the slf_refresh DAG run once with dag.test(), holding the
    output folder's lock throughout (its Airflow process shares it, so it outlives a killed CLI)."""
    from slf_warehouse.preflight import (
        EXIT_BUSY,
        require_landing,
        require_pseudonym_key,
        require_refresh_engine,
        require_writable,
    )
    from slf_warehouse.run_lock import RunInProgress, hold_output
    from slf_warehouse.settings import Settings

    landing, out = Path(args.landing).resolve(), Path(args.out).resolve()
    # the configuration first: with an engine it cannot write, no folder matters
    require_refresh_engine(Settings.from_env(landing, out))
    require_landing(landing)
    require_pseudonym_key()
    require_writable(out)
    try:
        with hold_output(out) as lock:
            return _run_locked(args, landing, out, lock)
    except RunInProgress as busy:
        print(f"slf run: refused: {busy}", file=sys.stderr)
        return EXIT_BUSY


def _run_locked(args: argparse.Namespace, landing: Path, out: Path, lock: OutputLock) -> int:
    from slf_warehouse.airflow_env import airflow_environment, migrate_metadata_db
    from slf_warehouse.run_progress import PROGRESS_FD_ENV, display_for, follow
    from slf_warehouse.run_summary import build_summary, format_summary

    env = airflow_environment()
    env.update(lock.env())
    env.update({"SLF_LANDING_DIR": str(landing), "SLF_OUTPUT_DIR": str(out)})
    if env.get("SLF_DBT_MODE") == "watcher":
        # dag.test() runs one task at a time in this process: a watcher sensor that starts before
        # the producer has run waits for it until its timeout. Watcher mode is for the scheduler
        # (`slf airflow`).
        print(
            "slf run: SLF_DBT_MODE=watcher needs Airflow's scheduler; running dbt as one "
            "`dbt build` task instead",
            file=sys.stderr,
        )
        env["SLF_DBT_MODE"] = "build"
    conf = json.dumps(
        {
            "landing_dir": str(landing),
            "output_dir": str(out),
            "quality_override": args.quality_override or "",
            "full_refresh": args.full_refresh,
        }
    )
    started = time.time()
    log_path = out / "logs" / "slf_refresh.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    progress_r, progress_w = os.pipe()
    env[PROGRESS_FD_ENV] = str(progress_w)
    display = None if args.json else display_for(sys.stderr, live=False if args.verbose else None)
    if display is not None:
        print(
            f"slf run: refreshing from {landing} into {out} (full log: {log_path})",
            file=sys.stderr,
            flush=True,
        )
    with log_path.open("w", encoding="utf-8") as log:
        migrate_metadata_db(env)
        with os.fdopen(progress_r, encoding="utf-8") as progress:
            reader = follow(progress, display.update if display is not None else (lambda tasks: None))
            with display if display is not None else contextlib.nullcontext():
                proc = subprocess.Popen(
                    [sys.executable, "-m", "slf_warehouse.airflow_runner", "slf_refresh", conf],
                    env=env,
                    stdout=subprocess.PIPE if args.verbose else log,
                    stderr=subprocess.STDOUT,
                    text=True,
                    pass_fds=(lock.fd, progress_w),
                )
                os.close(progress_w)
                if proc.stdout is not None:  # -v: the log, live, as well as in its file
                    for line in proc.stdout:
                        log.write(line)
                        sys.stderr.write(line)
                proc.wait()
                reader.join(timeout=10)
    seconds = time.time() - started
    log_lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    line = next((line for line in reversed(log_lines) if line.startswith('{"dag_id"')), "{}")
    result = json.loads(line)
    summary = build_summary(result, out, started, seconds)
    if args.json:
        print(json.dumps({**result, "summary": summary}))
    if proc.returncode != 0:
        if not args.json:
            print(file=sys.stderr)
            for text in format_summary(summary, log_path):
                print(text, file=sys.stderr)
        print("\nWhy:", file=sys.stderr)
        _print_failure_reasons(log_path)
        _print_rejections(out / "quarantine", since=started)
        print(f"Full Airflow log: {log_path}", file=sys.stderr)
        return 1
    if not args.json:
        print()
        print("\n".join(format_summary(summary, log_path)))
        print(f"  quality    {out / 'quality'} (report.pdf, data_docs/index.html)")
    return 0


def _print_failure_reasons(log_path: Path) -> None:
    """The lines of the Airflow log that say why a task failed, so nobody must dig for them."""
    interesting = (
        "IngestFailed",
        "StepFailed",
        "ConfigurationError",
        "FileRejected",
        "ERROR",
        "Error:",
        "- check ",
        "- reconciliation ",
    )
    seen: set[str] = set()
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if (
            any(k in line for k in interesting)
            and "Traceback" not in line
            and not line.strip().startswith("raise ")
            and line not in seen
            and len(seen) < 40
        ):
            seen.add(line)
            print("  " + line.strip()[:400], file=sys.stderr)


def _print_rejections(quarantine: Path, since: float) -> None:
    for report in sorted(quarantine.glob("*/*.errors.txt")):
        if report.stat().st_mtime >= since:
            print(
                f"Rejected {report.parent.name}/{report.name.removesuffix('.errors.txt')} "
                f"(moved to {report.parent}):",
                file=sys.stderr,
            )
            for line in report.read_text(encoding="utf-8").splitlines()[:20]:
                print(f"  {line}", file=sys.stderr)


def _ingest(args: argparse.Namespace) -> int:
    from slf_warehouse.preflight import EXIT_DATA, require_landing, require_pseudonym_key, require_writable
    from slf_warehouse.run_summary import UNCHANGED

    landing, warehouse = Path(args.landing).resolve(), Path(args.warehouse).resolve()
    require_landing(landing)
    require_pseudonym_key()
    require_writable(warehouse.parent, "warehouse folder")
    _log_to(warehouse.parent / "logs" / "slf_ingest.log", args)
    from slf_warehouse.ingest import ConfigurationError, ingest_landing  # DuckDB: after the mistakes

    try:
        report = ingest_landing(landing, warehouse)
    except ConfigurationError as e:
        raise UsageError(str(e)) from None
    if args.verbose:
        print(report.summary())
    by_source: dict[str, dict[str, int]] = {}
    for f in report.files:
        c = by_source.setdefault(f.source, {"loaded": 0, "unchanged": 0, "rejected": 0, "rows": 0})
        key = "unchanged" if f.status == UNCHANGED else f.status
        c[key] = c.get(key, 0) + 1
        c["rows"] += f.rows if f.status == "loaded" else 0
    print(f"  {'source':<16}{'loaded':>8}{'unchanged':>11}{'rejected':>10}{'rows':>9}")
    for source, c in by_source.items():
        print(f"  {source:<16}{c['loaded']:>8}{c['unchanged']:>11}{c['rejected']:>10}{c['rows']:>9}")
    print(f"into {warehouse}")
    for f in report.rejected:
        print(f"Rejected {f.source}/{f.file_name}:", file=sys.stderr)
        for issue in f.errors[:20]:
            print(f"  {issue}", file=sys.stderr)
    return EXIT_DATA if report.rejected else 0


def _answer(args: argparse.Namespace) -> int:
    from slf_warehouse.answers.inquiry_yaml import InquiryError
    from slf_warehouse.answers.published import answer_from_published
    from slf_warehouse.preflight import require_writable

    out = Path(args.out).resolve()
    given = Path(args.inquiry)
    inquiry = given.resolve() if given.is_file() else args.inquiry  # else a name in inquiries/
    require_writable(Path(args.to).resolve() if args.to else out / "answers", "answer folder")
    _log_to(out / "logs" / "slf_answer.log", args)
    try:
        answer = answer_from_published(inquiry, out, out_dir=Path(args.to).resolve() if args.to else None)
    except InquiryError as e:
        raise UsageError(str(e)) from None
    except _no_published_warehouse() as e:
        raise UsageError(str(e)) from None
    print(f"{answer['pdf']}\n{answer['html']}")
    if not answer["official"]:
        print(
            "not official: the inquiry file is not one of the project's inquiries/; the letter says so on "
            "every page",
            file=sys.stderr,
        )
    if not answer["first_edition"]:
        print("figures changed since the last edition: " + (", ".join(answer["changed_figures"]) or "none"))
    return 0


def _no_published_warehouse() -> type[Exception]:
    """The class, for an ``except`` clause: evaluated only while an exception is handled, so a
    misspelt inquiry name is reported without importing DuckDB (warehouse.py's)."""
    from slf_warehouse.warehouse import NoPublishedWarehouse

    return NoPublishedWarehouse


def _inquiry_figures(inquiry: str, out: Path) -> tuple[list[str], dict[str, Any], tuple[date, date]]:
    """The figures an inquiry (a file, or a name in inquiries/) uses, its parameters and window."""
    from slf_warehouse.answers.inquiry_yaml import InquiryError
    from slf_warehouse.answers.published import resolve_inquiry
    from slf_warehouse.settings import Settings

    given = Path(inquiry)
    try:
        path = (
            given.resolve()
            if given.is_file()
            else resolve_inquiry(inquiry, Settings.from_env(output_dir=out).inquiries_dir)
        )
        from slf_warehouse.answers.inquiry import load_inquiry  # the model: once the file is found

        loaded = load_inquiry(path)
    except InquiryError as e:
        raise UsageError(str(e)) from None
    return (
        loaded.figure_names,
        loaded.inquiry.parameters,
        (loaded.inquiry.window.start, loaded.inquiry.window.end),
    )


def _figures(args: argparse.Namespace) -> int:
    from datetime import date

    from slf_warehouse.figure_listing import EARLIEST, format_listing, list_figures, window_parameters

    out = Path(args.out).resolve()
    _log_to(out / "logs" / "slf_figures.log", args)
    names, params, window = None, None, None
    if args.inquiry:
        names, params, window = _inquiry_figures(args.inquiry, out)
    else:
        try:
            window = (
                date.fromisoformat(args.start) if args.start else EARLIEST,
                date.fromisoformat(args.end) if args.end else date.today(),
            )
        except ValueError as e:
            raise UsageError(f"--from/--to: {e} (write YYYY-MM-DD)") from None
        params = window_parameters(*window)
    from slf_warehouse.warehouse import NoPublishedWarehouse  # DuckDB: after the mistakes

    try:
        listed, version = list_figures(out, names, params)
    except NoPublishedWarehouse as e:
        listed, version = list_figures(out, names, params, with_values=False)
        print(f"slf figures: values not shown: {e}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "published": version,
                    "window": [d.isoformat() for d in window],
                    "figures": [vars(f) for f in listed],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    if version:
        print(
            f"{len(listed)} figures; values for {window[0]} – {window[1]} from published version "
            f"{version['version']} (run {version['run_id']})\n"
        )
    print("\n".join(format_listing(listed)))
    return 0


def _inquiry(args: argparse.Namespace) -> int:
    if args.action == "check":
        from slf_warehouse.answers.inquiry_check import check_inquiry_file
        from slf_warehouse.preflight import EXIT_DATA

        path = Path(args.file)
        if not path.is_file() and not path.suffix:
            from slf_warehouse.settings import project_dir

            path = project_dir() / "inquiries" / f"{args.file}.yaml"
        problems = check_inquiry_file(path)
        for problem in problems:
            print(problem.message, file=sys.stderr)
        if problems:
            print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
            return EXIT_DATA
        print(
            f"{path}: OK (fields, dates and deadline, templates, sandbox rules, figures, tables and charts)"
        )
        return 0
    from slf_warehouse.answers.inquiry_template import write_new_inquiry
    from slf_warehouse.settings import project_dir

    try:
        path = write_new_inquiry(
            args.file, Path(args.dir).resolve() if args.dir else project_dir() / "inquiries"
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(f"{path}\nEdit it, then: slf inquiry check {path}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from slf_warehouse.run_status import format_status, status

    out = Path(args.out).resolve()
    if not out.is_dir():
        raise UsageError(f"output folder {out} does not exist: give the folder `slf run --out` wrote")
    found = status(out, last=args.last)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2, default=str))
    else:
        print("\n".join(format_status(found, out)))
    return 0


def _log_to(log_file: Path, args: argparse.Namespace) -> None:
    from slf_warehouse.cli_logging import setup_logging

    setup_logging(log_file, verbose=args.verbose)


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
    env.setdefault(
        "AIRFLOW__CORE__AUTH_MANAGER",
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    )
    # Under the scheduler the dbt step shows one task per model (Cosmos watcher mode: one producer
    # runs `dbt build`, one poking sensor reports each model); docs/performance.md has its cost.
    env.setdefault("SLF_DBT_MODE", "watcher")
    migrate_metadata_db(env)
    password_file = private_password_file(env)
    print(
        f"Airflow UI: http://127.0.0.1:{args.port}  (user admin; the generated password is printed below "
        f"and kept in {password_file}, readable by you only)",
        flush=True,
    )
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
    verbose_help = "show the libraries' and Airflow's log lines live (they always go to the log file)"
    parser = argparse.ArgumentParser(
        prog="slf",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    # After the command too; SUPPRESS: not given there, the top level's value stands.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kw):
        return sub.add_parser(
            name,
            parents=[verbose],
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            **kw,
        )

    p = command("sample-data", help="write the deterministic sample data set in the contract's formats")
    p.add_argument("--out", required=True, help="landing folder to write (one folder per source)")
    p.set_defaults(func=_sample_data)

    p = command(
        "run",
        help="run the refresh end to end through Airflow (slf_refresh)",
        description="Run the refresh through Airflow: each step is shown as it starts and ends, then a "
        "summary. Needs SLF_PSEUDONYM_KEY (payroll pseudonyms; `make setup` writes one to "
        ".slf-pseudonym-key).",
    )
    p.add_argument("--landing", required=True, help="landing folder with one folder per source")
    p.add_argument("--out", required=True, help="output folder: answers/, quality/, warehouse/, logs/")
    p.add_argument(
        "--quality-override",
        metavar="REASON",
        help="publish even if quality checks fail; the reason is recorded in the run history and "
        "printed on every page of the answers",
    )
    p.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild dbt's incremental models from every loaded row (after a change to their logic)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the run's result as one JSON object (for scripts) instead of the progress and summary",
    )
    p.set_defaults(func=_run)

    p = command("ingest", help="validate and load a landing folder into a warehouse file (no Airflow)")
    p.add_argument("--landing", required=True)
    p.add_argument("--warehouse", required=True, help="DuckDB file")
    p.set_defaults(func=_ingest)

    p = command("answer", help="render one inquiry from the last published warehouse")
    p.add_argument("inquiry", help="inquiry YAML file, or its name in inquiries/ (with or without .yaml)")
    p.add_argument(
        "--out",
        required=True,
        help="the refresh's output folder: its published warehouse is read, the PDF goes to answers/",
    )
    p.add_argument(
        "--to",
        metavar="DIR",
        help="folder for the letter (default: answers/ for the project's inquiries/, answers/drafts/ "
        "for an inquiry file from elsewhere, which never publishes to answers/)",
    )
    p.set_defaults(func=_answer)

    p = command("figures", help="list every figure: name, label, definition, unit and today's value")
    p.add_argument("--out", default="output", help="the refresh's output folder (its published warehouse)")
    p.add_argument(
        "--inquiry",
        help="only the figures this inquiry uses, over its window (a file or a name in inquiries/)",
    )
    p.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="window start (default 2000-01-01)")
    p.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="window end (default today)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_figures)

    p = command("inquiry", help="check an inquiry file (every problem, with its line) or start a new one")
    p.add_argument(
        "action",
        choices=["check", "new"],
        help="check FILE: validate without rendering; new NAME: write inquiries/NAME.yaml from a "
        "commented template",
    )
    p.add_argument("file", metavar="FILE|NAME")
    p.add_argument("--dir", help="for new: the folder to write to (default: the project's inquiries/)")
    p.set_defaults(func=_inquiry)

    p = command("status", help="the published version and the last runs")
    p.add_argument("--out", default="output", help="the refresh's output folder")
    p.add_argument("--last", type=int, default=5, help="how many runs to show (default 5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_status)

    p = command("airflow", help="start Airflow (UI, API, scheduler) on loopback with the project's DAGs")
    p.add_argument("--port", type=int, default=int(os.environ.get("SLF_AIRFLOW_PORT", "8080")))
    p.set_defaults(func=_airflow)

    p = command(
        "deploy", help="the shared deployment: check secrets, init roles and users, serve a component"
    )
    p.add_argument(
        "step",
        choices=["check", "init", "serve"],
        help="check: refuse placeholder/short secrets; init: migrate, pool, roles, users from "
        "SLF_USERS_FILE; serve: check, then run `airflow COMPONENT...`",
    )
    p.add_argument(
        "component", nargs=argparse.REMAINDER, help="for serve: the airflow command and its options"
    )
    p.set_defaults(func=_deploy)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"slf {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
