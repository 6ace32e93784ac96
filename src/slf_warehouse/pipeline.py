"""The refresh's steps as plain functions: the DAG calls them, tests call them without Airflow.

Heavy libraries (dbt, Great Expectations, WeasyPrint) are imported inside the step that needs
them, because Airflow imports this module whenever it parses a DAG file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from slf_warehouse import run_lock
from slf_warehouse.settings import Settings
from slf_warehouse.warehouse import WarehouseStore

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step whose failure must stop publication; the message says what to fix."""


def check_refresh_engine(settings: Settings) -> None:
    """StepFailed unless the refresh can write the chosen warehouse engine. On PostgreSQL the
    ingestion target, the build store, the quality step and the answers exist and are tested
    (ingest.targets, warehouse_pg, quality.target, warehouse_reader), but the refresh does not use
    them yet: refusing is better than a run that quietly writes a DuckDB file instead."""
    if settings.warehouse_engine != "duckdb":
        raise StepFailed(f"SLF_WAREHOUSE_ENGINE={settings.warehouse_engine}: the refresh writes the DuckDB "
                         f"warehouse only in this version; unset SLF_WAREHOUSE_ENGINE (answers can already "
                         f"read a published PostgreSQL warehouse)")


def prepare_build(settings: Settings, run_id: str, dagrun_alive: Callable[[str], bool] | None = None) -> Path:
    """Claim the output folder for the run (run_lock.RunInProgress if another refresh holds it; a
    run that held it and is gone is recorded as failed and its build removed), then a new build."""
    from slf_warehouse.quality.history import start_run

    check_refresh_engine(settings)
    orphan = run_lock.claim(settings.output_dir, run_id, dagrun_alive)
    if orphan is not None:
        retire_orphan(settings, orphan, found_by=run_id)
    build = WarehouseStore(settings.warehouse_dir).new_build(run_id)
    start_run(build, run_id)
    log.info("building into %s", build)
    return build


def retire_orphan(settings: Settings, orphan: run_lock.Holder, found_by: str) -> None:
    """A run whose process was killed never recorded its end: the history gets it as failed and
    its build goes (the DagRun's own state is airflow_runner's to fix)."""
    from slf_warehouse.quality.history import read_history

    assert orphan.run_id
    store = WarehouseStore(settings.warehouse_dir)
    builds = store.builds_of(orphan.run_id)
    reason = [f"interrupted: its process ended before the run finished (found by run {found_by})"]
    recorded = next((r for r in reversed(read_history(settings.quality_dir)) if r["run_id"] == orphan.run_id),
                    {})
    # One that recorded its end died later (e.g. rendering answers): its history stays as it is.
    if recorded.get("status") not in ("published", "failed", "refused"):
        _record_interrupted(settings, orphan.run_id, builds[-1] if builds else None, reason)
    for build in builds:
        store.discard(build)
    log.warning("run %s, held since %s by pid %s, ended without finishing: recorded as %s, %d build(s) "
                "removed", orphan.run_id, orphan.since, orphan.pid, recorded.get("status") or "failed",
                len(builds))


def _record_interrupted(settings: Settings, run_id: str, build: Path | None, reason: list[str]) -> None:
    import duckdb

    from slf_warehouse.quality.step import finish_failed_run

    try:
        finish_failed_run(settings.quality_dir, run_id, build=build, failed_steps=reason,
                          quarantine_dir=settings.quarantine_dir, render_report=False)
    except duckdb.Error:  # a build torn by the kill: the history line is what matters
        finish_failed_run(settings.quality_dir, run_id, failed_steps=reason, render_report=False)


def pull_source(settings: Settings, source: str) -> str:
    """Fetch the source's deliveries (local folder or HTTP share); returns the local folder."""
    from slf_warehouse.ingest.pull import pull_source as pull, source_location

    pulled = pull(source, source_location(source, settings.landing_dir), settings.output_dir / "pulled")
    log.info("%s: %d file(s) in %s", source, len(pulled.files), pulled.folder)
    return str(pulled.folder)


def ingest_source(settings: Settings, build: Path, source: str, run_id: str,
                  folder: Path | None = None) -> dict[str, object]:
    from slf_warehouse.ingest import IngestFailed, ingest_source as load

    report = load(source, settings.landing_dir, build, settings.quarantine_dir / source, run_id, folder)
    log.info("%s:\n%s", source, report.summary())
    if report.rejected:
        raise IngestFailed(report)
    return {"source": source, "files": len(report.files), "rows": sum(f.rows for f in report.files),
            "statuses": sorted({f.status for f in report.files}),
            "by_status": {status: {"files": sum(1 for f in report.files if f.status == status),
                                   "rows": sum(f.rows for f in report.files if f.status == status)}
                          for status in sorted({f.status for f in report.files})}}


def dbt_build(settings: Settings, build: Path, target_dir: Path | None = None, full_refresh: bool = False) -> None:
    """`dbt build` in-process (the DAG runs the same build through Cosmos)."""
    import os

    from dbt.cli.main import dbtRunner

    from slf_warehouse.dbt_tasks import PRODUCTION_EXCLUDED_RESOURCE_TYPES

    os.environ["SLF_WAREHOUSE_PATH"] = str(build)
    args = ["build", "--project-dir", str(settings.dbt_project_dir), "--profiles-dir",
            str(settings.dbt_project_dir), "--target", "duckdb"]
    if target_dir:
        args += ["--target-path", str(target_dir)]
    if full_refresh:
        args.append("--full-refresh")
    args += ["--exclude-resource-type", PRODUCTION_EXCLUDED_RESOURCE_TYPES]
    result = dbtRunner().invoke(args)
    if not result.success:
        from slf_warehouse.dbt_failures import failing_rows_lineage

        rows = "".join(f"\n  {line}" for line in failing_rows_lineage(result, build))
        raise StepFailed(f"dbt build failed: {result.exception or 'see the dbt log above for the failing node'}{rows}")


def quality_checks(settings: Settings, build: Path, run_id: str,
                   override_reason: str | None = None) -> dict[str, object]:
    """GE suites, reconciliations, run history and the gate on the build."""
    from slf_warehouse.quality.gate import InvalidOverride, QualityGateRefused
    from slf_warehouse.quality.history import dbt_run_results_dir
    from slf_warehouse.quality.step import check_build

    dbt_results = dbt_run_results_dir(settings.quality_dir, run_id)
    try:
        decision = check_build(build, settings.quality_dir, run_id, expectations_dir=settings.expectations_dir,
                               override_reason=override_reason or None,
                               dbt_run_results=dbt_results if dbt_results.exists() else None,
                               quarantine_dir=settings.quarantine_dir,
                               # rendered once, with the run's final state: by publish, or for a
                               # run that ends unpublished (refused here too) by record_outcome
                               render_report=False)
    except (QualityGateRefused, InvalidOverride) as refused:
        raise StepFailed(f"quality gate: the warehouse is not published. {refused}") from None
    return {"publish": decision.publish, "failed_checks": decision.failed_checks,
            "failed_reconciliations": decision.failed_reconciliations, "override": decision.override_reason}


def publish(settings: Settings, build: Path, run_id: str) -> dict[str, str]:
    from slf_warehouse.quality.step import mark_published

    # Checked before anything writes the build: a write would create a missing build empty.
    store = WarehouseStore(settings.warehouse_dir)
    run_lock.check_own(settings.output_dir, run_id)
    store.check_build(build, run_id)
    mark_published(build, settings.quality_dir, run_id, quarantine_dir=settings.quarantine_dir)
    published = store.publish(build, run_id)
    return {"path": str(published.path), "version": published.version, "run_id": run_id}


def record_unpublished_run(settings: Settings, build: Path | None, run_id: str, failed_steps: list[str]) -> None:
    """A run that ended without publication still goes into the quality history and report."""
    from slf_warehouse.quality.step import finish_failed_run

    finish_failed_run(settings.quality_dir, run_id, build=build, failed_steps=failed_steps,
                      quarantine_dir=settings.quarantine_dir)
    if build is not None:
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
        log.info("rendered %s in %.1f s (figures changed since the last edition: %s)", answer["pdf"],
                 answer["seconds"], changed)
    (settings.answers_dir / "index.json").write_text(json.dumps(answers, indent=2), encoding="utf-8")
    if answers:  # drafts waiting for approval that were made from an older version are stale now
        from slf_warehouse.answers.approval import mark_stale_drafts

        for stale in mark_stale_drafts(settings.answers_dir, str(answers[0]["warehouse_version"])):
            log.info("draft %s is stale: a new warehouse version was published", stale)
    return answers
