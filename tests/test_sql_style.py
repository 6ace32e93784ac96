"""SQL style of the dbt models: `sqlfluff lint` with the dbt templater and dbt_project/.sqlfluff.

The dbt templater renders every model with dbt itself (refs, sources, vars, macros) against the
duckdb target; nothing is read from the warehouse, so an in-memory DuckDB is enough. sqlfluff takes
the templater from the configuration of the directory it runs in, hence `--config`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
DBT_PROJECT = PROJECT / "dbt_project"


def sqlfluff_executable() -> str:
    candidate = Path(sys.executable).with_name("sqlfluff")
    return str(candidate) if candidate.exists() else (shutil.which("sqlfluff") or "sqlfluff")


def test_models_pass_sqlfluff(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "SLF_WAREHOUSE_PATH": ":memory:",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        # dbt's own artefacts of this run go to tmp, not into dbt_project/target
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [
            sqlfluff_executable(),
            "lint",
            "dbt_project/models",
            "--config",
            "dbt_project/.sqlfluff",
            "--format",
            "json",
            "--nofail",
        ],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.stdout.strip(), result.stderr[-4000:]
    files = json.loads(result.stdout)
    linted = {Path(f["filepath"]).name for f in files}
    models = {p.name for p in (DBT_PROJECT / "models").rglob("*.sql")}
    assert linted == models, "sqlfluff did not lint every model: " + ", ".join(sorted(models - linted))
    problems = [
        f"{f['filepath']}:{v['start_line_no']}:{v['start_line_pos']} {v['code']} {v['description']}"
        for f in files
        for v in f["violations"]
    ]
    assert not problems, "\n".join(problems)


def test_config_keeps_the_portable_rules() -> None:
    """The rules that keep the models portable to PostgreSQL and readable stay switched on."""
    config = (DBT_PROJECT / ".sqlfluff").read_text(encoding="utf-8")
    assert "templater = dbt" in config and "dialect = duckdb" in config
    assert "preferred_type_casting_style = cast" in config
    for section in ("capitalisation.keywords", "capitalisation.functions", "capitalisation.literals"):
        assert (
            f"[sqlfluff:rules:{section}]\ncapitalisation_policy = lower" in config
            or f"[sqlfluff:rules:{section}]\nextended_capitalisation_policy = lower" in config
        ), section
    assert "[sqlfluff:rules:aliasing.table]\naliasing = explicit" in config
    exclude = next(line for line in config.splitlines() if line.startswith("exclude_rules"))
    assert {r.strip() for r in exclude.split("=", 1)[1].split(",")} == {"ST06"}
