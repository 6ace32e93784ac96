"""From draft to signed answer: what ``dags/slf_answer_inquiry.py`` runs around the approval.

1. ``render_draft``: the chosen inquiry (a name from ``inquiries/``, never a path; the output folder
   comes from configuration, ``SLF_OUTPUT_DIR``) is rendered from the published warehouse as a
   draft into ``answers/review/<run>/`` — "UDKAST" on every page, the signature block unsigned —
   compared with the last *approved* edition (``answers/approved/<stem>.figures.json``). Its
   ``draft.json`` records the PDF's SHA-256, the warehouse version and the signatories.
2. The DAG's ``approve`` task (``approval_operator.LetterApproval``) asks the signatories named in
   the inquiry file (``signatories[].username``: their Airflow logins) to approve or reject it,
   showing ``approval_body``.
3. ``conclude``: on approval, the final letter (signature block "Godkendt af … den …") and its
   archival PDF/A-3a copy go to ``answers/approved/``, rendered from the very warehouse version the
   draft was, and refused if any figure differs from the draft. On rejection the required comment
   is kept beside the draft (``rejection.json``) and no final is written. Both are appended to
   ``answers/approvals.jsonl`` and returned to the run history (XCom).

A refresh that publishes a new version marks every waiting draft of an older version stale
(``mark_stale_drafts``, called by the pipeline after it publishes); approving a stale draft is
refused, and so is approving one whose PDF changed on disk since it was shown.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slf_warehouse.file_modes import write_private
from slf_warehouse.file_names import slug

if TYPE_CHECKING:
    from slf_warehouse.settings import Settings

REVIEW_FOLDER = "review"
APPROVED_FOLDER = "approved"
APPROVALS_LOG = "approvals.jsonl"
DRAFT_RECORD = "draft.json"
REJECTION_RECORD = "rejection.json"
APPROVE, REJECT = "Godkend", "Afvis"
COMMENT = "kommentar"
TRIGGER_PARAMS = frozenset({"inquiry", "edition_note"})
# A review folder's name: longer than file_names.slug's default, as it always was, so a draft made
# before that helper was shared is still found under its run's folder.
REVIEW_NAME_LENGTH = 100


class ApprovalError(Exception):
    """A draft cannot be made, approved or rejected; the message says why and what to do."""


def review_folder(answers_dir: Path, run_id: str) -> Path:
    """Where the draft of the run ``run_id`` is kept, with its decision."""
    return Path(answers_dir) / REVIEW_FOLDER / slug(run_id, max_length=REVIEW_NAME_LENGTH)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _write_json(path: Path, document: dict[str, Any]) -> None:
    write_private(path, json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def _append_log(answers_dir: Path, entry: dict[str, Any]) -> None:
    answers_dir.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
    fd = os.open(answers_dir / APPROVALS_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, line.encode("utf-8"))  # one write per line: concurrent runs never interleave
    finally:
        os.close(fd)


def _settings() -> Settings:
    from slf_warehouse.settings import Settings

    return Settings.from_env()  # folders from configuration only, never from a param


# --- 1. the draft -----------------------------------------------------------------------------------


def check_trigger_params(params: Mapping[str, Any], choices: Mapping[str, str]) -> tuple[str, str]:
    """The inquiry's name and the edition note, or ApprovalError: an unknown param (``output_dir``…)
    or an inquiry that is not one of the list (a path, a name with a folder) is refused."""
    unknown = sorted(set(params) - TRIGGER_PARAMS)
    if unknown:
        raise ApprovalError(
            f"param(s) {', '.join(unknown)} not accepted: the inquiry is chosen from the list and "
            "the folders come from the deployment's configuration (SLF_OUTPUT_DIR)"
        )
    inquiry = str(params.get("inquiry") or "")
    if inquiry not in choices:
        raise ApprovalError(
            f"inquiry {inquiry!r} is not one of the inquiries in inquiries/ "
            f"({', '.join(choices) or 'none'}); a path is not accepted"
        )
    note = str(params.get("edition_note") or "").strip()
    return inquiry, note


def render_draft(params: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Render the chosen inquiry as a draft for the run ``run_id``; its record (also ``draft.json``)."""
    from slf_warehouse.answers.choices import inquiry_choices
    from slf_warehouse.answers.edition import Edition
    from slf_warehouse.answers.inquiry import load_inquiry
    from slf_warehouse.answers.published import published_run_info, published_warehouse
    from slf_warehouse.answers.render import render_inquiry

    settings = _settings()
    inquiry, note = check_trigger_params(params, inquiry_choices(settings.inquiries_dir))
    path = settings.inquiries_dir / f"{inquiry}.yaml"
    loaded = load_inquiry(path)
    signatories = [
        {"username": s.username, "name": s.name, "title": s.title}
        for s in loaded.inquiry.signatories
        if s.username
    ]
    if not signatories:
        raise ApprovalError(
            f"{path}: signatories: none has a `username:` (the Airflow login the approval is "
            "assigned to); add it before asking for approval"
        )
    published, source = published_warehouse(settings)  # NoPublishedWarehouse: run a refresh first
    run_info = published_run_info(published, settings.quality_dir)
    folder = review_folder(settings.answers_dir, run_id)
    approved = settings.answers_dir / APPROVED_FOLDER
    answer = render_inquiry(
        source,
        path,
        folder,
        run_info=run_info,
        previous=approved / f"{inquiry}.figures.json",
        edition=Edition("draft", note),
    )
    record = {
        "status": "waiting",
        "inquiry": inquiry,
        "heading": loaded.inquiry.heading,
        "inquiry_sha256": answer.inquiry_sha256,
        "run_id": run_id,
        "folder": str(folder),
        "pdf": str(answer.pdf_path),
        "pdf_sha256": _sha256(answer.pdf_path),
        "html": str(answer.html_path),
        "figures_json": str(answer.sidecar_path),
        "edition_note": note,
        "signatories": signatories,
        "warehouse_version": published.version,
        "warehouse_run_id": published.run_id,
        "quality": run_info.get("quality"),
        "override": run_info.get("override"),
        "first_edition": answer.changes.first_edition,
        "changed_figures": answer.changes.names,
        "figures": [{"name": n, "label": f.spec.label, "text": f.text} for n, f in answer.figures.items()],
        "changes": [{"label": c.label, "old": c.old, "new": c.new} for c in answer.changes.figures],
    }
    _write_json(folder / DRAFT_RECORD, record)
    return record


# --- 2. what the approval page shows ----------------------------------------------------------------

# What an answer writer, an inquiry file or the warehouse puts on the approval page is text, never
# Markdown: Airflow renders the page's body as Markdown in the signatory's browser, so an image or a
# link (``![x](http://…)``, ``<img src=…>``, an autolink) in an edition note would fetch or offer a URL
# the project never meant to open. Every character that starts a Markdown construct is escaped.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>!|~:&#])")


def _cell(text: Any) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text if text is not None else "–").replace("\n", " "))


def approval_subject(draft: Mapping[str, Any]) -> str:
    return f"Godkend udkast: {draft['heading']}"


def approval_body(draft: Mapping[str, Any]) -> str:
    """Markdown for the Required Actions page: the draft, its figures, what changed since the last
    approved edition and the warehouse's quality status."""
    lines = [f"**Udkast** `{draft['pdf']}`", "", f"SHA-256 `{draft['pdf_sha256']}`", ""]
    if draft.get("edition_note"):
        lines += [f"**Udgave:** {_cell(draft['edition_note'])}", ""]
    lines += [
        f"**Warehouse:** version `{draft['warehouse_version']}` (kørsel `{draft['warehouse_run_id']}`)",
        "",
        f"**Datakvalitet:** {_cell(draft.get('quality') or 'ingen kvalitetsresultater for versionen')}",
        "",
    ]
    if draft.get("override"):
        lines += [f"**Offentliggjort trods fejlede kvalitetskontroller:** {_cell(draft['override'])}", ""]
    lines += ["### Ændringer siden sidste godkendte udgave", ""]
    if draft["first_edition"]:
        lines.append("Ingen tidligere godkendt udgave: dette bliver første udgave.")
    elif not draft["changes"]:
        lines.append("Ingen af tallene er ændret.")
    else:
        lines += ["| Tal | Før | Nu |", "|---|---|---|"]
        lines += [
            f"| {_cell(c['label'])} | {_cell(c['old'] or '(ikke med)')} | {_cell(c['new'] or '(ikke med)')} |"
            for c in draft["changes"]
        ]
    lines += ["", "### Tallene i udkastet", "", "| Tal | Værdi |", "|---|---|"]
    lines += [f"| {_cell(f['label'])} | {_cell(f['text'])} |" for f in draft["figures"]]
    names = ", ".join(f"{_cell(s['name'])} ({_cell(s['username'])})" for s in draft["signatories"])
    lines += [
        "",
        (
            f"Kan godkendes af: {names}. **{APPROVE}** skriver det endelige brev og arkivkopien; "
            f"**{REJECT}** kræver en kommentar, som gemmes ved udkastet."
        ),
    ]
    return "\n".join(lines)


# --- 3. the decision --------------------------------------------------------------------------------


def _responded_at(value: Any) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _decision(response: Mapping[str, Any]) -> tuple[str, str, str, datetime]:
    chosen = list(response.get("chosen_options") or [])
    if len(chosen) != 1 or chosen[0] not in (APPROVE, REJECT):
        raise ApprovalError(f"expected one of {APPROVE!r} or {REJECT!r}, got {chosen}")
    user = response.get("responded_by_user") or {}
    username = str(user.get("name") or "")  # FAB's id is its database number; the name is the login
    comment = str((response.get("params_input") or {}).get(COMMENT) or "").strip()
    return chosen[0], username, comment, _responded_at(response["responded_at"])


def mark_stale_drafts(answers_dir: Path, published_version: str) -> list[Path]:
    """Every waiting draft made from another warehouse version than ``published_version`` is marked
    stale (its ``draft.json``); the drafts marked."""
    marked = []
    for record_path in sorted((Path(answers_dir) / REVIEW_FOLDER).glob(f"*/{DRAFT_RECORD}")):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if record.get("status") == "waiting" and record.get("warehouse_version") != published_version:
            record.update(status="stale", stale_since_version=published_version)
            _write_json(record_path, record)
            marked.append(record_path.parent)
    return marked


def _current_record(draft: Mapping[str, Any]) -> dict[str, Any]:
    path = Path(draft["folder"]) / DRAFT_RECORD
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if record.get("pdf_sha256") != draft["pdf_sha256"]:
        raise ApprovalError(f"{path}: the draft record changed since the approval was asked for")
    return record


def conclude(draft: Mapping[str, Any], response: Mapping[str, Any]) -> dict[str, Any]:
    """Act on the signatory's decision on ``draft`` (``render_draft``'s record); what was done."""
    choice, username, comment, when = _decision(response)
    signatory = next((s for s in draft["signatories"] if s["username"] == username), None)
    if signatory is None:  # the API refuses others already; this keeps a record honest if it did not
        raise ApprovalError(f"answered by {username!r}, who is not a signatory of {draft['inquiry']}")
    settings = _settings()
    record = _current_record(draft)
    folder = Path(draft["folder"])
    entry = {
        "inquiry": draft["inquiry"],
        "run_id": draft["run_id"],
        "draft_sha256": draft["pdf_sha256"],
        "by": username,
        "at": when.isoformat(),
        "edition_note": draft["edition_note"],
        "warehouse_version": draft["warehouse_version"],
    }
    if choice == REJECT:
        if not comment:
            raise ApprovalError(
                f"{REJECT}: a rejection needs a comment ({COMMENT}); no final letter was written"
            )
        rejection = {**entry, "decision": "rejected", "comment": comment}
        _write_json(folder / REJECTION_RECORD, rejection)
        _write_json(folder / DRAFT_RECORD, {**record, "status": "rejected"})
        _append_log(settings.answers_dir, rejection)
        return rejection
    return _approve(draft, record, signatory, comment, when, entry, settings)


def _approve(
    draft: Mapping[str, Any],
    record: dict[str, Any],
    signatory: dict[str, str],
    comment: str,
    when: datetime,
    entry: dict[str, Any],
    settings: Any,
) -> dict[str, Any]:
    import shutil

    from slf_warehouse.answers import changes as ch
    from slf_warehouse.answers.edition import Approval, Edition
    from slf_warehouse.answers.published import published_run_info, published_warehouse
    from slf_warehouse.answers.render import render_inquiry

    folder = Path(draft["folder"])
    if _sha256(Path(draft["pdf"])) != draft["pdf_sha256"]:
        raise ApprovalError(
            f"{draft['pdf']}: the draft changed on disk since it was shown; trigger a new draft"
        )
    published, source = published_warehouse(settings)
    if record.get("status") == "stale" or published.version != draft["warehouse_version"]:
        _write_json(
            folder / DRAFT_RECORD,
            {
                **record,
                "status": "stale",
                "stale_since_version": record.get("stale_since_version") or published.version,
            },
        )
        raise ApprovalError(
            f"the draft is stale: it was made from warehouse version {draft['warehouse_version']}, "
            f"and {published.version} has been published since; trigger a new draft"
        )
    approval = Approval(
        username=signatory["username"],
        name=signatory["name"],
        title=signatory["title"],
        approved_at=when,
        draft_sha256=draft["pdf_sha256"],
        comment=comment,
    )
    edition = Edition("final", draft["edition_note"], approval)
    approved = settings.answers_dir / APPROVED_FOLDER
    staging = approved / f".staging-{slug(draft['run_id'], max_length=REVIEW_NAME_LENGTH)}"
    shutil.rmtree(staging, ignore_errors=True)
    stem = draft["inquiry"]
    drafted = ch.read_sidecar(Path(draft["figures_json"])) or {}

    def as_drafted(final: dict[str, Any]) -> None:  # checked before the final is laid out
        if (
            drafted.get("figures") != final.get("figures")
            or final.get("inquiry_sha256") != draft["inquiry_sha256"]
        ):
            raise ApprovalError(
                "the final letter's figures or inquiry text differ from the approved draft's; "
                "no final letter was written: trigger a new draft"
            )

    try:
        render_inquiry(
            source,
            settings.inquiries_dir / f"{stem}.yaml",
            staging,
            run_info=published_run_info(published, settings.quality_dir),
            previous=approved / f"{stem}{ch.SIDECAR_SUFFIX}",
            edition=edition,
            archive=True,
            check_record=as_drafted,
        )
    except ApprovalError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    sidecar = staging / f"{stem}{ch.SIDECAR_SUFFIX}"
    done = {
        **entry,
        "decision": "approved",
        "comment": comment,
        "name": signatory["name"],
        "title": signatory["title"],
        "text": approval.text,
    }
    _write_json(staging / f"{stem}.approval.json", done)
    files = {}
    for path in sorted(staging.iterdir()):  # the sidecar last: it marks the edition as complete
        if path != sidecar:
            os.replace(path, approved / path.name)
            files[path.name] = str(approved / path.name)
    os.replace(sidecar, approved / sidecar.name)
    files[sidecar.name] = str(approved / sidecar.name)
    staging.rmdir()
    done["files"] = files
    done["pdf_sha256"] = _sha256(approved / f"{stem}.pdf")
    done["archive_sha256"] = _sha256(approved / f"{stem}.arkiv.pdf")
    _write_json(folder / DRAFT_RECORD, {**record, "status": "approved", "approved_by": signatory["username"]})
    _append_log(settings.answers_dir, done)
    return done
