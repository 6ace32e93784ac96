"""A PDF's text read back as a reader gets it, page by page, with poppler's ``pdftotext``.

poppler-utils is one of the Makefile's system packages (``make test`` installs it). It reads a letter
in about 40 ms, where pypdf's ``extract_text`` takes about 0,9 s, and the tests read dozens of PDFs;
pypdf stays for what it is good at here: the structure, metadata and embedded files.
Whitespace (line breaks inside table cells, no-break spaces) is collapsed to single spaces.
"""

from __future__ import annotations

import subprocess
from pathlib import Path


def page_texts(path: Path | str) -> list[str]:
    done = subprocess.run(
        ["pdftotext", "-q", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, timeout=60
    )
    pages = done.stdout.decode("utf-8").split("\f")  # a form feed ends every page
    if pages and not pages[-1].strip():
        pages.pop()
    return [" ".join(page.split()) for page in pages]


def pdf_text(path: Path | str) -> str:
    return " ".join(page_texts(path))
