"""A PDF's text read back as a reader gets it, page by page, with poppler's ``pdftotext``.

poppler-utils is one of the Makefile's system packages (``make test`` installs it). It reads a letter
in about 40 ms, where pypdf's ``extract_text`` takes about 0,9 s, and the tests read dozens of PDFs;
pypdf stays for what it is good at here: the structure, metadata and embedded files.
Whitespace (line breaks inside table cells, no-break spaces) is collapsed to single spaces.
By default poppler orders the text as it is laid out on the page (a letterhead's two columns read
across); ``raw=True`` keeps the order WeasyPrint wrote it in, cell by cell, which keeps a table row
whose cells wrap onto several lines together.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def page_texts(path: Path | str, *, raw: bool = False) -> list[str]:
    done = subprocess.run(
        ["pdftotext", "-q", *(["-raw"] if raw else []), "-enc", "UTF-8", str(path), "-"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    pages = done.stdout.decode("utf-8").split("\f")  # a form feed ends every page
    if pages and not pages[-1].strip():
        pages.pop()
    return [" ".join(page.split()) for page in pages]


def pdf_text(path: Path | str, *, raw: bool = False) -> str:
    return " ".join(page_texts(path, raw=raw))
