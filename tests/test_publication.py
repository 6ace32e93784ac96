"""Atomic publication: a build is published only whole, and a killed refresh leaves it untouched."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from slf_warehouse.quality.history import start_run
from slf_warehouse.warehouse import KEEP_VERSIONS, BuildRefused, NoPublishedWarehouse, WarehouseStore


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_build(store: WarehouseStore, run_id: str, value: int) -> Path:
    build = store.new_build(run_id)
    start_run(build, run_id)  # what prepare_build records: the build's own run
    with duckdb.connect(str(build)) as con:
        con.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        con.execute("INSERT INTO t VALUES (?)", [value])
    return build


def test_builds_start_from_the_published_version_and_publish_atomically(tmp_path: Path) -> None:
    store = WarehouseStore(tmp_path)
    with pytest.raises(NoPublishedWarehouse):
        store.published()
    store.publish(_make_build(store, "run-1", 1), "run-1")
    second = _make_build(store, "run-2", 2)
    # The build carries the published history; the published file does not see the build's rows.
    with duckdb.connect(str(second), read_only=True) as con:
        assert con.execute("SELECT list(v ORDER BY v) FROM t").fetchall()[0][0] == [1, 2]
    with duckdb.connect(str(store.published().path), read_only=True) as con:
        assert con.execute("SELECT list(v ORDER BY v) FROM t").fetchall()[0][0] == [1]
    published = store.publish(second, "run-2")
    assert published.run_id == "run-2" and not second.exists()


def test_keeps_the_last_versions(tmp_path: Path) -> None:
    store = WarehouseStore(tmp_path)
    for i in range(KEEP_VERSIONS + 3):
        store.publish(_make_build(store, f"run-{i}", i), f"run-{i}")
    assert len(list((tmp_path / "versions").glob("*.duckdb"))) == KEEP_VERSIONS
    assert store.published().run_id == f"run-{KEEP_VERSIONS + 2}"


def test_publish_refuses_a_missing_build_and_creates_nothing(tmp_path: Path) -> None:
    """Another run's publication used to prune this build; publish then let DuckDB create an empty
    file at the path and pointed published.json at a warehouse with 0 tables."""
    store = WarehouseStore(tmp_path)
    store.publish(_make_build(store, "run-1", 1), "run-1")
    pointer = (tmp_path / "published.json").read_bytes()
    gone = _make_build(store, "run-2", 2)
    store.discard(gone)
    with pytest.raises(BuildRefused, match="missing"):
        store.publish(gone, "run-2")
    assert not gone.exists()
    assert (tmp_path / "published.json").read_bytes() == pointer
    with duckdb.connect(str(store.published().path), read_only=True) as con:
        assert con.execute("SELECT list(v) FROM t").fetchall()[0][0] == [1]


def test_publish_refuses_a_build_that_is_not_its_own(tmp_path: Path) -> None:
    store = WarehouseStore(tmp_path)
    store.publish(_make_build(store, "run-1", 1), "run-1")
    theirs = _make_build(store, "run-2", 2)
    with pytest.raises(BuildRefused, match="run run-2's build, not run run-3's"):
        store.publish(theirs, "run-3")
    # An empty file where a build should be (what DuckDB leaves when told to open a missing path).
    empty = store.builds / "20990101T000000-run-4.duckdb"
    duckdb.connect(str(empty)).close()
    with pytest.raises(BuildRefused, match="holds no tables"):
        store.publish(empty, "run-4")
    # A build copied from the published warehouse that this run never started (no audit.runs row).
    foreign = store.new_build("run-5")
    with duckdb.connect(str(foreign)) as con:
        con.execute("INSERT INTO t VALUES (5)")
    with pytest.raises(BuildRefused, match="does not record run run-5"):
        store.publish(foreign, "run-5")
    assert store.published().run_id == "run-1" and theirs.exists()


def test_pruning_leaves_another_runs_build_in_progress_alone(tmp_path: Path) -> None:
    store = WarehouseStore(tmp_path)
    store.publish(_make_build(store, "run-0", 0), "run-0")
    in_progress = _make_build(store, "slow-run", 1)
    finished = _make_build(store, "refused-run", 2)
    store.finish(finished)  # ended without publishing (record_outcome)
    store.publish(_make_build(store, "fast-run", 3), "fast-run")
    assert in_progress.exists() and store.build_run(in_progress) == "slow-run"
    assert not finished.exists()
    # ... so the slow run still publishes a whole warehouse.
    published = store.publish(in_progress, "slow-run")
    with duckdb.connect(str(published.path), read_only=True) as con:
        assert con.execute("SELECT list(v ORDER BY v) FROM t").fetchall()[0][0] == [0, 1]


def test_warehouse_files_are_readable_by_the_service_user_only(tmp_path: Path) -> None:
    store = WarehouseStore(tmp_path)
    first = _make_build(store, "run-1", 1)
    published = store.publish(first, "run-1")
    build = _make_build(store, "run-2", 2)  # copied from the published version
    modes = {
        p: p.stat().st_mode & 0o777
        for p in (
            build,
            tmp_path / "builds",
            published.path,
            tmp_path / "versions",
            tmp_path / "published.json",
        )
    }
    assert modes[build] == 0o600 and modes[tmp_path / "builds"] == 0o700
    for path in (published.path, tmp_path / "published.json"):
        assert modes[path] == 0o600, path
    assert modes[tmp_path / "versions"] == 0o700


KILLED_REFRESH = """
import sys
from pathlib import Path
from slf_warehouse import pipeline
from slf_warehouse.settings import Settings
settings = Settings.from_env(sys.argv[1], sys.argv[2])
build = pipeline.prepare_build(settings, sys.argv[3])
for source in ("enheder", "bevillinger", "aktiviteter", "posteringer", "loen", "social_kapital"):
    pipeline.ingest_source(settings, build, source, sys.argv[3])
pipeline.dbt_build(settings, build)
if sys.argv[3] == "first":
    pipeline.publish(settings, build, sys.argv[3])
"""


@pytest.mark.slow
def test_killed_refresh_leaves_published_warehouse_byte_identical(
    sample_landing: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = [sys.executable, "-c", KILLED_REFRESH, str(sample_landing), str(out)]
    subprocess.run([*run, "first"], check=True, capture_output=True, timeout=600)
    store = WarehouseStore(out / "warehouse")
    pointer = (out / "warehouse" / "published.json").read_bytes()
    published_sha = _sha(store.published().path)

    # A correction arrives, and the refresh that loads it dies mid-build.
    month = sample_landing / "posteringer" / "posteringer_2023-03.csv"
    month.write_bytes(month.read_bytes().replace(b";SLF;", b";DRIFT;", 1))
    proc = subprocess.Popen(
        [*run, "second"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while not list((out / "warehouse" / "builds").glob("*.duckdb")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(4)  # well into ingestion or dbt
    assert proc.poll() is None, "the refresh finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert (out / "warehouse" / "published.json").read_bytes() == pointer
    assert _sha(store.published().path) == published_sha
    with duckdb.connect(str(store.published().path), read_only=True) as con:
        assert (
            con.execute("SELECT count(*) FROM audit.load_manifest WHERE status = 'loaded'").fetchall()[0][0]
            > 0
        )
    assert json.loads(pointer)["run_id"] == "first"
