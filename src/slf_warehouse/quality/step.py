"""The refresh's quality step, and the run-history calls around it, as the pipeline uses them.

    check_build(build, quality_dir, run_id, ...)   GE suites + reconciliations + gate, recorded in
                                                   the build's audit tables and history.jsonl, the
                                                   PDF report written; raises QualityGateRefused
    mark_published(build, quality_dir, run_id)     before WarehouseStore.publish(build, ...)
    finish_failed_run(...)                         a run that stopped before publication (final task)

Everything here writes only the build of the run (never a published warehouse) and files under
quality_dir (OUT/quality).

`build` is where the build is (target.py): a DuckDB build file's path, or a
`PgTarget(conninfo, pg_build)` for a warehouse_pg.PgBuild. On PostgreSQL the checks read the build's
schemas and the history is written to the server's shared `audit` schema (history.py).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from slf_warehouse.file_modes import make_private, private_outputs
from slf_warehouse.quality import history
from slf_warehouse.quality.gate import GateDecision, InvalidOverride, QualityGateRefused, quality_gate
from slf_warehouse.quality.reconciliations import run_reconciliations
from slf_warehouse.quality.target import QualityTarget, as_target

log = logging.getLogger(__name__)


def _report(
    build: Path | QualityTarget, quality_dir: Path, run_id: str, quarantine_dir: Path | None
) -> Path | None:
    """Render the report; a rendering failure is logged, it never hides the gate's decision."""
    from slf_warehouse.quality.report import render_quality_report

    try:
        return render_quality_report(build, quality_dir, run_id, quarantine_dir=quarantine_dir)
    except Exception:  # the report is a by-product of the gate, not a reason to fail it
        log.exception("the quality report could not be rendered")
        return None


def check_build(
    build: Path | QualityTarget,
    quality_dir: Path,
    run_id: str,
    *,
    expectations_dir: Path | None = None,
    override_reason: str | None = None,
    dbt_run_results: Path | None = None,
    quarantine_dir: Path | None = None,
    render_report: bool = True,
) -> GateDecision:
    """The whole quality step on a build file:

    1. the GE suites (run_quality_checks: Data Docs, quality_results.json under quality_dir);
    2. the reconciliations, written to audit.reconciliations;
    3. audit.expectation_results, audit.run_files and (given dbt's run_results.json, a file or a
       folder of them) audit.dbt_results;
    4. the gate; audit.runs gets status passed / passed_with_override / refused, and the run's
       summary is appended to quality_dir/history.jsonl;
    5. the PDF report, quality_dir/report.pdf (+ .html).

    Raises QualityGateRefused (or InvalidOverride) after all of that has been recorded."""
    from slf_warehouse.quality.checkpoint import run_quality_checks

    build, quality_dir = as_target(build), Path(quality_dir)
    started = time.perf_counter()
    private_outputs()
    make_private(quality_dir)  # what runs under a looser umask left there
    result = run_quality_checks(build, quality_dir, run_id, expectations_dir)
    checks_done = time.perf_counter()
    with build.connect() as con:
        history.ensure_audit_tables(con)
        reconciliations = run_reconciliations(con, run_id)
        history.record_expectation_results(con, run_id, result.results)
    if dbt_run_results is not None:
        history.record_dbt_results(build, run_id, Path(dbt_run_results))
    try:
        decision = quality_gate(result, reconciliations, override_reason)
    except (QualityGateRefused, InvalidOverride):
        history.record_run(
            build, run_id, status="refused", finished=True, quality_success=False, history_dir=quality_dir
        )
        if render_report:
            _report(build, quality_dir, run_id, quarantine_dir)
        raise
    history.record_run(
        build,
        run_id,
        status=decision.status,
        quality_success=decision.quality_success,
        override_reason=decision.override_reason,
        history_dir=quality_dir,
    )
    if render_report:
        _report(build, quality_dir, run_id, quarantine_dir)
    log.info(
        "quality step: %s in %.1f s (checks %.1f s); %d failed check(s), %d failed reconciliation(s), "
        "%d warning(s)%s",
        decision.status,
        time.perf_counter() - started,
        checks_done - started,
        len(decision.failed_checks),
        len(decision.failed_reconciliations),
        len(decision.warnings),
        f"; OVERRIDE: {decision.override_reason}" if decision.overridden else "",
    )
    return decision


def mark_published(
    build: Path | QualityTarget,
    quality_dir: Path,
    run_id: str,
    *,
    quarantine_dir: Path | None = None,
    render_report: bool = True,
) -> dict[str, Any]:
    """Record the run as published in its build file (call just before WarehouseStore.publish moves
    it), append to history.jsonl, and render the report again so it says "offentliggjort"."""
    summary = history.record_run(build, run_id, status="published", finished=True, history_dir=quality_dir)
    if render_report:
        _report(as_target(build), Path(quality_dir), run_id, quarantine_dir)
    return summary


def finish_failed_run(
    quality_dir: Path,
    run_id: str,
    *,
    build: Path | QualityTarget | None = None,
    failed_steps: list[str] | None = None,
    quarantine_dir: Path | None = None,
    render_report: bool = True,
) -> dict[str, Any]:
    """For a run that ended without publication (a final task with trigger_rule all_done calls it
    when publish did not succeed): the build's audit.runs row becomes `failed` (a `refused` row stays
    `refused`), history.jsonl gets the summary, and the report is rendered from the build so the
    files received and rejected are shown even when no check ran."""
    quality_dir = Path(quality_dir)
    if build is not None and as_target(build).exists():
        existing = history.run_summary(build, run_id)
        status = "refused" if existing and existing.get("status") == "refused" else "failed"
        summary = history.record_run(build, run_id, status=status, finished=True)
        if render_report:
            _report(as_target(build), quality_dir, run_id, quarantine_dir)
    else:
        from datetime import datetime

        now = datetime.now(UTC).isoformat()
        summary = {"run_id": run_id, "status": "failed", "finished_at": now, "failed": [], "recorded_at": now}
    if failed_steps:
        summary["failed_steps"] = list(failed_steps)
    history.append_history(quality_dir, summary)
    return summary
