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
