"""Outputs that may hold personal data are readable by the service user only (0600 files, 0700 folders).

The service may run under a umask of 022 (the usual default): every quality output, GE's folder
and Data Docs included, and what `slf` writes must still be owner-only.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import corrupted_copy
from slf_warehouse.quality.step import check_build


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def loose_modes(root: Path) -> list[str]:
    """Files and folders under root (root included) that anyone but the owner may read or enter."""
    paths = [root, *root.rglob("*")]
    return sorted(
        f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p.relative_to(root.parent)}"
        for p in paths
        if not p.is_symlink() and p.lstat().st_mode & 0o077
    )


def test_quality_outputs_are_owner_only(built_warehouse: Path, tmp_path: Path) -> None:
    quality = tmp_path / "out" / "quality"
    with umask(0o022):
        # what an earlier run under the loose umask left behind
        (quality / "reports").mkdir(parents=True)
        (quality / "history.jsonl").write_text("", encoding="utf-8")
        (quality / "reports" / "old-run.pdf").write_bytes(b"%PDF-1.7\n")
        build = corrupted_copy(built_warehouse, tmp_path / "build.duckdb")
        check_build(build, quality, "run-modes")
    written = list(quality.rglob("*"))
    assert any(p.suffix == ".json" and "validations" in p.parts for p in written)  # GE's own results
    assert (quality / "data_docs" / "index.html").is_file() and (quality / "report.pdf").is_file()
    assert not loose_modes(quality), loose_modes(quality)[:20]


def test_slf_writes_owner_only_files(sample_landing_master: Path, tmp_path: Path) -> None:
    """The CLI sets the umask itself: the warehouse and a rejected payroll file's error reports."""
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    # two payroll months, one loaded and one rejected: the other sources play no part here
    (out / "landing" / "loen").mkdir(parents=True)
    for month in ("2024-05", "2024-06"):
        shutil.copy2(sample_landing_master / "loen" / f"loen_{month}.csv", out / "landing" / "loen")
    broken = out / "landing" / "loen" / "loen_2024-06.csv"
    lines = broken.read_text(encoding="utf-8-sig").splitlines()
    lines[3] = lines[3].replace(";1,0000;", ";1,2x;")  # an employment fraction that is no number
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "slf_warehouse.cli",
            "ingest",
            "--landing",
            str(out / "landing"),
            "--warehouse",
            str(out / "warehouse" / "wh.duckdb"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 1, done.stdout + done.stderr  # the broken file was rejected
    created = [p for p in out.rglob("*") if "landing" not in p.relative_to(out).parts[:1]]
    assert (out / "warehouse" / "wh.duckdb").is_file() and created
    assert not loose_modes(out / "warehouse"), loose_modes(out / "warehouse")
    # the error reports and folders the run created (the delivery itself is moved there, keeping the
    # landing's mode: ingestion tightens it, tests/test_personal_data_outputs.py checks the whole tree)
    quarantined = [
        p
        for p in out.rglob("*")
        if any("quarantine" in part for part in p.parts) and (p.is_dir() or ".errors." in p.name)
    ]
    assert [p for p in quarantined if p.is_file()], sorted(str(p) for p in out.rglob("*"))[:20]
    for path in quarantined:
        assert not stat.S_IMODE(path.lstat().st_mode) & 0o077, (oct(path.lstat().st_mode), path)


@pytest.mark.airflow  # reads Airflow's configuration in a child process
@pytest.mark.parametrize("name", ["FILE", "FOLDER"])
def test_airflow_task_logs_are_owner_only(name: str) -> None:
    """Airflow creates its task log files and folders with these modes (not the umask)."""
    from slf_warehouse.airflow_env import airflow_environment

    env = airflow_environment({})
    key = f"AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_{name}_PERMISSIONS"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from airflow.configuration import conf; print(conf.get("
            f"'logging', 'file_task_handler_new_{name.lower()}_permissions'))",
        ],
        env={**os.environ, key: env[key]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip().splitlines()[-1], 8) == (0o600 if name == "FILE" else 0o700)


def test_write_private_is_whole_owner_only_and_replaces_a_link(tmp_path: Path) -> None:
    """The one way every pointer, record, sidecar, lease, report and letter is written."""
    from slf_warehouse.file_modes import write_private

    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not ours", encoding="utf-8")
    target = tmp_path / "published.json"
    target.symlink_to(elsewhere)
    with umask(0o022):
        write_private(target, '{"version": "ø"}')
    assert not target.is_symlink() and target.read_text(encoding="utf-8") == '{"version": "ø"}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert elsewhere.read_text(encoding="utf-8") == "not ours"  # the link was replaced, not followed
    write_private(target, b"%PDF-")
    assert target.read_bytes() == b"%PDF-" and sorted(p.name for p in tmp_path.iterdir()) == [
        "elsewhere.txt",
        "published.json",
    ]


def test_write_private_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    from slf_warehouse.file_modes import write_private

    folder = tmp_path / "a-folder-where-the-file-should-be"
    folder.mkdir()
    with pytest.raises(IsADirectoryError):
        write_private(folder, "text")
    assert folder.is_dir() and [p.name for p in tmp_path.iterdir()] == [folder.name]
