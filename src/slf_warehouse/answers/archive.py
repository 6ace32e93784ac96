"""The approved letter's archival copy for the case file: PDF/A-3a with its evidence embedded.

The accessible final (PDF/UA-1) is what is published. The case file gets the same laid-out HTML
written once more as PDF/A-3a — archival and tagged, so it stays accessible — carrying as embedded files:

- ``<stem>.figures.json``: the figures sidecar, byte for byte as written beside the letter;
- ``datagrundlag.sql``: each figure's query as it ran on the warehouse, with its bound values;
- ``godkendelse.json``: the approval record (who, when, which draft by its SHA-256, the edition
  note) and the warehouse version the figures were read from.

So the journalised document holds its own evidence: the queries can be run again on the same
warehouse version and must give the numbers the sidecar holds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from slf_warehouse.answers import changes as ch
from slf_warehouse.answers.edition import Edition
from slf_warehouse.answers.figures import FigureResult
from slf_warehouse.rendering.pdf import EmbeddedFile, PdfOutput

ARCHIVE_VARIANT = "pdf/a-3a"
QUERIES_FILE = "datagrundlag.sql"
APPROVAL_FILE = "godkendelse.json"


def _bound_json(value: Any) -> Any:
    return value if isinstance(value, (int, str, type(None))) else str(value)


def queries_text(figures: Mapping[str, FigureResult]) -> str:
    """One block per figure: ``-- figure: NAME``, ``-- bound: [JSON]`` (the ``?``s in order), the SQL."""
    blocks = []
    for name, f in figures.items():
        bound = json.dumps([_bound_json(v) for v in f.bound], ensure_ascii=False)
        blocks.append(f"-- figure: {name}\n-- label: {f.spec.label}\n-- bound: {bound}\n{f.sql};\n")
    return (
        "-- Datagrundlag: the queries behind every figure of the letter, as they ran on the warehouse\n"
        "-- version named in godkendelse.json; '?' takes the bound values in order.\n\n" + "\n".join(blocks)
    )


def approval_document(edition: Edition, record: dict[str, Any]) -> dict[str, Any]:
    """The approval and what it approved: the draft's hash, the inquiry and the warehouse version."""
    return {
        "edition": edition.record(),
        "inquiry": record.get("inquiry"),
        "inquiry_sha256": record.get("inquiry_sha256"),
        "warehouse": record.get("warehouse"),
    }


def archive_output(
    stem: str,
    *,
    record: dict[str, Any],
    figures: Mapping[str, FigureResult],
    edition: Edition | None,
) -> PdfOutput:
    """The archival copy of the letter ``stem``: PDF/A-3a with the three evidence files embedded
    (written from the same layout as the accessible final, ``pdf.html_to_pdfs``)."""
    if edition is None or edition.approval is None:
        raise ValueError("only an approved final is archived")
    when = edition.approval.approved_at
    evidence = [
        (
            f"{stem}{ch.SIDECAR_SUFFIX}",
            ch.sidecar_text(record),
            "Tallene i svaret med eksakte værdier",
            "Data",
        ),
        (QUERIES_FILE, queries_text(figures), "Forespørgslerne bag tallene (Datagrundlag)", "Source"),
        (
            APPROVAL_FILE,
            json.dumps(approval_document(edition, record), indent=2, ensure_ascii=False) + "\n",
            "Godkendelsen: hvem, hvornår, hvilket udkast",
            "Supplement",
        ),
    ]
    embedded = tuple(
        EmbeddedFile(name, text.encode("utf-8"), description, relationship, when)
        for name, text, description, relationship in evidence
    )
    return PdfOutput(ARCHIVE_VARIANT, embedded)
