"""Loading validated deliveries into raw.*, with a manifest, quarantine and atomic period replace.

Per file: stage (in memory) → validate → reject whole into quarantine, or skip an unchanged
re-delivery, or replace its period (or the whole snapshot) in one transaction. A file is never half
loaded and a re-delivered month replaces, never adds. Where the rows go - the DuckDB warehouse file
or PostgreSQL - is the caller's `RawTarget` (targets.py); staging and validation are the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from slf_warehouse.contract import SOURCES, SourceSpec
from slf_warehouse.file_modes import PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, write_private
from slf_warehouse.ingest import apart, pseudonym
from slf_warehouse.ingest.delivery import open_delivery, refusal
from slf_warehouse.ingest.errors import FileRejected, Issue, without_values
from slf_warehouse.ingest.reading import stage_file
from slf_warehouse.ingest.schema import manifest_ddl
from slf_warehouse.ingest.targets import LOAD_ROW_GROUP_SIZE, DuckDBTarget, RawSession, RawTarget, StoredRows
from slf_warehouse.ingest.validation import raw_columns, validate

__all__ = ["LOAD_ROW_GROUP_SIZE", "MANIFEST_DDL"]  # besides what ingest/__init__ exports

LOAD_ORDER = ("enheder", "bevillinger", "aktiviteter", "posteringer", "loen", "social_kapital")

MANIFEST_DDL = manifest_ddl("duckdb", "wh.")


@dataclass
class FileResult:
    source: str
    file_name: str
    status: str
    rows: int = 0
    sha256: str = ""  # of the bytes parsed; "" for an entry that was refused unread
    load_id: str = ""
    issues: list[Issue] = field(default_factory=list)
    size_bytes: int | None = None  # of the bytes parsed, when they were

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def rejected(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "rejected"]

    def summary(self) -> str:
        lines = [f"{f.source}/{f.file_name}: {f.status} ({f.rows} rows)" for f in self.files]
        for f in self.rejected:
            lines.extend(f"  ERROR {i}" for i in f.errors)
        return "\n".join(lines)


class IngestFailed(Exception):
    def __init__(self, report: IngestReport):
        self.report = report
        details = "\n".join(
            f"- {f.source}/{f.file_name}:\n    " + "\n    ".join(str(i) for i in f.errors[:5])
            for f in report.rejected
        )
        super().__init__(
            f"{len(report.rejected)} file(s) rejected and moved to quarantine; every other file "
            f"was loaded:\n{details}"
        )


def as_target(target: RawTarget | Path) -> RawTarget:
    """A path is a DuckDB warehouse file (the embedded engine, and every caller before PostgreSQL)."""
    return target if isinstance(target, RawTarget) else DuckDBTarget(Path(target))


def _quarantine(path: Path, quarantine_dir: Path, issues: list[Issue]) -> None:
    """Move a rejected file aside with its error report. A quarantined payroll file is the whole
    payroll of a month: the file and its reports are the service user's only (0600, folder 0700)."""
    _private_folder(quarantine_dir)
    target = quarantine_dir / path.name
    shutil.move(str(path), target)
    os.chmod(target, PRIVATE_FILE_MODE)
    _write_report(path, quarantine_dir, issues)


def _refuse_unread(path: Path, quarantine_dir: Path, issues: list[Issue]) -> None:
    """A link, or a file whose real path is elsewhere, is reported but neither moved nor removed:
    through a linked folder, moving or removing it would act on whatever it points to."""
    _private_folder(quarantine_dir)
    _write_report(path, quarantine_dir, issues)


def _private_folder(folder: Path) -> None:
    folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(folder, PRIVATE_DIR_MODE)


def _write_report(path: Path, quarantine_dir: Path, issues: list[Issue]) -> None:
    report = {
        "file": path.name,
        "quarantined_at": datetime.now(UTC).isoformat(),
        "errors": [i.as_dict() for i in issues if i.severity == "error"],
        "warnings": [i.as_dict() for i in issues if i.severity == "warning"],
    }
    write_private(
        quarantine_dir / f"{path.name}.errors.json", json.dumps(report, ensure_ascii=False, indent=2)
    )
    write_private(quarantine_dir / f"{path.name}.errors.txt", "\n".join(str(i) for i in issues) + "\n")


def _manifest_row(result: FileResult, path: Path, period: str | None, run_id: str | None) -> list[object]:
    """The file's audit.load_manifest row (schema.MANIFEST_COLUMNS' order)."""
    errors = "\n".join(str(i) for i in result.errors) or None
    warnings = "\n".join(str(i) for i in result.issues if i.severity == "warning") or None
    # never through a link: a refused one is not followed even to its size
    info = path.lstat() if path.exists() and not path.is_symlink() else None
    received = datetime.fromtimestamp(info.st_mtime, UTC) if info else None
    size = result.size_bytes if result.size_bytes is not None else info.st_size if info else None
    return [
        result.load_id,
        run_id,
        result.source,
        result.file_name,
        period,
        result.sha256,
        size,
        result.rows,
        received,
        datetime.now(UTC),
        result.status,
        None,
        errors,
        warnings,
    ]


def _record(
    session: RawSession, result: FileResult, path: Path, period: str | None, run_id: str | None
) -> None:
    session.record(_manifest_row(result, path, period, run_id))


def file_sha256(path: Path, spec: SourceSpec) -> str:
    digest = hashlib.sha256()
    with open_delivery(path, spec) as f:
        while chunk := f.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _unchanged(session: RawSession, spec: SourceSpec, path: Path, period: str | None) -> str | None:
    """The file's sha256 when it is the very content already loaded for its period (or snapshot).
    Hashed only when its size is that content's: a new month or a changed size is read, and hashed,
    once, by the reading step (which hashes the bytes it parses)."""
    loaded = session.loaded(spec.name, period)
    if not loaded or loaded[1] != path.lstat().st_size:
        return None
    sha256 = file_sha256(path, spec)
    return sha256 if sha256 == loaded[0] else None


def _read_here(
    session: RawSession, spec: SourceSpec, path: Path, tmp_dir: Path, result: FileResult
) -> StoredRows:
    con = session.staging
    try:
        staged = stage_file(con, spec, path, tmp_dir)
    except FileRejected as rejected:
        raise FileRejected(_as_shown(spec, rejected.issues)) from None
    result.rows, result.sha256, result.size_bytes = staged.rows, staged.sha256, staged.size
    result.issues = _as_shown(spec, validate(con, staged, _known_values(session, spec)))
    rows = StoredRows(
        staged.table, ", ".join(expr for _, _, expr in raw_columns(spec)), tmp_dir, staged_table=staged.table
    )
    if result.errors:
        rows.discard(con)
        raise FileRejected(result.issues)
    return rows


def _as_shown(spec: SourceSpec, issues: list[Issue]) -> list[Issue]:
    return issues if spec.quotes_values else without_values(issues, spec.column_names)


def _known_values(session: RawSession, spec: SourceSpec) -> dict[str, list[str]]:
    """The values of loaded sources that spec.references names; a source not loaded yet is not asked."""
    known = {}
    for column, (source, other) in spec.references.items():
        if values := session.known_values(source, other):
            known[column] = values
    return known


def _read_apart(
    session: RawSession,
    spec: SourceSpec,
    path: Path,
    tmp_dir: Path,
    key: bytes | None,
    personal: apart.PersonalDataReader | None,
    result: FileResult,
) -> StoredRows:
    if personal is None:
        raise ValueError(f"{spec.name} holds personal data: it is read in a process of its own")
    known = _known_values(session, spec)
    prepared = personal.prepare(spec.name, path, tmp_dir, key, known)
    result.rows, result.issues = prepared.rows, prepared.issues
    result.sha256, result.size_bytes = prepared.sha256, prepared.size or None
    if result.errors or prepared.parquet is None:
        raise FileRejected(result.issues)
    return StoredRows(
        "read_parquet(?)",
        ", ".join(f'"{n}"' for n, _, _ in raw_columns(spec)),
        tmp_dir,
        parquet=prepared.parquet,
    )


def load_file(
    session: RawSession,
    spec: SourceSpec,
    path: Path,
    quarantine_dir: Path,
    tmp_dir: Path,
    run_id: str | None = None,
    key: bytes | None = None,
    personal: apart.PersonalDataReader | None = None,
    root: Path | None = None,
) -> FileResult:
    """Load one file, which must really be inside `root` (by default its folder). A source with
    personal data is read by `personal`, in other processes (see `apart`)."""
    landing = root or path.parent
    load_id = uuid.uuid4().hex
    result = FileResult(spec.name, path.name, "rejected", load_id=load_id)
    match = spec.match(path.name)
    period = match.groupdict().get("period") if match else None
    try:
        if refused := refusal(path, landing):
            result.issues = [refused]
            _refuse_unread(path, quarantine_dir, result.issues)
            _record(session, result, path, period, run_id)
            return result
        if not match:
            raise FileRejected(
                [
                    Issue(
                        path.name,
                        None,
                        None,
                        None,
                        f"unexpected file name in {spec.name}/: expected {spec.file_pattern}",
                    )
                ]
            )
        if sha256 := _unchanged(session, spec, path, period):
            # The very content already loaded: no need to even parse it again.
            result.status, result.sha256 = "skipped-duplicate", sha256
        else:
            rows = (
                _read_apart(session, spec, path, tmp_dir, key, personal, result)
                if apart.holds_personal_data(spec)
                else _read_here(session, spec, path, tmp_dir, result)
            )
            result.status = "loaded"
            try:
                # the rows and the manifest that says they are loaded commit together
                session.replace(
                    spec, period, path.name, rows, load_id, _manifest_row(result, path, period, run_id)
                )
            finally:
                rows.discard(session.staging)
            return result
    except FileRejected as rejected:
        result.issues = rejected.issues if not result.issues else result.issues
        result.status = "rejected"
        result.sha256 = result.sha256 or _sha256_if_readable(path, spec)
        if path.is_symlink():  # put in its place while it was read
            _refuse_unread(path, quarantine_dir, result.issues)
            result.sha256 = ""
        else:
            _quarantine(path, quarantine_dir, result.issues)
    _record(
        session, result, quarantine_dir / path.name if result.status == "rejected" else path, period, run_id
    )
    return result


def _sha256_if_readable(path: Path, spec: SourceSpec) -> str:
    """The hash of a file rejected before it was read whole (the manifest wants one)."""
    try:
        return file_sha256(path, spec)
    except FileRejected:
        return ""


def _parallel_workers(spec: SourceSpec, files: list[Path]) -> int:
    """How many files of a source to load at once.

    A monthly file is about one DuckDB row group, and DuckDB parallelises within a query by row
    group, so one file at a time keeps one core busy. Files of different periods touch disjoint
    rows and DuckDB lets concurrent transactions append to one table, so period sources load two
    (or as many as there are cores) at a time; a snapshot replaces the whole table and goes alone.
    """
    if spec.replaces != "period" or len(files) < 2:
        return 1
    periods = [m.groupdict().get("period") if (m := spec.match(p.name)) else None for p in files]
    if None in periods or len(set(periods)) != len(periods):
        return 1
    return max(1, min(os.cpu_count() or 1, 4, len(files)))


def ingest_source(
    source: str,
    landing: Path,
    target: RawTarget | Path,
    quarantine_dir: Path | None = None,
    run_id: str | None = None,
    folder: Path | None = None,
) -> IngestReport:
    """Load every delivered file of one source (in `folder`, by default `landing/<source>`) into
    `target` (a DuckDB warehouse file's path, or a RawTarget); rejected files go to quarantine, the
    rest load."""
    spec = SOURCES[source]
    quarantine_dir = quarantine_dir or landing / "_quarantine" / source
    report = IngestReport()
    # Files must really be inside the landing folder (a source folder that is a link to elsewhere
    # refuses all its files), or inside the folder given, for a source read from somewhere else.
    root = landing if folder is None else folder
    folder = folder or landing / source
    # Links are listed (and refused); folders are not files. lstat: a link is not followed to decide.
    files = (
        sorted(
            p
            for p in folder.iterdir()
            if not p.name.startswith(".") and (p.is_symlink() or stat.S_ISREG(p.lstat().st_mode))
        )
        if folder.is_dir()
        else []
    )
    # Asked once, here: fails before touching anything when the key is missing, and the worker
    # threads below never call into Airflow (a Variable lookup is not thread-safe in a task).
    key = pseudonym.pseudonym_key() if spec.pseudonymise and files else None
    session = as_target(target).open()
    try:
        with (
            tempfile.TemporaryDirectory(prefix=f"slf-{source}-") as tmp,
            _personal_data_reader(spec, files, workers := _parallel_workers(spec, files)) as personal,
        ):
            if workers == 1:
                report.files.extend(
                    load_file(session, spec, p, quarantine_dir, Path(tmp), run_id, key, personal, root)
                    for p in files
                )
            else:
                report.files.extend(
                    _load_in_parallel(
                        session, spec, files, quarantine_dir, Path(tmp), run_id, key, workers, personal, root
                    )
                )
    finally:
        session.close()
    return report


def _personal_data_reader(
    spec: SourceSpec, files: list[Path], workers: int
) -> AbstractContextManager[apart.PersonalDataReader | None]:
    if not (files and apart.holds_personal_data(spec)):
        return nullcontext()
    return apart.PersonalDataReader(workers)


def _load_in_parallel(
    session: RawSession,
    spec: SourceSpec,
    files: list[Path],
    quarantine_dir: Path,
    tmp_dir: Path,
    run_id: str | None,
    key: bytes | None,
    workers: int,
    personal: apart.PersonalDataReader | None,
    root: Path,
) -> list[FileResult]:
    """Each worker thread has a session of its own (session.worker()), so its staging tables and
    its transaction are its own; DuckDB and psycopg2 release the GIL while they work."""
    local = threading.local()
    workers_made: list[RawSession] = []
    lock = threading.Lock()

    def cursor() -> RawSession:
        if not hasattr(local, "session"):
            local.session = session.worker()
            with lock:
                workers_made.append(local.session)
        mine: RawSession = local.session  # threading.local's attributes are typed Any
        return mine

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"load-{spec.name}") as pool:
            # map keeps the files' order in the report, whichever finishes first
            return list(
                pool.map(
                    lambda p: load_file(
                        cursor(), spec, p, quarantine_dir, tmp_dir, run_id, key, personal, root
                    ),
                    files,
                )
            )
    finally:
        for worker in workers_made:
            worker.close()


def ingest_landing(
    landing: Path, target: RawTarget | Path, quarantine_root: Path | None = None, run_id: str | None = None
) -> IngestReport:
    report = IngestReport()
    for source in LOAD_ORDER:
        quarantine = (quarantine_root / source) if quarantine_root else None
        report.files.extend(ingest_source(source, landing, target, quarantine, run_id).files)
    return report
