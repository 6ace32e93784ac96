"""HTML to PDF with WeasyPrint, as the letters and the quality report are written.

The same HTML gives the same bytes: the PDF identifier is a hash of the HTML and nothing reads the
clock (the creation and modification dates come from the HTML's ``dcterms`` meta tags, when the
template sets them). WeasyPrint fetches only the project's own files (``fetcher.ProjectFilesFetcher``
over the templates folder): a refused URL raises ``fetcher.ResourceRefused`` and nothing is written.

The default variant is PDF/UA-1: tagged (headings, tables with header cells, figures with
alternate text), so a screen reader can read it. The letters' archival copy is PDF/A-3a, which may
embed files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PDF_VARIANT = "pdf/ua-1"


@dataclass(frozen=True)
class EmbeddedFile:
    """A file carried inside the PDF (PDF/A-3 only)."""

    name: str
    data: bytes
    description: str
    relationship: str  # PDF/A-3's AFRelationship: Data, Source, Supplement, …
    when: datetime | None = None  # its creation and modification date


def pdf_identifier(html: str) -> bytes:
    """The PDF's identifier: from the HTML it was rendered from, so it never changes between runs."""
    return hashlib.sha256(html.encode("utf-8")).hexdigest()[:32].encode("ascii")


def html_to_pdf(
    html: str, templates_dir: Path, *, variant: str = PDF_VARIANT, embedded: Sequence[EmbeddedFile] = ()
) -> bytes:
    """``html`` as a PDF of ``variant``, relative URLs resolved in ``templates_dir``, which is also the
    only folder WeasyPrint may read from."""
    [pdf] = html_to_pdfs(html, templates_dir, [PdfOutput(variant, tuple(embedded))])
    return pdf


@dataclass(frozen=True)
class PdfOutput:
    """One PDF to write from a laid-out HTML document: its variant and the files it carries."""

    variant: str = PDF_VARIANT
    embedded: Sequence[EmbeddedFile] = ()


def html_to_pdfs(html: str, templates_dir: Path, outputs: Sequence[PdfOutput]) -> list[bytes]:
    """``html`` as one PDF per output, laid out once: the layout (about two thirds of a letter's
    rendering) does not depend on the variant, only the writing does. Each PDF has the bytes
    ``html_to_pdf`` would give for it alone."""
    from weasyprint import HTML, Attachment  # ~1 s to import: only here, never at package import
    from weasyprint.pdf import VARIANTS

    from slf_warehouse.rendering.fetcher import ProjectFilesFetcher, refuse_early

    fetcher = ProjectFilesFetcher(templates_dir)  # never WeasyPrint's default fetcher
    source = HTML(string=html, base_url=str(templates_dir), url_fetcher=fetcher)
    refuse_early(source, fetcher)  # before the layout, not after it when the PDF is written
    laid_out = source.render()
    pdfs = []
    for output in outputs:
        # A fresh document per PDF, as a render of its own variant would make: writing one adds its
        # fonts and its output intent's colour profile to the document it writes.
        document = laid_out.copy()
        document.color_profiles = dict(laid_out.color_profiles)
        document.output_intent = VARIANTS[output.variant][1].get("output_intent")
        attachments = [
            Attachment(
                string=f.data,
                name=f.name,
                description=f.description,
                created=f.when,
                modified=f.when,
                relationship=f.relationship,
                url_fetcher=fetcher,
            )
            for f in output.embedded
        ]
        pdf: bytes = document.write_pdf(
            pdf_identifier=pdf_identifier(html), pdf_variant=output.variant, attachments=attachments or None
        )
        pdfs.append(pdf)
    return pdfs
