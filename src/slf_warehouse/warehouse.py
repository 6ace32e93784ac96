"""The warehouse files: a build per run, published only after the quality gate, read-only for readers.

A refresh copies the published warehouse into a new build file and works only there; publication
is an atomic rename of the pointer file. A refresh that dies at any point leaves the published
warehouse as it was, and the last few published versions stay so an old answer can be regenerated.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from slf_warehouse.file_modes import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, write_private
from slf_warehouse.file_names import slug

POINTER = "published.json"
KEEP_VERSIONS = 5
BUILDING = ".building"  # beside a build in progress: whose it is; removed when the run ends
# A build whose marker is this old belongs to a run that can no longer be running.
ABANDONED_AFTER = timedelta(hours=24)


class NoPublishedWarehouse(Exception):
    pass


class BuildRefused(Exception):
    """A build that may not be published (missing, another run's, or not a whole warehouse)."""


@dataclass(frozen=True)
class Published:
    path: Path
    version: str
    run_id: str
    published_at: str


def _private_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        f"{schema}.{name}"
        for schema, name in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
    }


def _records_run(con: duckdb.DuckDBPyConnection, tables: set[str], run_id: str) -> bool:
    """The run's own row in audit.runs, written when the refresh prepared its build: a build of
    another run has the earlier runs' rows only."""
    return (
        "audit.runs" in tables
        and con.execute("SELECT count(*) FROM audit.runs WHERE run_id = ?", [run_id]).fetchall()[0][0] > 0
    )


def _open_existing(path: Path) -> duckdb.DuckDBPyConnection:
    """Read-only, so a missing file is an error, not a new empty database. A process that has the
    file open read-write already (dbt in-process) cannot add a read-only connection: it gets its
    open database, which exists by definition."""
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.ConnectionException:
        return duckdb.connect(str(path))


class WarehouseStore:
    def __init__(self, root: Path):
        self.root = root
        self.builds = root / "builds"
        self.versions = root / "versions"

    def published(self) -> Published:
        pointer = self.root / POINTER
        if not pointer.exists():
            raise NoPublishedWarehouse(
                f"no warehouse has been published in {self.root} yet: run a refresh first"
            )
        data = json.loads(pointer.read_text(encoding="utf-8"))
        return Published(self.root / data["path"], data["version"], data["run_id"], data["published_at"])

    def new_build(self, run_id: str) -> Path:
        """A new build file, starting from the published warehouse so loaded history is kept.
        A marker beside it names its run until the run publishes it or ends (`finish`)."""
        _private_dir(self.root, PRIVATE_DIR_MODE)
        _private_dir(self.builds, PRIVATE_DIR_MODE)
        # To the microsecond, as on PostgreSQL: two runs started in the same second still sort in the
        # order they started (pruning and "older than the published version" compare names).
        version = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{slug(run_id)}"
        build = self.builds / f"{version}.duckdb"
        marker = {"run_id": run_id, "pid": os.getpid(), "started_at": datetime.now(UTC).isoformat()}
        fd = os.open(self._marker(build), os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(marker, f)
        try:
            shutil.copyfile(self.published().path, build)
        except NoPublishedWarehouse:
            duckdb.connect(str(build)).close()
        os.chmod(build, PRIVATE_FILE_MODE)
        return build

    def _marker(self, build: Path) -> Path:
        return build.with_name(build.name + BUILDING)

    def build_run(self, build: Path) -> str | None:
        """The run a build in progress belongs to (None once finished)."""
        try:
            run_id: str = json.loads(self._marker(build).read_text(encoding="utf-8"))["run_id"]
            return run_id
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None

    def builds_of(self, run_id: str) -> list[Path]:
        return sorted(b for b in self.builds.glob("*.duckdb") if self.build_run(b) == run_id)

    def finish(self, build: Path) -> None:
        """The run ended without publishing: its build may be pruned by the next publication."""
        self._marker(build).unlink(missing_ok=True)

    def discard(self, build: Path) -> None:
        """Remove a build with its write-ahead log and marker."""
        for path in (build, build.with_name(build.name + ".wal"), self._marker(build)):
            path.unlink(missing_ok=True)

    def check_build(self, build: Path, run_id: str) -> set[str]:
        """BuildRefused unless `build` is a build file of this store, on disk, marked as `run_id`'s (or
        unmarked), not empty, recording `run_id` if it has audit.runs (every refresh's build does), and
        holding every table the published version has.
        Opens the file read-only, so a missing build is never created. Returns its tables."""
        build = Path(build)
        if build.parent.resolve() != self.builds.resolve() or build.suffix != ".duckdb":
            raise BuildRefused(f"{build} is not a build of {self.root}: not published")
        if not build.is_file():
            raise BuildRefused(
                f"run {run_id}'s build {build} is missing (removed while the run was in "
                f"progress?): not published, the published warehouse is unchanged"
            )
        owner = self.build_run(build)
        if owner is not None and owner != run_id:
            raise BuildRefused(f"{build.name} is run {owner}'s build, not run {run_id}'s: not published")
        try:
            with _open_existing(build) as con:
                tables = _tables(con)
                own = _records_run(con, tables, run_id)
        except duckdb.Error as e:
            raise BuildRefused(f"{build.name} cannot be read ({e}): not published") from None
        if not tables:
            raise BuildRefused(
                f"{build.name} holds no tables (an empty file where run {run_id}'s build "
                f"should be): not published"
            )
        if "audit.runs" in tables and not own:
            raise BuildRefused(
                f"{build.name} does not record run {run_id} in audit.runs: not this run's "
                f"build, not published"
            )
        try:
            with duckdb.connect(str(self.published().path), read_only=True) as con:
                missing = _tables(con) - tables
        except NoPublishedWarehouse:
            missing = set()
        if missing:
            raise BuildRefused(
                f"{build.name} lacks {len(missing)} table(s) the published warehouse has "
                f"({', '.join(sorted(missing)[:5])}): not published"
            )
        return tables

    def publish(self, build: Path, run_id: str) -> Published:
        self.check_build(build, run_id)
        # Fold the WAL into the file so the published copy is complete on its own (the file was
        # just checked to exist; check_build again below proves the moved file is still whole).
        with duckdb.connect(str(build)) as con:
            con.execute("CHECKPOINT")
        _private_dir(self.versions, PRIVATE_DIR_MODE)
        target = self.versions / build.name
        os.replace(build, target)
        self._marker(build).unlink(missing_ok=True)
        os.chmod(target, PRIVATE_FILE_MODE)
        self._check_version(target, run_id)
        record = {
            "path": str(target.relative_to(self.root)),
            "version": build.stem,
            "run_id": run_id,
            "published_at": datetime.now(UTC).isoformat(),
        }
        write_private(self.root / POINTER, json.dumps(record, indent=2))
        self._prune(keep=target)
        return self.published()

    def _check_version(self, target: Path, run_id: str) -> None:
        with duckdb.connect(str(target), read_only=True) as con:
            tables = _tables(con)
            if not tables or ("audit.runs" in tables and not _records_run(con, tables, run_id)):
                raise BuildRefused(
                    f"{target.name} lost run {run_id} on the way to publication: not published"
                )

    def _prune(self, keep: Path) -> None:
        """Old versions beyond the last few; builds older than `keep` whose run has ended. A build
        whose marker names a run is another run's work in progress and stays (unless abandoned)."""
        versions = sorted(self.versions.glob("*.duckdb"))
        for old in versions[:-KEEP_VERSIONS]:
            if old != keep:
                old.unlink(missing_ok=True)
        for build in self.builds.glob("*.duckdb"):
            if build.name < keep.name and not self._in_progress(build):
                self.discard(build)

    def _in_progress(self, build: Path) -> bool:
        marker = self._marker(build)
        try:
            age = datetime.now(UTC) - datetime.fromtimestamp(marker.stat().st_mtime, UTC)
        except FileNotFoundError:
            return False
        return age < ABANDONED_AFTER


def open_published(root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(WarehouseStore(root).published().path), read_only=True)
