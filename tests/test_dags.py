"""DAG integrity: every DAG file imports cleanly, is owned, tagged and documented, retries where meant."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.usefixtures("airflow_db")]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    # the default dbt shape, whatever the developer's shell exports (`slf airflow` sets watcher)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLF_DBT_MODE", "build")
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


def test_watcher_mode_shape(monkeypatch) -> None:
    """SLF_DBT_MODE=watcher, the scheduler's mode (`slf airflow`): one producer in the writer pool runs
    `dbt build`; a sensor per model, seed and snapshot, and one per node with tests, all outside that
    pool (a sensor holding the one writer slot would keep the producer waiting)."""
    import json
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.bases.sensor import BaseSensorOperator

    monkeypatch.setenv("SLF_DBT_MODE", "watcher")
    bag = DagBag()
    assert bag.import_errors == {}
    dag = bag.get_dag("slf_refresh")
    producer = dag.get_task("dbt.dbt_producer_watcher")
    assert producer.pool == "slf_warehouse_writer"
    assert "slf_warehouse.quality.history.save_dbt_run_results" in producer.callback  # the run history
    assert {f"ingest_{s}.load" for s in ("posteringer", "loen")} <= producer.upstream_task_ids

    sensors = {t.task_id: t for t in dag.tasks if isinstance(t, BaseSensorOperator)}
    for sensor in sensors.values():
        assert sensor.pool != "slf_warehouse_writer", sensor.task_id
        # pokes in its worker (a deferred sensor can be failed by Airflow 3.3's stale-event race), bounded
        assert not sensor.deferrable and sensor.execution_timeout, sensor.task_id
    writers = sorted(
        t.task_id for t in dag.tasks if t.pool == "slf_warehouse_writer" and t.task_id.startswith("dbt")
    )
    assert writers == ["dbt.dbt_producer_watcher", "dbt_docs"]

    manifest_path = Path(__file__).resolve().parents[1] / "dbt_project" / "target" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    nodes = manifest["nodes"].values()
    suffix = {"model": "run", "seed": "seed", "snapshot": "snapshot"}
    built = {n["unique_id"]: n["name"] for n in nodes if n["resource_type"] in suffix}
    assert {
        f"dbt.{n['name']}.{suffix[n['resource_type']]}" for n in nodes if n["resource_type"] in suffix
    } <= sensors.keys()
    # Every data test's result shows on a sensor: its parent's `.test` (a test of several nodes on each).
    for test in (n for n in nodes if n["resource_type"] == "test"):
        parents = [built[p] for p in test["depends_on"]["nodes"] if p in built]
        assert parents and all(f"dbt.{p}.test" in sensors for p in parents), test["name"]
    # The quality step starts only when every sensor has reported.
    assert sensors.keys() <= dag.get_task("quality_checkpoint").get_flat_relative_ids(upstream=True)
