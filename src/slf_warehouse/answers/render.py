"""Render an inquiry's answer letter from the warehouse: HTML, PDF and the figures' sidecar.

The same warehouse and the same inquiry file give the same bytes: the letter is dated by the
inquiry (``answer_date``, else the deadline), PDF creation and modification dates are that date,
the PDF identifier is a hash of the HTML, and nothing reads the clock. The appendix's "Ændringer
siden sidste udgave" depends on the previous edition's sidecar in the output folder as well
(``changes.py``): a first edition says so, an unchanged re-rendering says nothing changed.

The PDF is PDF/UA-1 (WeasyPrint's ``pdf_variant="pdf/ua-1"``): tagged (a structure tree of
headings, paragraphs, lists, tables with header cells, figures with alternate text), its language
``da``, the title shown as the window title.

With an ``edition`` (``edition.py``) the letter is a draft ("UDKAST" on every page, the signature
block unsigned) or an approved final (who approved it and when). A final may also be written as an
archival copy for the case file (``archive=True``): the same letter as PDF/A-3a (tagged, so still
accessible) carrying its figures sidecar, the Datagrundlag's queries and the approval record as
embedded files (``archive.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slf_warehouse.answers import changes as ch
from slf_warehouse.answers.edition import DRAFT_MARK, Edition
from slf_warehouse.answers.exhibits import ExhibitError, key_label, render_exhibits
from slf_warehouse.answers.figures import FigureResult, FigureTable, ReadOnlyMapping, evaluate_figures
from slf_warehouse.answers.inquiry import Inquiry, InquiryError, LoadedInquiry, load_inquiry
from slf_warehouse.answers.published import is_official_inquiry
from slf_warehouse.answers.sandbox_run import (
    DEFAULT_LIMITS,
    AnswerRenderError,
    RenderLimits,
    render_answer_texts,
)
from slf_warehouse.answers.templating import Period, markup_problem, text_to_html
from slf_warehouse.file_modes import write_private
from slf_warehouse.rendering import formatting as fmt
from slf_warehouse.rendering.pdf import PdfOutput, html_to_pdfs
from slf_warehouse.rendering.templates import default_templates_dir, inline_stylesheets, template_environment

if TYPE_CHECKING:
    from slf_warehouse.warehouse_reader import WarehouseReader, WarehouseSource

LETTER_TEMPLATE = "letter.html.j2"
STYLESHEET = "house.css"
RUN_INFO_LABELS = {
    "run_id": "Kørsel (run id)",
    "version": "Warehouse-version",
    "source_files": "Kildefiler",
    "published_at": "Publiceret",
    "override": "Kvalitetsundtagelse",
    "engine": "Warehouse",
    "quality": "Datakvalitet",
}


@dataclass(frozen=True)
class RenderedAnswer:
    pdf_path: Path
    html_path: Path
    figures: dict[str, FigureResult] = field(default_factory=dict)
    sidecar_path: Path | None = None
    changes: ch.Changes = field(default_factory=lambda: ch.Changes(None))
    inquiry_sha256: str = ""
    official: bool = True
    archive_path: Path | None = None


def _run_info_rows(run_info: dict[str, Any] | None) -> list[tuple[str, str]]:
    rows = []
    for key, value in (run_info or {}).items():
        if isinstance(value, (list, tuple, set)):
            value = ", ".join(str(Path(str(v)).name) for v in sorted(value, key=str))
        rows.append((RUN_INFO_LABELS.get(key, key), str(value)))
    return rows


def source_files(reader: WarehouseReader) -> list[dict[str, Any]]:
    """The delivered files the warehouse's rows come from, as the load manifest records them: each
    file's source, name, SHA-256 and rows (the letter's appendix and ``slf status`` list them)."""
    if not reader.has_table("audit", "load_manifest"):
        return []
    manifest = reader.relation("audit", "load_manifest")
    rows = reader.execute(
        f"SELECT source, file_name, sha256, rows FROM {manifest} WHERE status = ? ORDER BY source, file_name",
        ["loaded"],
    ).rows
    return [{"source": r[0], "file": r[1], "sha256": r[2], "rows": r[3]} for r in rows]


def _engine_text(reader: WarehouseReader) -> str:
    """The appendix's line on where the figures were read."""
    if reader.engine == "postgres":
        about = reader.describe()
        return f"PostgreSQL, database {about['database']}, schema {about['schema']}"
    return "DuckDB"


def render_answers_html(
    loaded: LoadedInquiry, figures: dict[str, FigureResult], limits: RenderLimits = DEFAULT_LIMITS
) -> list[dict[str, Any]]:
    """Each question with its answer rendered to HTML blocks (in the sandbox, in a child process with
    ``limits``; see sandbox_run.py)."""
    inquiry = loaded.inquiry
    context: dict[str, Any] = {name: f.result for name, f in figures.items()}
    context["window"] = Period(inquiry.window.start, inquiry.window.end)
    context["inquiry"] = ReadOnlyMapping(
        {
            "party": inquiry.party,
            "member": inquiry.member,
            "subject": inquiry.subject,
            "received": inquiry.received,
            "deadline": inquiry.deadline,
        }
    )

    def where(i: int | None) -> str:
        if i is None:
            return f"{loaded.path}: answers"
        return f"{loaded.path}: questions[{i}].answer (question {inquiry.questions[i].number})"

    try:
        texts = render_answer_texts([q.answer for q in inquiry.questions], context, limits)
    except AnswerRenderError as e:
        raise InquiryError(f"{where(e.index)}: {e.reason}") from None
    out = []
    counters: dict[str, int] = {}
    for i, (q, text) in enumerate(zip(inquiry.questions, texts, strict=True)):
        if problem := markup_problem(text):
            raise InquiryError(f"{where(i)}: {problem}")
        try:
            exhibits = render_exhibits(q.tables, q.charts, figures, counters)
        except ExhibitError as e:
            raise InquiryError(f"{loaded.path}: questions[{i}] (question {q.number}): {e}") from e
        out.append(
            {"number": q.number, "question": q.question, "answer": text_to_html(text), "exhibits": exhibits}
        )
    return out


def _appendix(figures: dict[str, FigureResult]) -> list[dict[str, Any]]:
    rows = []
    for name, f in figures.items():
        entry: dict[str, Any] = {
            "name": name,
            "label": f.spec.label,
            "definition": f.spec.definition,
            "source": f.spec.describe(f.params),
            "text": f.text,
            "rows": f.rows,
            "parts": [],
        }
        if f.spec.unit == "count":  # digits in the appendix, words only in running text
            entry["text"] = fmt.format_number(f.value) if f.value is not None else f.text
        if isinstance(f.result, FigureTable):
            entry["exact"] = f.result.total.exact
            for r in f.result.items:
                group = " · ".join(key_label(v, k, f.spec, {}) for k, v in r.keys.items())
                entry["parts"].append(
                    {"group": group, "text": r.value.text, "exact": r.value.exact, "rows": r.rows}
                )
        else:
            entry["exact"] = f.result.exact
        if entry["exact"] == entry["text"]:
            entry["exact"] = ""
        rows.append(entry)
    return rows


def _deadline_text(inquiry: Inquiry) -> str:
    """The letterhead's deadline: the date and how many working days after receipt it is."""
    return f"{fmt.format_date(inquiry.due)} ({inquiry.working_days} arbejdsdage efter modtagelsen)"


def _changes_view(changes: ch.Changes) -> dict[str, Any]:
    """The appendix section's content."""
    rows = []
    for c in changes.figures:
        rows.append(
            {
                "label": c.label,
                "name": c.name,
                "old": c.old or "(ikke med)",
                "new": c.new or "(ikke med)",
                "parts": [
                    {"group": p.group, "old": p.old or "(ingen)", "new": p.new or "(ingen)"} for p in c.parts
                ],
            }
        )
    return {
        "first": changes.first_edition,
        "version": changes.previous_version,
        "rows": rows,
        "parameters_changed": changes.parameters_changed,
    }


def render_inquiry(
    warehouse: Path | WarehouseSource,
    inquiry_path: Path,
    out_dir: Path,
    *,
    run_info: dict[str, Any] | None = None,
    templates_dir: Path | None = None,
    previous: Path | None = None,
    limits: RenderLimits = DEFAULT_LIMITS,
    official: bool | None = None,
    edition: Edition | None = None,
    archive: bool = False,
    check_record: Callable[[dict[str, Any]], None] | None = None,
) -> RenderedAnswer:
    """Evaluate the inquiry's figures on the warehouse (read-only: a DuckDB file, or a
    ``warehouse_reader.PostgresSource`` naming a published PostgreSQL version) and write
    ``<out_dir>/<inquiry-stem>.html``, ``.pdf`` and ``.figures.json``.

    The figures are compared with ``previous`` (a ``.figures.json`` of an earlier edition), by
    default the one this call replaces in ``out_dir``. The appendix and the sidecar carry the
    inquiry file's SHA-256; a letter is official only when its inquiry file is one of the
    project's (``published.is_official_inquiry``; ``official`` may only narrow that), and an
    unofficial one says so on every page.

    ``edition`` makes it a draft or an approved final; ``archive`` (finals only) also writes
    ``<inquiry-stem>.arkiv.pdf``, the PDF/A-3a copy with its evidence embedded.

    ``check_record`` is called with the sidecar's record (as it will be read back) once the figures
    are read and before the letter is laid out: what it raises stops the rendering, nothing written."""
    from slf_warehouse.warehouse_reader import DuckDBSource, open_reader

    if isinstance(warehouse, (str, Path)):
        warehouse = DuckDBSource(Path(warehouse))
    inquiry_path, out_dir = Path(inquiry_path), Path(out_dir)
    templates_dir = Path(templates_dir) if templates_dir else default_templates_dir()
    loaded = load_inquiry(inquiry_path)
    inquiry = loaded.inquiry
    if archive and (edition is None or edition.is_draft):
        raise ValueError("only an approved final is archived")
    official = is_official_inquiry(inquiry_path) and official is not False
    with open_reader(warehouse) as reader:  # one version, one snapshot, for every figure and the files
        figures = evaluate_figures(reader, loaded.figure_names, inquiry.parameters)
        files = source_files(reader)
        described = reader.describe()
        read_from = {
            "run_id": reader.run_id,
            "version": reader.version,
            "published_at": reader.published_at,
            "engine": _engine_text(reader),
        }  # in published_run_info's order
    # what the reader knows of the version fills in what the caller did not say
    given = run_info or {}
    run_info = {**given, **{k: v for k, v in read_from.items() if v is not None and k not in given}}

    questions = render_answers_html(loaded, figures, limits)
    sidecar = ch.sidecar_path(out_dir, inquiry_path.stem)
    record = ch.sidecar_document(
        inquiry_path.name,
        inquiry.parameters,
        figures,
        described,
        run_info,
        inquiry_sha256=loaded.sha256,
        official=official,
    )
    if edition is not None:
        record["edition"] = edition.record()
    if check_record is not None:
        check_record(json.loads(ch.sidecar_text(record)))
    changes = ch.compare(ch.read_sidecar(Path(previous) if previous else sidecar), record)
    letter_date: date = inquiry.letter_date
    html = (
        template_environment(templates_dir, sandboxed=True)
        .get_template(LETTER_TEMPLATE)
        .render(
            inquiry=inquiry,
            heading=inquiry.heading,
            letter_date=letter_date,
            questions=questions,
            appendix=_appendix(figures),
            run_info=_run_info_rows(run_info),
            window_text=f"{fmt.format_date(inquiry.window.start)} – {fmt.format_date(inquiry.window.end)}",
            css=inline_stylesheets(templates_dir, [STYLESHEET]),
            override=(run_info or {}).get("override"),
            inquiry_file=inquiry_path.name,
            inquiry_sha256=loaded.sha256,
            official=official,
            page_marks=[
                *(["UDKAST – ikke afsendt"] if inquiry.is_draft else []),
                *([DRAFT_MARK] if edition is not None and edition.is_draft else []),
                *([] if official else ["IKKE OFFICIELT SVAR – forespørgslen er ikke fra inquiries/"]),
            ],
            source_files=files,
            changes=_changes_view(changes),
            edition=edition,
            deadline_text=_deadline_text(inquiry),
        )
    )

    from slf_warehouse.rendering.fetcher import ResourceRefused

    outputs = [PdfOutput()]
    if archive:
        from slf_warehouse.answers.archive import archive_output

        outputs.append(archive_output(inquiry_path.stem, record=record, figures=figures, edition=edition))
    try:  # the letter and its archival copy from one layout of the HTML
        pdf, *archived = html_to_pdfs(html, templates_dir, outputs)
    except ResourceRefused as e:
        raise InquiryError(f"{inquiry_path}: {e}; no letter was written") from None

    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"{inquiry_path.stem}.html"
    pdf_path = out_dir / f"{inquiry_path.stem}.pdf"
    write_private(html_path, html)
    write_private(pdf_path, pdf)
    archive_path = None
    if archived:
        archive_path = out_dir / f"{inquiry_path.stem}.arkiv.pdf"
        write_private(archive_path, archived[0])
    ch.write_sidecar(sidecar, record)  # last: a failed rendering keeps the previous edition's record
    return RenderedAnswer(
        pdf_path=pdf_path,
        html_path=html_path,
        figures=figures,
        sidecar_path=sidecar,
        changes=changes,
        inquiry_sha256=loaded.sha256,
        official=official,
        archive_path=archive_path,
    )
