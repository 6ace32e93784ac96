"""The refresh's steps as plain functions: the DAG calls them, tests call them without Airflow.

Heavy libraries (dbt, Great Expectations, WeasyPrint) are imported inside the step that needs
them, because Airflow imports this module whenever it parses a DAG file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slf_warehouse import run_lock
from slf_warehouse.build_ref import BuildRef
from slf_warehouse.settings import Settings
from slf_warehouse.warehouse import WarehouseStore

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step whose failure must stop publication; the message says what to fix."""


def check_refresh_engine(settings: Settings) -> None:
    """StepFailed unless the chosen warehouse engine can be written (``preflight.require_refresh_engine``,
    which `slf run` asks before it claims the output folder)."""
    from slf_warehouse.preflight import UsageError, require_refresh_engine

    try:
        require_refresh_engine(settings)
    except UsageError as refused:
        raise StepFailed(str(refused)) from None


def pg_server_name(settings: Settings) -> str:
    """host:port/database of the PostgreSQL warehouse, for messages (never the password)."""
    from slf_warehouse.pg_raw import server_name

    return server_name(settings.pg_conninfo)


# --- the build, on either engine --------------------------------------------------------------------
# A build is a DuckDB file (a Path) or a warehouse_pg.PgBuild; between Airflow tasks it travels as a
# build_ref.BuildRef, which never holds a connection string.


def build_store(settings: Settings) -> Any:
    """The engine's build store: WarehouseStore (files in warehouse_dir) or PgWarehouseStore."""
    if settings.warehouse_engine == "postgres":
        from slf_warehouse.warehouse_pg import PgWarehouseStore

        return PgWarehouseStore(settings.pg_conninfo)
    return WarehouseStore(settings.warehouse_dir)


def is_pg_build(build: Any) -> bool:
    return not isinstance(build, (str, Path))


def build_from_ref(settings: Settings, ref: BuildRef | str) -> Path | Any:
    """The build a reference (or its XCom text) names, on the engine it was made on. StepFailed when
    that is not the engine this task runs with, or when the PostgreSQL build is gone (dropped)."""
    ref = ref if isinstance(ref, BuildRef) else BuildRef.from_xcom(ref)
    if ref.engine != settings.warehouse_engine:
        raise StepFailed(
            f"build {ref.to_xcom()} was made on {ref.engine}, but this task runs with "
            f"SLF_WAREHOUSE_ENGINE={settings.warehouse_engine}: every task of a refresh needs "
            f"the same setting"
        )
    if ref.engine == "duckdb":
        return Path(ref.key)
    try:
        return build_store(settings).build(ref.key)
    except KeyError:
        raise StepFailed(
            f"PostgreSQL build {ref.key} is gone (dropped while the run was in progress?): "
            f"the published warehouse is unchanged"
        ) from None


def quality_target(settings: Settings, build: Path | Any) -> Path | Any:
    """What the quality step and the run history take: the build file, or a PgTarget on the build."""
    if is_pg_build(build):
        from slf_warehouse.quality.target import PgTarget

        return PgTarget(settings.pg_conninfo, build)
    return build


def prepare_build(
    settings: Settings, run_id: str, dagrun_alive: Callable[[str], bool] | None = None
) -> Path | Any:
    """Claim the output folder for the run (run_lock.RunInProgress if another refresh holds it; a
    run that held it and is gone is recorded as failed and its build removed), then a new build on
    the engine SLF_WAREHOUSE_ENGINE names: a DuckDB file (Path) or a PgBuild."""
    from slf_warehouse.quality.history import start_run

    check_refresh_engine(settings)
    orphan = run_lock.claim(settings.output_dir, run_id, dagrun_alive)
    if orphan is not None:
        retire_orphan(settings, orphan, found_by=run_id)
    build = build_store(settings).new_build(run_id)
    start_run(quality_target(settings, build), run_id)
    log.info("building into %s", BuildRef.of(build).to_xcom())
    return build


def retire_orphan(settings: Settings, orphan: run_lock.Holder, found_by: str) -> None:
    """A run whose process was killed never recorded its end: the history gets it as failed and
    its build goes (the DagRun's own state is airflow_runner's to fix). On PostgreSQL a build the
    orphan published before it died (killed between the switch and recording it) stays published
    and is recorded as such: the registry, not the history, says what was published."""
    from slf_warehouse.quality.history import read_history

    assert orphan.run_id
    store = build_store(settings)
    builds = store.builds_of(orphan.run_id)
    reason = [f"interrupted: its process ended before the run finished (found by run {found_by})"]
    recorded = next(
        (r for r in reversed(read_history(settings.quality_dir)) if r["run_id"] == orphan.run_id), {}
    )
    published = [b for b in builds if is_pg_build(b) and store.was_published(b)]
    if published and recorded.get("status") != "published":
        from slf_warehouse.quality.step import mark_published

        mark_published(
            quality_target(settings, published[-1]),
            settings.quality_dir,
            orphan.run_id,
            quarantine_dir=settings.quarantine_dir,
            render_report=False,
        )
        recorded = {"status": "published"}
    # One that recorded its end died later (e.g. rendering answers): its history stays as it is.
    if recorded.get("status") not in ("published", "failed", "refused"):
        _record_interrupted(settings, orphan.run_id, builds[-1] if builds else None, reason)
    unpublished = [b for b in builds if b not in published]
    for build in unpublished:
        store.discard(build)
    log.warning(
        "run %s, held since %s by pid %s, ended without finishing: recorded as %s, %d build(s) removed",
        orphan.run_id,
        orphan.since,
        orphan.pid,
        recorded.get("status") or "failed",
        len(unpublished),
    )


def _record_interrupted(settings: Settings, run_id: str, build: Path | Any | None, reason: list[str]) -> None:
    from slf_warehouse.quality.step import finish_failed_run
    from slf_warehouse.quality.target import db_errors

    try:
        finish_failed_run(
            settings.quality_dir,
            run_id,
            build=None if build is None else quality_target(settings, build),
            failed_steps=reason,
            quarantine_dir=settings.quarantine_dir,
            render_report=False,
        )
    except db_errors():  # a build torn by the kill: the history line is what matters
        finish_failed_run(settings.quality_dir, run_id, failed_steps=reason, render_report=False)


def pull_source(settings: Settings, source: str) -> str:
    """Fetch the source's deliveries (local folder or HTTP share); returns the local folder."""
    from slf_warehouse.ingest.pull import pull_source as pull
    from slf_warehouse.ingest.pull import source_location

    pulled = pull(source, source_location(source, settings.landing_dir), settings.output_dir / "pulled")
    log.info("%s: %d file(s) in %s", source, len(pulled.files), pulled.folder)
    return str(pulled.folder)


def ingest_source(
    settings: Settings, build: Path | Any, source: str, run_id: str, folder: Path | None = None
) -> dict[str, object]:
    """Validate and load a source's deliveries: into the build file, or on PostgreSQL into the
    server's shared raw.* and audit.load_manifest (COPY, one transaction per file with its manifest row)."""
    from slf_warehouse.ingest import IngestFailed, PostgresTarget
    from slf_warehouse.ingest import ingest_source as load

    target = PostgresTarget(settings.pg_conninfo) if is_pg_build(build) else build
    report = load(source, settings.landing_dir, target, settings.quarantine_dir / source, run_id, folder)
    log.info("%s:\n%s", source, report.summary())
    if report.rejected:
        raise IngestFailed(report)
    return {
        "source": source,
        "files": len(report.files),
        "rows": sum(f.rows for f in report.files),
        "statuses": sorted({f.status for f in report.files}),
        "by_status": {
            status: {
                "files": sum(1 for f in report.files if f.status == status),
                "rows": sum(f.rows for f in report.files if f.status == status),
            }
            for status in sorted({f.status for f in report.files})
        },
    }


def dbt_target(build: Path | Any) -> str:
    """The dbt_project/profiles.yml target that builds `build`."""
    return "postgres" if is_pg_build(build) else "duckdb"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` for the block (dbt in-process reads its profile's env_var() from
    os.environ), restored after, so one build's schema prefix never leaks into the next."""
    import os

    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_build(
    settings: Settings, build: Path | Any, target_dir: Path | None = None, full_refresh: bool = False
) -> None:
    """`dbt build` in-process (the DAG runs the same build through Cosmos), with the target and
    environment of the build's engine (BuildRef.dbt_env; on PostgreSQL the server from SLF_PG_*)."""
    from dbt.cli.main import dbtRunner

    from slf_warehouse.dbt_tasks import PRODUCTION_EXCLUDED_RESOURCE_TYPES

    args = [
        "build",
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target",
        dbt_target(build),
    ]
    if target_dir:
        args += ["--target-path", str(target_dir)]
    if full_refresh:
        args.append("--full-refresh")
    args += ["--exclude-resource-type", PRODUCTION_EXCLUDED_RESOURCE_TYPES]
    with _environment(BuildRef.of(build).dbt_env()):
        result = dbtRunner().invoke(args)
    if not result.success:
        from slf_warehouse.dbt_failures import failing_rows_lineage

        rows = "".join(f"\n  {line}" for line in failing_rows_lineage(result, build))
        raise StepFailed(
            f"dbt build failed: {result.exception or 'see the dbt log above for the failing node'}{rows}"
        )


def quality_checks(
    settings: Settings,
    build: Path | Any,
    run_id: str,
    override_reason: str | None = None,
    await_decision: bool = False,
) -> dict[str, object]:
    """GE suites, reconciliations, run history and the gate on the build. A refusal raises StepFailed,
    unless `await_decision` (a run of the shared deployment without an override param): then the
    refusal is recorded as always and returned (`"decision_needed": True`) for a finance lead to
    decide on (override_decision.py; record_override_decision)."""
    from slf_warehouse.quality.gate import InvalidOverride, QualityGateRefused
    from slf_warehouse.quality.history import dbt_run_results_dir
    from slf_warehouse.quality.step import check_build

    dbt_results = dbt_run_results_dir(settings.quality_dir, run_id)
    try:
        decision = check_build(
            quality_target(settings, build),
            settings.quality_dir,
            run_id,
            expectations_dir=settings.expectations_dir,
            override_reason=override_reason or None,
            dbt_run_results=dbt_results if dbt_results.exists() else None,
            quarantine_dir=settings.quarantine_dir,
            # rendered once, with the run's final state: by publish, or for a
            # run that ends unpublished (refused here too) by record_outcome
            render_report=False,
        )
    except QualityGateRefused as refused:
        if not await_decision:
            raise StepFailed(f"quality gate: the warehouse is not published. {refused}") from None
        log.warning(
            "%s\nWaiting for a finance lead's decision: publish anyway (with a reason) or stop.", refused
        )
        return {
            "publish": False,
            "decision_needed": True,
            "failed_checks": refused.decision.failed_checks,
            "failed_reconciliations": refused.decision.failed_reconciliations,
            "override": None,
        }
    except InvalidOverride as refused:
        raise StepFailed(f"quality gate: the warehouse is not published. {refused}") from None
    return {
        "publish": decision.publish,
        "failed_checks": decision.failed_checks,
        "failed_reconciliations": decision.failed_reconciliations,
        "override": decision.override_reason,
    }


def record_override_decision(
    settings: Settings, build: Path | Any, run_id: str, reason: str | None
) -> dict[str, Any]:
    """A finance lead decided to publish a build the gate refused: the reason (quality.gate's rules:
    InvalidOverride when blank or too short) is recorded where the `quality_override` param's goes
    (audit.runs.override_reason, status passed_with_override, history.jsonl), so publish and every
    answer's pages carry it as if it had been given as the param."""
    from slf_warehouse.quality.gate import validate_override
    from slf_warehouse.quality.history import record_run

    text = validate_override(reason)
    if text is None:
        from slf_warehouse.quality.gate import InvalidOverride

        raise InvalidOverride("publishing despite failed checks needs a written reason; none was given")
    return record_run(
        quality_target(settings, build),
        run_id,
        status="passed_with_override",
        quality_success=False,
        override_reason=text,
        history_dir=settings.quality_dir,
    )


def publish(settings: Settings, build: Path | Any, run_id: str) -> dict[str, str]:
    from slf_warehouse.quality.step import mark_published

    run_lock.check_own(settings.output_dir, run_id)
    if is_pg_build(build):
        return _publish_pg(settings, build, run_id)
    # Checked before anything writes the build: a write would create a missing build empty.
    store = WarehouseStore(settings.warehouse_dir)
    store.check_build(build, run_id)
    mark_published(build, settings.quality_dir, run_id, quarantine_dir=settings.quarantine_dir)
    published = store.publish(build, run_id)
    return {"path": str(published.path), "version": published.version, "run_id": run_id}


def _publish_pg(settings: Settings, build: Any, run_id: str) -> dict[str, str]:
    """The switch first, then the history says published. The DuckDB order (history into the build,
    then the rename) relies on the history travelling inside the build file; on PostgreSQL the
    history is the shared audit schema, so writing "published" first would record a publication
    that a refused switch (StaleBuild, readers holding the views) never made. A run killed between
    the two is recorded as published by the next run (retire_orphan asks the registry)."""
    from slf_warehouse.quality.step import mark_published
    from slf_warehouse.warehouse import BuildRefused

    if build.run_id != run_id:
        raise BuildRefused(
            f"build {build.version} is run {build.run_id}'s, not run {run_id}'s: not published"
        )
    published = build_store(settings).publish(build)
    mark_published(
        quality_target(settings, build), settings.quality_dir, run_id, quarantine_dir=settings.quarantine_dir
    )
    return {"version": published.version, "run_id": run_id, "server": pg_server_name(settings)}


def record_unpublished_run(
    settings: Settings, build: Path | Any | None, run_id: str, failed_steps: list[str]
) -> None:
    """A run that ended without publication still goes into the quality history and report. On
    PostgreSQL its build is dropped (its history stays in the shared audit schema); a build that
    was published after all (the step failed after the switch) is recorded as published instead."""
    from slf_warehouse.quality.step import finish_failed_run, mark_published

    target = None if build is None else quality_target(settings, build)
    if target is not None and is_pg_build(build) and build_store(settings).was_published(build):
        mark_published(target, settings.quality_dir, run_id, quarantine_dir=settings.quarantine_dir)
        return
    finish_failed_run(
        settings.quality_dir,
        run_id,
        build=target,
        failed_steps=failed_steps,
        quarantine_dir=settings.quarantine_dir,
    )
    if build is None:
        return
    if is_pg_build(build):
        build_store(settings).discard(build)
    else:
        WarehouseStore(settings.warehouse_dir).finish(build)


def end_run(settings: Settings, run_id: str) -> None:
    """The run's very last step, whatever happened: the output folder is free for the next refresh."""
    if run_lock.release(settings.output_dir, run_id):
        log.info("run %s released %s", run_id, settings.output_dir)


def render_answers(settings: Settings, run_id: str) -> list[dict[str, object]]:
    """Every inquiry in inquiries/ from the published warehouse; says which figures changed."""
    from slf_warehouse.answers.published import answer_from_published

    answers = []
    for inquiry in sorted(settings.inquiries_dir.glob("*.yaml")):
        started = time.perf_counter()
        answer = answer_from_published(inquiry, settings.output_dir)
        answer["seconds"] = round(time.perf_counter() - started, 3)
        answers.append(answer)
        changed = ", ".join(answer["changed_figures"]) or "none"
        log.info(
            "rendered %s in %.1f s (figures changed since the last edition: %s)",
            answer["pdf"],
            answer["seconds"],
            changed,
        )
    (settings.answers_dir / "index.json").write_text(json.dumps(answers, indent=2), encoding="utf-8")
    if answers:  # drafts waiting for approval that were made from an older version are stale now
        from slf_warehouse.answers.approval import mark_stale_drafts

        for stale in mark_stale_drafts(settings.answers_dir, str(answers[0]["warehouse_version"])):
            log.info("draft %s is stale: a new warehouse version was published", stale)
    return answers
