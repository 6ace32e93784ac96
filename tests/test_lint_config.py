"""The lint configuration does what pyproject.toml says: TID253 keeps the heavy libraries out of the
module level of the DAG files and of the modules they import when Airflow parses them, and that list
of modules is the one the DAG files really import."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
HEAVY = ("great_expectations", "dbt", "weasyprint", "cosmos")


def _ruff() -> str:
    candidate = Path(sys.executable).with_name("ruff")
    found = str(candidate) if candidate.exists() else shutil.which("ruff")
    # ruff is pinned in requirements.lock, which `make test` installs: missing, it is a broken set-up
    assert found, "ruff is not installed: run `make setup` (requirements.lock pins it)"
    return found


def _tid253_findings(root: Path) -> set[str]:
    result = subprocess.run(
        [_ruff(), "check", "--no-cache", "--select", "TID253", "--output-format", "json", "--exit-zero", "."],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {Path(f["filename"]).relative_to(root).as_posix() for f in json.loads(result.stdout)}


def _dag_path_modules() -> set[str]:
    """The project modules TID253 applies to: those pyproject.toml's negated per-file-ignore leaves out."""
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    ignores = config["tool"]["ruff"]["lint"]["per-file-ignores"]
    (glob,) = [g for g, rules in ignores.items() if "TID253" in rules]
    names = re.fullmatch(r"!\{dags/\*\.py,src/slf_warehouse/\{(.+)\}\.py\}", glob)
    assert names, f"unexpected TID253 glob {glob!r}"
    modules = (
        f"slf_warehouse.{n}".replace("/", ".").removesuffix(".__init__") for n in names.group(1).split(",")
    )
    return {"slf_warehouse" if m == "slf_warehouse.__init__" else m for m in modules}


def test_heavy_imports_are_refused_on_the_dag_files_import_path(tmp_path: Path) -> None:
    shutil.copy(PROJECT / "pyproject.toml", tmp_path / "pyproject.toml")
    top_level = "".join(f"import {lib}\n" for lib in HEAVY)
    inside = "def task() -> None:\n" + "".join(f"    import {lib}  # noqa: F401\n" for lib in HEAVY)
    files = {
        "dags/new_dag.py": top_level,
        "src/slf_warehouse/dbt_tasks.py": "from cosmos import DbtTaskGroup\n",
        "src/slf_warehouse/__init__.py": "from great_expectations import get_context\n",
        "dags/lazy_dag.py": inside,  # imported inside a task: allowed
        "src/slf_warehouse/quality/checkpoint.py": top_level,  # not on the parse path: allowed
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert _tid253_findings(tmp_path) == {
        "dags/new_dag.py",
        "src/slf_warehouse/dbt_tasks.py",
        "src/slf_warehouse/__init__.py",
    }


def test_the_project_has_no_heavy_import_on_that_path() -> None:
    assert _tid253_findings(PROJECT) == set()


@pytest.mark.airflow  # imports both DAG files
def test_the_listed_modules_are_what_the_dag_files_import() -> None:
    """Import both DAG files as Airflow's parser does and compare the project modules loaded with
    the TID253 list: a new module-level import of a project module from a DAG file must be added."""
    code = (
        "import json, runpy, sys\n"
        "for f in sys.argv[1:]:\n"
        "    runpy.run_path(f)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'slf_warehouse')))\n"
    )
    dags = sorted(str(p) for p in (PROJECT / "dags").glob("*.py"))
    result = subprocess.run(
        [sys.executable, "-c", code, *dags],
        cwd=PROJECT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert loaded == _dag_path_modules()


def _pins(lines: list[str]) -> dict[str, str]:
    """`name==version` requirement lines, by normalised name (PEP 503: pre_commit is pre-commit)."""
    pins = {}
    for line in lines:
        if m := re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+).*", line):
            pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
    return pins


def test_pre_commit_runs_the_pinned_tools_from_the_virtualenv() -> None:
    """The hooks are the checks `make lint` runs, with the tools requirements.lock pins (nothing is
    downloaded at commit time): each hook runs the virtualenv's tool, whose version is the lock's
    and the test extra's."""
    from importlib.metadata import version

    import yaml

    config = yaml.safe_load((PROJECT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    commands = {
        "ruff": ".venv/bin/ruff check",
        "ruff-format": ".venv/bin/ruff format --check",
        "sqlfluff": ".venv/bin/sqlfluff lint",
        "mypy": ".venv/bin/mypy",
    }
    for hook_id, command in commands.items():
        assert hook_id in hooks, f"no {hook_id} hook"
        assert hooks[hook_id]["language"] == "system", hook_id
        assert command in hooks[hook_id]["entry"], (hook_id, hooks[hook_id]["entry"])
    assert re.search(hooks["sqlfluff"]["files"], "dbt_project/models/marts/dim_calendar.sql")

    lock = _pins((PROJECT / "requirements.lock").read_text(encoding="utf-8").splitlines())
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = _pins(project["optional-dependencies"]["test"])
    for tool in ("ruff", "mypy", "sqlfluff", "sqlfluff-templater-dbt", "pre-commit"):
        assert extra[tool] == lock[tool] == version(tool), (
            tool,
            extra.get(tool),
            lock.get(tool),
            version(tool),
        )
