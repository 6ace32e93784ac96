"""
### slf_refresh — the scheduled refresh of the SLF warehouse

Weekday mornings, finance staff's data arrives in the landing area (one folder per source, formats
in `docs/data-contracts.md`). This DAG:

1. **prepare_build** — claims the output folder (one refresh per folder at a time: a second is refused,
   naming the holder; a run left unfinished by a killed process is recorded as failed and its build
   removed), then copies the published warehouse into a new build (a file, or with
   `SLF_WAREHOUSE_ENGINE=postgres` the build's own schemas on the server; nothing published is touched);
2. **ingest_<source>** — one group per source: `pull` fetches the deliveries from the source's location
   (`SLF_SOURCE_<SOURCE>_URL`: a folder or an HTTP(S) share, credentials from the Airflow Connection
   `slf_source_<source>`; retried with back-off), `load` validates every file against the contract and
   loads it into `raw.*` (a re-delivered month replaces that month), quarantines broken files with an
   error report and fails so the run shows red;
3. **dbt_build** — `dbt build` (staging → intermediate → marts, with every data test) through
   astronomer-cosmos; the ledger and payroll models are incremental (param `full_refresh` rebuilds them);
4. **quality_checkpoint** — Great Expectations suites from `expectations/`; Data Docs in `OUT/quality/`;
   **quality_decision** — only after a refused gate: a finance lead decides (below);
   then **dbt_docs** — `dbt docs generate --static` into `OUT/dbt_docs/`;
5. **publish** — switches the published pointer to this build (only after everything above passed) and
   renders the run's quality report (`OUT/quality/report.pdf`);
6. **render_answers** — every inquiry in `inquiries/` rendered to `OUT/answers/<inquiry>.pdf`;
7. **record_outcome** — a run that was not published is still recorded in `OUT/quality/history.jsonl` and
   its quality report (`OUT/quality/report.pdf`);
8. **end_run** — a teardown that frees the output folder for the next refresh, whatever happened.

The quality step runs the Great Expectations suites and the reconciliations, records everything in the
build's `audit` tables and refuses publication when a check failed, unless the param
`quality_override` gives a written reason (recorded, and printed on every page of the answers).
Without that param, a refused run of the shared deployment (scheduled, UI, REST) waits in
**quality_decision** (Browse → Required Actions) for a finance lead (role `slf_finance_lead`) to choose
"Offentliggør alligevel" with a written reason (recorded as the param's would be) or "Stop" (not
published); no answer within 12 hours stops it too. `slf run` / `make demo` (embedded, `dag.test()`)
never wait: there a refused gate fails the run (`slf_warehouse.refresh_run`, docs/quality-override.md).

No param names a folder: the shared deployment's come from its configuration (`SLF_LANDING_DIR`,
`SLF_OUTPUT_DIR`); a run whose conf names one (`landing_dir`, `output_dir`) is refused by its first
task. Only `slf run`'s embedded run takes them from its conf (`--landing`, `--out`).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, Param, TaskGroup, dag, get_current_context, task

from slf_warehouse.dbt_tasks import BUILD_MACROS, dbt_docs_task, dbt_tasks, output_dir_macro
from slf_warehouse.override_decision import QualityOverrideDecision

# Answers and reports follow this asset: it is updated only when a build passed the quality gate.
PUBLISHED_WAREHOUSE = Asset("slf://warehouse/published")
WRITER_POOL = "slf_warehouse_writer"
SOURCES = ("enheder", "bevillinger", "aktiviteter", "posteringer", "loen", "social_kapital")
# A refused gate waits this long for a finance lead: the day's refresh (06:00) is decided on the same
# working day, and the next morning's run is not kept waiting behind it (max_active_runs=1).
DECISION_TIMEOUT = timedelta(hours=12)
# prepare_build's build reference (build_ref.BuildRef), as the dbt tasks' templates read it
BUILD_XCOM = "ti.xcom_pull(task_ids='prepare_build')"
DBT_PROJECT = Path(os.environ.get("SLF_PROJECT_DIR", Path(__file__).resolve().parents[1])) / "dbt_project"


def _settings():
    from airflow.sdk.exceptions import AirflowFailException

    from slf_warehouse.file_modes import private_outputs
    from slf_warehouse.refresh_run import PathParamRefused, refresh_settings

    private_outputs()  # a task may run in a worker nothing of ours started: its files owner-only too
    try:
        return refresh_settings(get_current_context()["params"])
    except PathParamRefused as refused:  # no retry (the pulls retry) makes a folder in the conf right
        raise AirflowFailException(str(refused)) from None


def _build(build_ref: str):
    """The run's build from prepare_build's reference (a DuckDB file or a PostgreSQL build)."""
    from slf_warehouse import pipeline

    return pipeline.build_from_ref(_settings(), build_ref)


def _run_id() -> str:
    return get_current_context()["run_id"]


def _dagrun_alive(run_id: str) -> bool:
    """Whether another run of this DAG that holds the output folder is still queued or running."""
    from slf_warehouse.run_lock import dagrun_state_is_live

    try:
        state = get_current_context()["ti"].get_dagrun_state(dag_id="slf_refresh", run_id=run_id)
    except Exception:  # unknown to this Airflow (the API answers an error): nothing here runs it
        return False
    return dagrun_state_is_live(state)


def _record_outcome() -> None:
    """record_outcome's work: a run that did not publish goes into the history with its unfinished steps."""
    from slf_warehouse import pipeline

    ti = get_current_context()["ti"]
    if ti.xcom_pull(task_ids="publish") is not None:
        return
    # Every step below returns a value, so a missing one is a step that did not finish.
    steps = [
        "prepare_build",
        *(f"ingest_{s}.load" for s in SOURCES),
        "quality_checkpoint",
        "quality_decision",
        "publish",
    ]
    unfinished = [step for step in steps if ti.xcom_pull(task_ids=step) is None]
    build_ref = ti.xcom_pull(task_ids="prepare_build")
    try:
        build = _build(build_ref) if build_ref else None
    except pipeline.StepFailed:  # its build is gone: the history line is still written
        build = None
    pipeline.record_unpublished_run(_settings(), build, _run_id(), unfinished)


@dag(
    dag_id="slf_refresh",
    schedule="0 6 * * 1-5",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["slf", "refresh"],
    default_args={"owner": "boern-og-unge-oekonomi", "retries": 0},
    params={
        "quality_override": Param(
            "",
            type="string",
            description="publish despite failed quality checks: "
            "the written reason (recorded, and printed on every page of the answers)",
        ),
        "full_refresh": Param(
            False,
            type="boolean",
            description="rebuild the incremental dbt models from all "
            "loaded rows (after a change to their logic); otherwise only new deliveries",
        ),
    },
    doc_md=__doc__,
    user_defined_macros={"slf_output_dir": output_dir_macro, **BUILD_MACROS},
)
def slf_refresh():
    @task
    def prepare_build() -> str:
        from slf_warehouse import pipeline
        from slf_warehouse.build_ref import BuildRef

        return BuildRef.of(pipeline.prepare_build(_settings(), _run_id(), _dagrun_alive)).to_xcom()

    build = prepare_build()

    ingested = []
    for source in SOURCES:
        with TaskGroup(group_id=f"ingest_{source}"):
            # Only the pull talks to another system, so only it retries (with back-off).
            @task(
                task_id="pull", retries=3, retry_delay=timedelta(seconds=30), retry_exponential_backoff=True
            )
            def pull(source: str = source) -> str:
                from slf_warehouse import pipeline

                return pipeline.pull_source(_settings(), source)

            # Loads write the one build file, which takes one writer at a time: a one-slot pool.
            @task(task_id="load", pool=WRITER_POOL)
            def load(build_ref: str, folder: str, source: str = source) -> dict:
                from pathlib import Path

                from slf_warehouse import pipeline

                return pipeline.ingest_source(_settings(), _build(build_ref), source, _run_id(), Path(folder))

            ingested.append(load(build, pull()))

    # The dbt step's shape (one `dbt build` task by default) is chosen by SLF_DBT_MODE; see
    # slf_warehouse.dbt_tasks and docs/performance.md for what each costs.
    dbt = dbt_tasks(DBT_PROJECT, BUILD_XCOM, WRITER_POOL)
    dbt_first, dbt_last = (dbt[0], dbt[-1]) if isinstance(dbt, list) else (dbt, dbt)

    @task
    def quality_checkpoint(build_ref: str) -> dict:
        from slf_warehouse import pipeline
        from slf_warehouse.refresh_run import is_embedded

        override = get_current_context()["params"].get("quality_override") or None
        # Nobody answers a question inside `slf run`: there a refusal fails the run, as the CLI says.
        waits = not is_embedded() and not (override or "").strip()
        return pipeline.quality_checks(_settings(), _build(build_ref), _run_id(), override, waits)

    @task(outlets=[PUBLISHED_WAREHOUSE])
    def publish(build_ref: str) -> dict:
        from slf_warehouse import pipeline

        return pipeline.publish(_settings(), _build(build_ref), _run_id())

    # Runs whatever happened upstream, so a refused or failed run is in the history and the report;
    # a leaf beside render_answers, so the run's state still follows the real work.
    @task(trigger_rule="all_done")
    def record_outcome() -> None:
        _record_outcome()

    @task
    def render_answers() -> list[dict]:
        from slf_warehouse import pipeline

        return pipeline.render_answers(_settings(), _run_id())

    # A teardown: it runs after everything else, whatever failed, and does not decide the run's state.
    @task
    def end_run() -> None:
        from slf_warehouse import pipeline

        pipeline.end_run(_settings(), _run_id())

    checked = quality_checkpoint(build)
    decided = QualityOverrideDecision(
        task_id="quality_decision",
        checkpoint_task_id="quality_checkpoint",
        build_task_id="prepare_build",
        response_timeout=DECISION_TIMEOUT,
    )
    published = publish(build)
    ingested >> dbt_first
    docs = dbt_docs_task(DBT_PROJECT, BUILD_XCOM, WRITER_POOL)
    answers, outcome = render_answers(), record_outcome()
    dbt_last >> checked >> decided >> docs >> published >> answers
    published >> outcome
    [answers, outcome] >> end_run().as_teardown()


slf_refresh()
