"""The few lines `slf run` ends with: what came in, what dbt and the checks said, what was published.

Read from what the run left behind, never from the warehouse file directly: the load tasks' results
(airflow_runner's ``ingested``), the quarantine reports, dbt's run_results.json kept in
``OUT/quality/dbt_run_results/``, the run's line in ``OUT/quality/history.jsonl``, the published
version through ``answers.published`` (either engine) and ``OUT/answers/index.json``. Counts, paths
and names only: no row of data, so no personal data, is in it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

UNCHANGED = "skipped-duplicate"  # a file already loaded with the same bytes (ingest.loading)


def _sources(ingested: dict[str, dict], quarantine: Path, since: float) -> dict[str, dict[str, int | None]]:
    from slf_warehouse.contract import SOURCES

    table: dict[str, dict[str, int | None]] = {}
    for source in SOURCES:
        by_status = (ingested.get(source) or {}).get("by_status") or {}
        rejected = (
            [r for r in (quarantine / source).glob("*.errors.txt") if r.stat().st_mtime >= since]
            if (quarantine / source).is_dir()
            else []
        )
        if not by_status and not rejected and source not in ingested:
            continue
        if source not in ingested:  # its load failed: what it put in the unpublished build does not count
            table[source] = {"loaded": None, "unchanged": None, "rejected": len(rejected), "rows": None}
            continue
        table[source] = {
            "loaded": by_status.get("loaded", {}).get("files", 0),
            "unchanged": by_status.get(UNCHANGED, {}).get("files", 0),
            "rejected": max(len(rejected), by_status.get("rejected", {}).get("files", 0)),
            "rows": by_status.get("loaded", {}).get("rows", 0),
        }
    return table


def _dbt(quality_dir: Path, run_id: str) -> dict[str, dict[str, int]] | None:
    from slf_warehouse.quality.history import dbt_run_results_dir

    results: dict[str, dict] = {}
    for path in sorted(dbt_run_results_dir(quality_dir, run_id).glob("run_results*.json")):
        try:
            for r in json.loads(path.read_text(encoding="utf-8")).get("results", []):
                results[r["unique_id"]] = r
        except (OSError, ValueError, KeyError):
            continue
    if not results:
        return None
    kinds: dict[str, Counter] = {"models": Counter(), "tests": Counter()}
    for unique_id, r in results.items():
        if unique_id.startswith("exposure."):  # a letter's lineage (answers/exposures.py): nothing runs
            continue
        kind = "tests" if unique_id.startswith(("test.", "unit_test.")) else "models"
        raw = str(r.get("status"))
        status = {
            "success": "passed",
            "pass": "passed",
            "warn": "warned",
            "error": "failed",
            "fail": "failed",
            "skipped": "skipped",
        }.get(raw, raw)
        kinds[kind][status] += 1
    return {k: dict(v) for k, v in kinds.items()}


def _history_entry(quality_dir: Path, run_id: str) -> dict[str, Any]:
    from slf_warehouse.quality.history import read_history

    return next((e for e in reversed(read_history(quality_dir)) if e.get("run_id") == run_id), {})


def _published_version(out: Path, run_id: str) -> str | None:
    from slf_warehouse.answers.published import published_warehouse
    from slf_warehouse.settings import Settings

    try:
        published, _ = published_warehouse(Settings.from_env(output_dir=out))
    except Exception:  # noqa: BLE001 - none published, or the server unreachable: the summary says "not published"
        return None
    return published.version if published.run_id == run_id else None


def _answers(answers_dir: Path, run_id: str) -> list[str]:
    index = answers_dir / "index.json"
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e["pdf"] for e in entries if isinstance(e, dict) and e.get("warehouse_run_id") == run_id]


def build_summary(result: dict[str, Any], out: Path, started: float, seconds: float) -> dict[str, Any]:
    """The run's summary from airflow_runner's result and the output folder."""
    run_id = result.get("run_id") or ""
    quality_dir = out / "quality"
    history = _history_entry(quality_dir, run_id) if run_id else {}
    return {
        "run_id": run_id,
        "succeeded": result.get("state") == "success" and not result.get("not_succeeded"),
        "status": history.get("status"),
        "seconds": round(seconds, 1),
        "sources": _sources(result.get("ingested") or {}, out / "quarantine", started),
        "dbt": _dbt(quality_dir, run_id) if run_id else None,
        "quality": {
            k: history.get(k)
            for k in (
                "checks",
                "checks_failed",
                "checks_warned",
                "reconciliations",
                "reconciliations_failed",
                "override_reason",
            )
        }
        if history
        else None,
        "published_version": _published_version(out, run_id) if run_id else None,
        "answers": _answers(out / "answers", run_id) if run_id else [],
    }


def _n(value: int | None) -> str:
    return "–" if value is None else str(value)


def _counts(counts: dict[str, int], order: tuple[str, ...]) -> str:
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in order if counts.get(k, 0) or k in order[:1]) or "none"


def format_summary(summary: dict[str, Any], log_path: Path) -> list[str]:
    """Ten seconds' reading for a finance officer."""
    outcome = (
        "published"
        if summary["published_version"]
        else (
            "refused at the quality gate, not published"
            if summary["status"] == "refused"
            else "not published"
        )
    )
    head = "Refresh succeeded" if summary["succeeded"] else "Refresh FAILED"
    lines = [
        f"{head}: {outcome}, in {summary['seconds']:.0f} s (run {summary['run_id'] or 'not started'})",
        "",
    ]
    if summary["sources"]:
        lines.append(f"  {'source':<16}{'loaded':>8}{'unchanged':>11}{'rejected':>10}{'rows':>9}")
        sources = summary["sources"]
        for source, c in sources.items():
            lines.append(
                f"  {source:<16}{_n(c['loaded']):>8}{_n(c['unchanged']):>11}{c['rejected']:>10}"
                f"{_n(c['rows']):>9}"
            )
        total = {
            k: sum(c[k] or 0 for c in sources.values()) for k in ("loaded", "unchanged", "rejected", "rows")
        }
        lines.append(
            f"  {'all':<16}{total['loaded']:>8}{total['unchanged']:>11}{total['rejected']:>10}"
            f"{total['rows']:>9}"
        )
        if any(c["loaded"] is None for c in sources.values()):
            lines.append("  (–: a source with a rejected file is loaded again in full by the next refresh)")
        lines.append("")
    if summary["dbt"]:
        models, tests = summary["dbt"]["models"], summary["dbt"]["tests"]
        lines.append(
            f"  dbt        models, seeds, snapshots: {_counts(models, ('passed', 'failed', 'skipped'))}; "
            f"tests: {_counts(tests, ('passed', 'warned', 'failed', 'skipped'))}"
        )
    q = summary["quality"]
    if q and q.get("checks") is not None:
        lines.append(
            f"  quality    {q['checks']} checks: {q['checks_failed'] or 0} failed, {q['checks_warned'] or 0} "
            f"warned; {q.get('reconciliations') or 0} reconciliations: "
            f"{q.get('reconciliations_failed') or 0} failed"
        )
        if q.get("override_reason"):
            lines.append(f"             published despite failed checks: {q['override_reason']}")
    lines.append(
        f"  published  {summary['published_version'] or 'nothing (the published warehouse is unchanged)'}"
    )
    for i, pdf in enumerate(summary["answers"]):
        lines.append(f"  {'answers' if i == 0 else '':<9}  {pdf}")
    lines.append(f"  log        {log_path}")
    return lines
