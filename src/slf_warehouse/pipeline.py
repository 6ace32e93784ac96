"""The refresh's steps as plain functions: the DAG calls them, tests call them without Airflow.

Heavy libraries (dbt, Great Expectations, WeasyPrint) are imported inside the step that needs
them, because Airflow imports this module whenever it parses a DAG file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from slf_warehouse.settings import Settings
from slf_warehouse.warehouse import WarehouseStore

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step whose failure must stop publication; the message says what to fix."""


def prepare_build(settings: Settings, run_id: str) -> Path:
    build = WarehouseStore(settings.warehouse_dir).new_build(run_id)
    log.info("building into %s", build)
    return build


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
            "statuses": sorted({f.status for f in report.files})}


def dbt_env(build: Path) -> dict[str, str]:
    return {"SLF_WAREHOUSE_PATH": str(build)}


def dbt_build(settings: Settings, build: Path, target_dir: Path | None = None) -> None:
    """`dbt build` in-process (the DAG runs the same build through Cosmos)."""
    import os

    from dbt.cli.main import dbtRunner

    os.environ.update(dbt_env(build))
    args = ["build", "--project-dir", str(settings.dbt_project_dir), "--profiles-dir",
            str(settings.dbt_project_dir), "--target", "duckdb"]
    if target_dir:
        args += ["--target-path", str(target_dir)]
    result = dbtRunner().invoke(args)
    if not result.success:
        raise StepFailed(f"dbt build failed: {result.exception or 'see the dbt log above for the failing node'}")


def quality_checks(settings: Settings, build: Path, run_id: str) -> dict[str, object]:
    from slf_warehouse.quality.checkpoint import run_quality_checks

    result = run_quality_checks(build, settings.quality_dir, run_id, settings.expectations_dir)
    if not result.success:
        raise StepFailed("quality checks failed, the warehouse is not published: " + "; ".join(result.failed))
    return {"success": result.success, "data_docs": str(result.data_docs_index)}


def publish(settings: Settings, build: Path, run_id: str) -> dict[str, str]:
    published = WarehouseStore(settings.warehouse_dir).publish(build, run_id)
    return {"path": str(published.path), "version": published.version, "run_id": run_id}


def render_answers(settings: Settings, run_id: str) -> list[dict[str, object]]:
    """Every inquiry in inquiries/ from the published warehouse; says which figures changed."""
    from slf_warehouse.answers.published import answer_from_published

    answers = [answer_from_published(inquiry, settings.output_dir)
               for inquiry in sorted(settings.inquiries_dir.glob("*.yaml"))]
    for a in answers:
        changed = ", ".join(a["changed_figures"]) or "none"
        log.info("rendered %s (figures changed since the last edition: %s)", a["pdf"], changed)
    (settings.answers_dir / "index.json").write_text(json.dumps(answers, indent=2), encoding="utf-8")
    return answers
