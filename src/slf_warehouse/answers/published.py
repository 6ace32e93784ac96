"""Answer one inquiry from the last published warehouse: what ``dags/slf_answer_inquiry.py`` runs.

The warehouse is found through the published pointer in ``<output_dir>/warehouse`` (or
``SLF_WAREHOUSE_DIR``) and opened read-only; a refresh running at the same time writes only its own
build file, so the answer is computed from one consistent published version. With
``SLF_WAREHOUSE_ENGINE=postgres`` it is the version ``slf_publication.versions`` names current,
read from that version's own schemas in one read-only REPEATABLE READ transaction
(``warehouse_reader``), so a publication meanwhile changes nothing in the answer. The letter goes to
``<output_dir>/answers/``, next to the answers the refresh renders, so "what changed" compares with
the last edition of the same inquiry wherever it was rendered.

Only the project's own inquiry files (real path inside ``inquiries/``, symlinks followed) publish
to ``answers/``. An inquiry file from anywhere else renders to ``answers/drafts/`` (or a folder the
caller names, never ``answers/`` itself), and its letter is marked "IKKE OFFICIELT SVAR" on every
page, in the appendix and in the sidecar (``official: false``): a file elsewhere that happens to be
called ``enhedslisten-slf.yaml`` can no longer replace the official letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slf_warehouse.answers.inquiry_yaml import InquiryError

if TYPE_CHECKING:
    from slf_warehouse.warehouse_reader import PostgresSource


def resolve_inquiry(inquiry: str | Path, inquiries_dir: Path) -> Path:
    """An absolute path as it is; otherwise a file name in ``inquiries_dir`` (".yaml" may be left out).
    Relative paths with folders are refused: a name must not reach outside ``inquiries/``."""
    text = str(inquiry).strip()
    if not text:
        raise InquiryError("no inquiry given: name a file in inquiries/ or give an absolute path")
    path = Path(text)
    if path.is_absolute():
        candidate = path
    else:
        if path.name != text or text in (".", ".."):
            raise InquiryError(f"{text!r}: give a file name in {inquiries_dir} or an absolute path")
        candidate = inquiries_dir / text
        if candidate.suffix not in (".yaml", ".yml"):
            candidate = candidate.with_name(candidate.name + ".yaml")
    if not candidate.is_file():
        import difflib

        files = sorted(p.name for p in inquiries_dir.glob("*.yaml"))
        close = difflib.get_close_matches(Path(text).stem, [Path(f).stem for f in files], n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InquiryError(
            f"{candidate}: no such inquiry file ({hint}in {inquiries_dir}: {', '.join(files) or 'none'})"
        )
    return candidate


UNOFFICIAL_FOLDER = "drafts"


def is_official_inquiry(path: Path, inquiries_dir: Path | None = None) -> bool:
    """Whether ``path`` is one of the project's inquiry files: its real path lies in ``inquiries/``."""
    if inquiries_dir is None:
        from slf_warehouse.settings import project_dir

        inquiries_dir = project_dir() / "inquiries"
    real = Path(path).resolve()
    return real.is_file() and real.parent == Path(inquiries_dir).resolve()


def answer_folder(
    inquiry: Path, answers_dir: Path, inquiries_dir: Path, out_dir: str | Path | None = None
) -> tuple[Path, bool]:
    """Where an inquiry's letter goes and whether it is official: the project's inquiries to
    ``answers/`` (or ``out_dir``), any other to ``out_dir`` or ``answers/drafts/``, never ``answers/``."""
    official = is_official_inquiry(inquiry, inquiries_dir)
    if official:
        return (Path(out_dir) if out_dir else answers_dir), True
    target = Path(out_dir) if out_dir else answers_dir / UNOFFICIAL_FOLDER
    if target.resolve() == answers_dir.resolve():
        raise InquiryError(
            f"{inquiry}: only inquiry files in {inquiries_dir} publish to {answers_dir}; "
            f"render this one to another folder (default {answers_dir / UNOFFICIAL_FOLDER})"
        )
    return target, False


@dataclass(frozen=True)
class PgPublishedSource:
    """The published PostgreSQL version an answer is read from (``warehouse_pg.PgPublished`` and
    where it lives)."""

    conninfo: str
    version: str
    run_id: str
    published_at: str

    @property
    def source(self) -> PostgresSource:
        from slf_warehouse.warehouse_reader import PostgresSource

        return PostgresSource(self.conninfo, self.version)

    def override_reason(self) -> str | None:
        """The quality override recorded for the version's run in ``audit.runs``, if any."""
        from slf_warehouse.warehouse_reader import open_reader

        with open_reader(self.source) as reader:
            if not reader.has_table("audit", "runs"):
                return None
            rows = reader.execute(
                f"SELECT override_reason FROM {reader.relation('audit', 'runs')} WHERE run_id = ?",
                [self.run_id],
            ).rows
        return rows[0][0] if rows and rows[0][0] else None


def published_warehouse(settings: Any) -> tuple[Any, Any]:
    """The published version (for the appendix) and what ``render_inquiry`` reads it from, on the
    engine ``SLF_WAREHOUSE_ENGINE`` names; NoPublishedWarehouse when there is none yet."""
    if settings.warehouse_engine == "postgres":
        from slf_warehouse.warehouse_pg import PgWarehouseStore

        conninfo = settings.pg_conninfo
        pg = PgWarehouseStore(conninfo).published()
        published = PgPublishedSource(conninfo, pg.version, pg.run_id, pg.published_at)
        return published, published.source
    from slf_warehouse.warehouse import WarehouseStore

    version = WarehouseStore(settings.warehouse_dir).published()
    return version, version.path


def published_run_info(published: Any, quality_dir: Path) -> dict[str, Any]:
    """What the appendix says about the warehouse version: run, publication and its quality status."""
    import json

    run_info: dict[str, Any] = {
        "run_id": published.run_id,
        "version": published.version,
        "published_at": published.published_at,
    }
    if isinstance(published, PgPublishedSource):
        reason = published.override_reason()
    else:
        from slf_warehouse.quality.history import override_for

        reason = override_for(published.path, published.run_id)
    if reason:
        run_info["override"] = reason
    quality_file = quality_dir / "quality_results.json"
    if quality_file.exists():
        quality = json.loads(quality_file.read_text(encoding="utf-8"))
        if quality.get("run_id") == published.run_id:
            summary = quality["summary"]
            run_info["quality"] = (
                f"{'bestået' if quality['success'] else 'IKKE bestået'}: "
                f"{summary['expectations']} kontroller i {summary['suites']} suiter, "
                f"{summary['failed']} fejl, {summary['warnings']} advarsler"
            )
    return run_info


def answer_from_published(
    inquiry: str | Path, output_dir: str | Path | None = None, out_dir: str | Path | None = None
) -> dict[str, Any]:
    """Render ``inquiry`` from the published warehouse into ``<output_dir>/answers`` (an inquiry from
    outside ``inquiries/``: ``out_dir`` or ``answers/drafts``, unofficial); a summary for XCom."""
    from slf_warehouse.settings import Settings

    settings = Settings.from_env(output_dir=output_dir)
    path = resolve_inquiry(inquiry, settings.inquiries_dir)
    target, official = answer_folder(path, settings.answers_dir, settings.inquiries_dir, out_dir)
    published, source = published_warehouse(settings)  # NoPublishedWarehouse: run a refresh
    from slf_warehouse.answers.render import render_inquiry  # after the mistakes it can name cheaply

    answer = render_inquiry(
        source, path, target, official=official, run_info=published_run_info(published, settings.quality_dir)
    )
    return {
        "inquiry": str(path),
        "official": official,
        "inquiry_sha256": answer.inquiry_sha256,
        "pdf": str(answer.pdf_path),
        "html": str(answer.html_path),
        "figures_json": str(answer.sidecar_path),
        "warehouse_version": published.version,
        "warehouse_run_id": published.run_id,
        "first_edition": answer.changes.first_edition,
        "changed_figures": answer.changes.names,
    }
