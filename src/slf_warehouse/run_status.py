"""`slf status`: what is published (run, when, quality, source files) and how the last runs ended.

The published version through ``answers.published.published_warehouse`` (DuckDB or PostgreSQL) and
its source files from the load manifest through the warehouse reader, as the letters' appendix reads
them; the runs from ``OUT/quality/history.jsonl`` (``quality.history.read_history``), which keeps
failed and refused runs too. Counts and names only.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


def status(output_dir: Path, last: int = 5) -> dict[str, Any]:
    """``published`` (None when nothing is) and the ``last`` runs, newest first."""
    from slf_warehouse.answers.published import published_warehouse
    from slf_warehouse.answers.render import source_files
    from slf_warehouse.quality.history import read_history
    from slf_warehouse.settings import Settings
    from slf_warehouse.warehouse import NoPublishedWarehouse
    from slf_warehouse.warehouse_reader import open_reader

    settings = Settings.from_env(output_dir=output_dir)
    runs = list(reversed(read_history(settings.quality_dir)))
    published = None
    try:
        version, source = published_warehouse(settings)
    except NoPublishedWarehouse:
        version = None
    if version is not None:
        with open_reader(source) as reader:
            files = source_files(reader)
        per_source = Counter(f["source"] for f in files)
        rows: Counter[str] = Counter()
        for f in files:
            rows[f["source"]] += int(f["rows"] or 0)
        entry = next((r for r in runs if r.get("run_id") == version.run_id), {})
        published = {
            "version": version.version,
            "run_id": version.run_id,
            "published_at": version.published_at,
            "quality": _quality_text(entry),
            "override_reason": entry.get("override_reason"),
            "source_files": {s: {"files": n, "rows": rows[s]} for s, n in sorted(per_source.items())},
        }
    return {
        "published": published,
        "runs": [
            {
                k: r.get(k)
                for k in (
                    "run_id",
                    "status",
                    "started_at",
                    "finished_at",
                    "files_loaded",
                    "files_rejected",
                    "checks_failed",
                    "reconciliations_failed",
                    "failed",
                )
            }
            for r in runs[:last]
        ],
    }


def _quality_text(entry: dict[str, Any]) -> str:
    if not entry or entry.get("checks") is None:
        return "not recorded"
    passed = "passed" if entry.get("quality_success") else "FAILED"
    return (
        f"{passed}: {entry['checks']} checks, {entry.get('checks_failed') or 0} failed, "
        f"{entry.get('checks_warned') or 0} warned; {entry.get('reconciliations') or 0} reconciliations, "
        f"{entry.get('reconciliations_failed') or 0} failed"
    )


def format_status(found: dict[str, Any], output_dir: Path) -> list[str]:
    p = found["published"]
    if p is None:
        lines = [
            f"Published: nothing yet in {output_dir} (run `slf run --landing LANDING --out {output_dir}`)"
        ]
    else:
        lines = [
            f"Published: version {p['version']}",
            f"  run        {p['run_id']}",
            f"  published  {p['published_at']}",
            f"  quality    {p['quality']}",
        ]
        if p["override_reason"]:
            lines.append(f"  override   {p['override_reason']}")
        files = p["source_files"]
        lines.append(
            f"  sources    {sum(v['files'] for v in files.values())} files: "
            + ", ".join(f"{s} {v['files']} ({v['rows']} rows)" for s, v in files.items())
        )
    lines.append("")
    lines.append(
        f"Last runs ({len(found['runs'])}, newest first):" if found["runs"] else "No runs recorded yet."
    )
    for r in found["runs"]:
        why = f"  ({'; '.join(r['failed'][:3])})" if r.get("failed") else ""
        lines.append(f"  {str(r['started_at'] or '')[:19]:<20} {r['status'] or '?':<21} {r['run_id']}{why}")
    return lines
