"""DAG integrity: every DAG file imports cleanly, is owned, tagged and documented, retries where meant."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.usefixtures("airflow_db")]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag()


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert "slf_refresh" in dagbag.dag_ids


def test_every_dag_is_owned_tagged_documented(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", (dag_id, t.task_id)


def test_refresh_shape(dagbag) -> None:
    dag = dagbag.get_dag("slf_refresh")
    assert dag.catchup is False and dag.max_active_runs == 1
    ids = set(dag.task_ids)
    for source in ("enheder", "bevillinger", "aktiviteter", "posteringer", "loen", "social_kapital"):
        assert {f"ingest_{source}.pull", f"ingest_{source}.load"} <= ids
        # Pulls retry with back-off (a network share or HTTP source may blink); nothing else does.
        pull = dag.get_task(f"ingest_{source}.pull")
        assert pull.retries == 3 and pull.retry_exponential_backoff
        load = dag.get_task(f"ingest_{source}.load")
        assert load.retries == 0
        assert load.pool == "slf_warehouse_writer"  # one writer of the DuckDB build at a time
    for step in ("dbt_build", "quality_checkpoint", "publish", "render_answers"):
        assert dag.get_task(step).retries == 0
    publish = dag.get_task("publish")
    upstream = publish.get_flat_relative_ids(upstream=True)
    assert {"dbt_build", "quality_checkpoint", "prepare_build"} <= upstream
    assert {f"ingest_{s}.load" for s in ("posteringer", "loen")} <= upstream
