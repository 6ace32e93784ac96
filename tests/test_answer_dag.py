"""dags/slf_answer_inquiry.py: imports cleanly, is shaped as documented, and its task renders an
answer from the published warehouse when called directly (no scheduler)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from test_answers_render import SEED, build_warehouse

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.usefixtures("airflow_db")]

PROJECT = Path(__file__).resolve().parents[1]
DAG_FILE = PROJECT / "dags" / "slf_answer_inquiry.py"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.get_dag("slf_answer_inquiry")


def test_shape(dag) -> None:
    assert dag.schedule is None and type(dag.timetable).__name__ == "NullTimetable"  # manual trigger only
    assert dag.catchup is False
    assert set(dag.tags) >= {"slf", "answers"}
    assert dag.doc_md and "render_answer" in dag.doc_md and len(dag.doc_md) > 200
    assert set(dag.params.keys()) == {"inquiry", "output_dir"}
    assert dag.task_ids == ["render_answer"]
    task = dag.get_task("render_answer")
    assert task.owner == "boern-og-unge-oekonomi" and task.retries == 0
    assert [a.uri for a in task.inlets] == ["slf://warehouse/published"]


def test_the_file_is_thin() -> None:
    """Only airflow.sdk and the standard library at module level: the package is imported in the task."""
    tree = ast.parse(DAG_FILE.read_text(encoding="utf-8"))
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {"__future__", "os", "datetime", "airflow.sdk"}, imported


@pytest.fixture()
def published_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An output folder whose warehouse/ has a published version (the seed letter's numbers)."""
    from slf_warehouse.warehouse import WarehouseStore

    monkeypatch.delenv("SLF_WAREHOUSE_DIR", raising=False)
    out = tmp_path / "out"
    store = WarehouseStore(out / "warehouse")
    store.builds.mkdir(parents=True)
    build = build_warehouse(store.builds / "20240906T060000-scheduled.duckdb", SEED)
    store.publish(build, "scheduled__2024-09-06")
    return out


def test_task_renders_from_the_published_warehouse(dag, published_output: Path) -> None:
    render_answer = dag.get_task("render_answer").python_callable
    result = render_answer(params={"inquiry": "enhedslisten-slf", "output_dir": str(published_output)})
    answers = published_output / "answers"
    assert result["pdf"] == str(answers / "enhedslisten-slf.pdf") and Path(result["pdf"]).is_file()
    assert Path(result["figures_json"]).is_file() and Path(result["html"]).is_file()
    assert result["warehouse_version"] == "20240906T060000-scheduled"
    assert result["warehouse_run_id"] == "scheduled__2024-09-06"
    assert result["first_edition"] is True and result["changed_figures"] == []

    published = published_output / "warehouse" / "versions" / "20240906T060000-scheduled.duckdb"
    before = published.stat().st_mtime_ns
    again = render_answer(params={"inquiry": str(PROJECT / "inquiries" / "enhedslisten-slf.yaml"),
                                  "output_dir": str(published_output)})
    assert again["first_edition"] is False and again["changed_figures"] == []
    assert published.stat().st_mtime_ns == before  # read-only


def test_task_failures_are_clear(dag, published_output: Path, tmp_path: Path) -> None:
    from slf_warehouse.answers.inquiry import InquiryError
    from slf_warehouse.warehouse import NoPublishedWarehouse

    render_answer = dag.get_task("render_answer").python_callable
    with pytest.raises(InquiryError, match=r"no such inquiry file .*enhedslisten-slf.yaml"):
        render_answer(params={"inquiry": "enhedslisten", "output_dir": str(published_output)})
    with pytest.raises(InquiryError, match=r"give a file name"):
        render_answer(params={"inquiry": "../pyproject.toml", "output_dir": str(published_output)})
    with pytest.raises(NoPublishedWarehouse):
        render_answer(params={"inquiry": "enhedslisten-slf.yaml", "output_dir": str(tmp_path / "empty")})
    assert not (tmp_path / "empty" / "answers").exists()
