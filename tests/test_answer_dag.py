"""dags/slf_answer_inquiry.py: imports cleanly, is shaped as documented (draft, approval, conclusion;
the inquiry chosen from a list), and its first task renders a draft from the published warehouse
when called directly (no scheduler)."""

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
    assert dag.doc_md and "render_draft" in dag.doc_md and len(dag.doc_md) > 200
    assert set(dag.params.keys()) == {"inquiry", "edition_note"}  # no param names a folder
    assert sorted(dag.task_ids) == ["approve", "conclude", "render_draft"]
    assert dag.get_task("approve").upstream_task_ids == {"render_draft"}
    assert dag.get_task("conclude").upstream_task_ids == {"render_draft", "approve"}
    task = dag.get_task("render_draft")
    assert task.owner == "boern-og-unge-oekonomi" and task.retries == 0
    assert [a.uri for a in task.inlets] == ["slf://warehouse/published"]


def test_the_inquiry_is_chosen_from_a_list(dag) -> None:
    """The trigger form's drop-down: every file in inquiries/, shown by party and subject."""
    schema = dag.params.get_param("inquiry").schema
    files = sorted(p.stem for p in (PROJECT / "inquiries").glob("*.yaml"))
    assert schema["enum"] == files and len(files) >= 2
    assert schema["values_display"]["enhedslisten-slf"] == (
        "Enhedslisten: Stærkere Læringsfællesskaber (10-dages forespørgsel)"
    )
    # Optional in the form: the UI marks a param whose type lacks null as required, and refuses to
    # trigger with it empty (seen in the screenshot of the first version).
    note = dag.params.get_param("edition_note")
    assert "null" in note.schema["type"] and note.value is None
    dag.params.validate()  # the form's defaults trigger as they are
    approve = dag.get_task("approve")
    assert approve.options == ["Godkend", "Afvis"] and list(approve.params) == ["kommentar"]


def test_the_file_is_thin() -> None:
    """Only airflow.sdk, the standard library and the approval operator (which imports only Airflow at
    module level) in the DAG file: the package's work is imported in the tasks."""
    tree = ast.parse(DAG_FILE.read_text(encoding="utf-8"))
    imported = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {
        "__future__",
        "os",
        "datetime",
        "airflow.sdk",
        "slf_warehouse.answers.approval_operator",
    }, imported
    operator = ast.parse(
        (PROJECT / "src/slf_warehouse/answers/approval_operator.py").read_text(encoding="utf-8")
    )
    top = {n.module for n in operator.body if isinstance(n, ast.ImportFrom)}
    assert top == {
        "__future__",
        "airflow.providers.standard.operators.hitl",
        "typing",
    }, top


@pytest.fixture()
def published_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SLF_OUTPUT_DIR names an output folder whose warehouse/ has a published version."""
    from slf_warehouse.warehouse import WarehouseStore

    monkeypatch.delenv("SLF_WAREHOUSE_DIR", raising=False)
    out = tmp_path / "out"
    monkeypatch.setenv("SLF_OUTPUT_DIR", str(out))
    store = WarehouseStore(out / "warehouse")
    store.builds.mkdir(parents=True)
    build = build_warehouse(store.builds / "20240906T060000-scheduled.duckdb", SEED)
    store.publish(build, "scheduled__2024-09-06")
    return out


def test_task_renders_a_draft_from_the_published_warehouse(dag, published_output: Path) -> None:
    render_draft = dag.get_task("render_draft").python_callable
    result = render_draft(params={"inquiry": "enhedslisten-slf", "edition_note": None}, run_id="manual__x")
    review = published_output / "answers" / "review" / "manual__x"
    assert result["pdf"] == str(review / "enhedslisten-slf.pdf") and Path(result["pdf"]).is_file()
    assert Path(result["figures_json"]).is_file() and Path(result["html"]).is_file()
    assert result["warehouse_version"] == "20240906T060000-scheduled"
    assert result["warehouse_run_id"] == "scheduled__2024-09-06"
    assert result["first_edition"] is True and result["changed_figures"] == []
    assert result["status"] == "waiting"


def test_task_failures_are_clear(
    dag, published_output: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from slf_warehouse.answers.approval import ApprovalError
    from slf_warehouse.warehouse import NoPublishedWarehouse

    render_draft = dag.get_task("render_draft").python_callable
    with pytest.raises(ApprovalError, match=r"'enhedslisten' is not one of the inquiries"):
        render_draft(params={"inquiry": "enhedslisten"}, run_id="r")
    with pytest.raises(ApprovalError, match=r"a path is not accepted"):
        render_draft(params={"inquiry": "../pyproject.toml"}, run_id="r")
    monkeypatch.setenv("SLF_OUTPUT_DIR", str(tmp_path / "empty"))
    with pytest.raises(NoPublishedWarehouse):
        render_draft(params={"inquiry": "enhedslisten-slf"}, run_id="r")
    assert not (tmp_path / "empty" / "answers").exists()
