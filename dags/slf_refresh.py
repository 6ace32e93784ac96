"""
### slf_refresh — the scheduled refresh of the SLF warehouse

Weekday mornings, finance staff's data arrives in the landing area (one folder per source, formats
in `docs/data-contracts.md`). This DAG:

1. **prepare_build** — copies the published warehouse into a new build file (nothing published is touched);
2. **ingest_<source>** — one group per source: `pull` fetches the deliveries from the source's location
   (`SLF_SOURCE_<SOURCE>_URL`: a folder or an HTTP(S) share, credentials from the Airflow Connection
   `slf_source_<source>`; retried with back-off), `load` validates every file against the contract and
   loads it into `raw.*` (a re-delivered month replaces that month), quarantines broken files with an
   error report and fails so the run shows red;
3. **dbt_build** — `dbt build` (staging → intermediate → marts, with every schema and data test) through
   astronomer-cosmos;
4. **quality_checkpoint** — Great Expectations suites from `expectations/`; Data Docs in `OUT/quality/`;
5. **publish** — switches the published pointer to this build (only after everything above passed);
6. **render_answers** — every inquiry in `inquiries/` rendered to `OUT/answers/<inquiry>.pdf`.

Params `landing_dir` and `output_dir` pick the folders (the CLI `slf run` sets them).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, Param, TaskGroup, dag, get_current_context, task

from slf_warehouse.dbt_tasks import dbt_tasks

# Answers and reports follow this asset: it is updated only when a build passed the quality gate.
PUBLISHED_WAREHOUSE = Asset("slf://warehouse/published")
WRITER_POOL = "slf_warehouse_writer"
SOURCES = ("enheder", "bevillinger", "aktiviteter", "posteringer", "loen", "social_kapital")
DEFAULT_LANDING = os.environ.get("SLF_LANDING_DIR", "landing")
DEFAULT_OUTPUT = os.environ.get("SLF_OUTPUT_DIR", "output")
DBT_PROJECT = Path(os.environ.get("SLF_PROJECT_DIR", Path(__file__).resolve().parents[1])) / "dbt_project"


def _settings():
    from slf_warehouse.settings import Settings

    params = get_current_context()["params"]
    return Settings.from_env(params["landing_dir"], params["output_dir"])


def _run_id() -> str:
    return get_current_context()["run_id"]


@dag(
    dag_id="slf_refresh",
    schedule="0 6 * * 1-5",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["slf", "refresh"],
    default_args={"owner": "boern-og-unge-oekonomi", "retries": 0},
    params={
        "landing_dir": Param(DEFAULT_LANDING, type="string", description="landing folder, one folder per source"),
        "output_dir": Param(DEFAULT_OUTPUT, type="string", description="where answers and reports are written"),
    },
    doc_md=__doc__,
)
def slf_refresh():
    @task
    def prepare_build() -> str:
        from slf_warehouse import pipeline

        return str(pipeline.prepare_build(_settings(), _run_id()))

    build = prepare_build()

    ingested = []
    for source in SOURCES:
        with TaskGroup(group_id=f"ingest_{source}"):
            # Only the pull talks to another system, so only it retries (with back-off).
            @task(task_id="pull", retries=3, retry_delay=timedelta(seconds=30), retry_exponential_backoff=True)
            def pull(source: str = source) -> str:
                from slf_warehouse import pipeline

                return pipeline.pull_source(_settings(), source)

            # Loads write the one build file, which takes one writer at a time: a one-slot pool.
            @task(task_id="load", pool=WRITER_POOL)
            def load(build_path: str, folder: str, source: str = source) -> dict:
                from pathlib import Path

                from slf_warehouse import pipeline

                return pipeline.ingest_source(_settings(), Path(build_path), source, _run_id(), Path(folder))

            ingested.append(load(build, pull()))

    # The dbt step's shape (one `dbt build` task by default) is chosen by SLF_DBT_MODE; see
    # slf_warehouse.dbt_tasks and docs/performance.md for what each costs.
    dbt = dbt_tasks(DBT_PROJECT, "{{ ti.xcom_pull(task_ids='prepare_build') }}", WRITER_POOL)
    dbt_first, dbt_last = (dbt[0], dbt[-1]) if isinstance(dbt, list) else (dbt, dbt)

    @task
    def quality_checkpoint(build_path: str) -> dict:
        from pathlib import Path

        from slf_warehouse import pipeline

        return pipeline.quality_checks(_settings(), Path(build_path), _run_id())

    @task(outlets=[PUBLISHED_WAREHOUSE])
    def publish(build_path: str) -> dict:
        from pathlib import Path

        from slf_warehouse import pipeline

        return pipeline.publish(_settings(), Path(build_path), _run_id())

    @task
    def render_answers() -> list[str]:
        from slf_warehouse import pipeline

        return pipeline.render_answers(_settings(), _run_id())

    checked = quality_checkpoint(build)
    published = publish(build)
    ingested >> dbt_first
    dbt_last >> checked >> published >> render_answers()


slf_refresh()
