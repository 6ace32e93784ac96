"""Searching output files for personal data, in every form it could take there.

A value can reach a file as UTF-8 or cp1252 bytes, JSON-escaped (\\u00f8), HTML-escaped (&oslash;,
&#248;), inside a PDF (only readable after text extraction) or, for an amount, as 12345.67,
12345,67, 12.345,67, 12,345.67 or 12345.670000. `find_leaks` looks at each file's bytes in all of
these readings and returns where each needle was found.
"""

from __future__ import annotations

import contextlib
import html
import re
import subprocess
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def amount_forms(amount: Decimal) -> set[str]:
    """The ways an amount (two decimals) is written by Python, JSON, DuckDB and Danish formatting."""
    value = abs(Decimal(amount)).quantize(Decimal("0.01"))
    plain = f"{value:.2f}"
    english = f"{value:,.2f}"
    danish = english.replace(",", "_").replace(".", ",").replace("_", ".")
    forms = {
        plain,
        plain.replace(".", ","),
        english,
        danish,
        f"{value:.6f}",
        f"{value:.4f}",
        repr(float(value)),
    }
    if plain.endswith("0"):  # 12345.6 as a float prints one decimal
        forms |= {plain[:-1], plain[:-1].replace(".", ",")}
    return {f for f in forms if len(f.replace(".", "").replace(",", "")) >= 5}  # short ones match by chance


def _pdf_text(path: Path) -> str:
    try:
        done = subprocess.run(["pdftotext", "-q", str(path), "-"], capture_output=True, timeout=60)
        text = done.stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        text = ""
    from pypdf import PdfReader

    with contextlib.suppress(Exception):  # not a readable PDF: its bytes are searched anyway
        text += "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    return text


def readings(path: Path) -> list[str]:
    """The file's content as text in every reading a needle could hide in."""
    data = path.read_bytes()
    texts = [data.decode("utf-8", "ignore"), data.decode("cp1252", "ignore"), data.decode("latin-1")]
    if data[:5] == b"%PDF-":
        texts.append(_pdf_text(path))
    out = []
    for text in texts:
        out.append(text)
        unescaped = html.unescape(_JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text))
        if unescaped != text:
            out.append(unescaped)
    # text extraction and HTML break lines and spaces inside table cells
    out += [re.sub(r"\s+", " ", t.replace("\u00a0", " ").replace("\u202f", " ")) for t in out]
    return out


def _pattern(needle: str) -> re.Pattern[str]:
    if needle.isdigit():  # a number standing alone, not a run of digits inside a hash or a longer number
        return re.compile(r"(?<![0-9a-fA-F])" + re.escape(needle) + r"(?![0-9a-fA-F])")
    if re.fullmatch(r"[0-9.,]+", needle):  # an amount: not the tail or head of a longer number
        return re.compile(r"(?<![0-9.,])" + re.escape(needle) + r"(?![0-9])")
    return re.compile(re.escape(needle), re.IGNORECASE)


def find_leaks(paths: Iterable[Path], needles: Iterable[str]) -> dict[str, list[str]]:
    """needle -> the files (as given) whose content holds it in some reading."""
    patterns = {n: _pattern(n) for n in set(needles) if n}
    found: dict[str, list[str]] = {}
    for path in paths:
        texts = readings(path)
        for needle, pattern in patterns.items():
            if any(pattern.search(t) for t in texts):
                found.setdefault(needle, []).append(str(path))
    return found


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and not p.is_symlink())
