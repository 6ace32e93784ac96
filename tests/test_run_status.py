"""`slf status` on a published DuckDB warehouse made here: the version, and its source files read
from the load manifest the way the letters' appendix reads them (answers.render.source_files)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from slf_warehouse.quality import history
from slf_warehouse.run_status import format_status, status
from slf_warehouse.warehouse import WarehouseStore
from test_answers_render import SEED, build_warehouse
from test_quality_history import RUN1_FILES, add_manifest


def test_status_names_the_published_version_and_its_loaded_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLF_WAREHOUSE_DIR", raising=False)
    monkeypatch.delenv("SLF_WAREHOUSE_ENGINE", raising=False)
    out = tmp_path / "out"
    store = WarehouseStore(out / "warehouse")
    store.builds.mkdir(parents=True)
    build = build_warehouse(store.builds / "20240906T060000-run-1.duckdb", SEED)
    with duckdb.connect(str(build)) as con:
        con.execute("CREATE SCHEMA audit")
    add_manifest(build, "run-1", RUN1_FILES)
    history.record_run(build, "run-1", status="published", finished=True, history_dir=out / "quality")
    version = store.publish(build, "run-1").version

    found = status(out)
    published = found["published"]
    assert (published["version"], published["run_id"]) == (version, "run-1")
    # loaded files only: the rejected loen file and the skipped duplicate are not the warehouse's
    assert published["source_files"] == {"posteringer": {"files": 2, "rows": 4}}
    assert [r["run_id"] for r in found["runs"]] == ["run-1"]
    assert "  sources    2 files: posteringer 2 (4 rows)" in format_status(found, out)
