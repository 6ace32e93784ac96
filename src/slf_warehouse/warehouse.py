"""The warehouse files: a build per run, published only after the quality gate, read-only for readers.

A refresh copies the published warehouse into a new build file and works only there; publication
is an atomic rename of the pointer file. A refresh that dies at any point leaves the published
warehouse as it was, and the last few published versions stay so an old answer can be regenerated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

POINTER = "published.json"
KEEP_VERSIONS = 5


class NoPublishedWarehouse(Exception):
    pass


@dataclass(frozen=True)
class Published:
    path: Path
    version: str
    run_id: str
    published_at: str


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]


class WarehouseStore:
    def __init__(self, root: Path):
        self.root = root
        self.builds = root / "builds"
        self.versions = root / "versions"

    def published(self) -> Published:
        pointer = self.root / POINTER
        if not pointer.exists():
            raise NoPublishedWarehouse(f"no warehouse has been published in {self.root} yet: run a refresh first")
        data = json.loads(pointer.read_text(encoding="utf-8"))
        return Published(self.root / data["path"], data["version"], data["run_id"], data["published_at"])

    def new_build(self, run_id: str) -> Path:
        """A new build file, starting from the published warehouse so loaded history is kept."""
        self.builds.mkdir(parents=True, exist_ok=True)
        version = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{_slug(run_id)}"
        build = self.builds / f"{version}.duckdb"
        try:
            shutil.copyfile(self.published().path, build)
        except NoPublishedWarehouse:
            pass
        return build

    def publish(self, build: Path, run_id: str) -> Published:
        # Fold the WAL into the file so the published copy is complete on its own.
        with duckdb.connect(str(build)) as con:
            con.execute("CHECKPOINT")
        self.versions.mkdir(parents=True, exist_ok=True)
        target = self.versions / build.name
        os.replace(build, target)
        record = {"path": str(target.relative_to(self.root)), "version": build.stem, "run_id": run_id,
                  "published_at": datetime.now(timezone.utc).isoformat()}
        tmp = self.root / f".{POINTER}.tmp"
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
        os.replace(tmp, self.root / POINTER)
        self._prune(keep=target)
        return self.published()

    def _prune(self, keep: Path) -> None:
        versions = sorted(self.versions.glob("*.duckdb"))
        for old in versions[:-KEEP_VERSIONS]:
            if old != keep:
                old.unlink(missing_ok=True)
        for stale in self.builds.glob("*.duckdb*"):
            stale.unlink(missing_ok=True)


def open_published(root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(WarehouseStore(root).published().path), read_only=True)
