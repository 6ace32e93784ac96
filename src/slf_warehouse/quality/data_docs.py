"""A plain-HTML summary at the top of the Data Docs index page, readable without JavaScript or internet.

Great Expectations' index page lists suites and validation results with bootstrap-table, loaded
from public CDNs (jsdelivr, unpkg, cdnjs, ...): on a machine without internet access (or behind a
proxy that blocks them) the page shows two "Clear Filters" buttons and nothing else. So after GE
builds the site, `add_static_summary` puts a server-rendered table of this run's suites (status,
counts, links to each suite's expectations and to this run's validation page) right after
`<body>`; GE's own interactive tables follow below it when their scripts load.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

MARKER = 'id="slf-quality-summary"'
STYLE = """
<style>
#slf-quality-summary { font-family: "DejaVu Sans", Arial, sans-serif; margin: 16px 24px; color: #1a1a1a; }
#slf-quality-summary h1 { font-size: 20px; color: #003f7f; margin: 0 0 6px 0; }
#slf-quality-summary p { margin: 0 0 8px 0; font-size: 13px; }
#slf-quality-summary table { border-collapse: collapse; font-size: 13px; }
#slf-quality-summary th, #slf-quality-summary td { text-align: left; padding: 3px 14px 3px 0;
    border-bottom: 1px solid #d4d4d4; }
#slf-quality-summary thead th { border-bottom: 2px solid #003f7f; }
#slf-quality-summary td.num { text-align: right; }
#slf-quality-summary .failed { color: #a00000; font-weight: bold; }
#slf-quality-summary .warned { color: #b24a00; font-weight: bold; }
#slf-quality-summary .passed { color: #2e7d32; }
</style>
"""


def _validation_page(docs_dir: Path, suite: str, run_id: str) -> str | None:
    """This run's (latest) validation page of the suite, relative to docs_dir and URL-quoted."""
    run_dir = docs_dir / "validations" / suite / run_id
    pages = sorted(run_dir.glob("*/*.html")) if run_dir.is_dir() else []
    if not pages:
        return None
    return "/".join(quote(part) for part in pages[-1].relative_to(docs_dir).parts)


def summary_html(docs_dir: Path, run_id: str, outcomes: Sequence[Any]) -> str:
    """The section (HTML) for the run's suite outcomes (SuiteOutcome objects)."""
    failed = sum(not o.success for o in outcomes)
    rows = []
    for o in sorted(outcomes, key=lambda o: (o.layer != "raw", o.name)):
        if not o.success:
            status, css = "fejl", "failed"
        elif o.failed_warnings:
            status, css = "advarsel", "warned"
        else:
            status, css = "bestået", "passed"
        page = _validation_page(docs_dir, o.name, run_id)
        status_cell = (
            f'<a class="{css}" href="{html.escape(page)}">{status}</a>'
            if page
            else f'<span class="{css}">{status}</span>'
        )
        suite_page = docs_dir / "expectations" / f"{o.name}.html"
        name = html.escape(o.name)
        name_cell = (
            f'<a href="expectations/{quote(o.name)}.html">{name}</a>' if suite_page.is_file() else name
        )
        message = f"<br><small>{html.escape(o.message)}</small>" if o.message else ""
        rows.append(
            f'<tr data-suite="{name}"><td>{name_cell}{message}</td><td>{html.escape(o.layer)}</td>'
            f'<td class="num">{o.expectations}</td><td class="num">{o.failed_errors}</td>'
            f'<td class="num">{o.failed_warnings}</td><td>{status_cell}</td></tr>'
        )
    verdict = (
        f'<span class="failed">{failed} af {len(outcomes)} suiter fejlede</span>'
        if failed
        else f'<span class="passed">alle {len(outcomes)} suiter bestået</span>'
    )
    return (
        f"{STYLE}<section {MARKER}>\n<h1>Datakvalitet: kørsel {html.escape(run_id)}</h1>\n"
        f"<p>{verdict}. Listen herunder virker uden internetadgang; de interaktive tabeller længere nede "
        f"kræver adgang til internettet.</p>\n"
        '<table id="slf-suites"><thead><tr><th>Suite</th><th>Lag</th><th>Kontroller</th><th>Fejl</th>'
        "<th>Advarsler</th><th>Status (denne kørsel)</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n</section>\n"
    )


def add_static_summary(index: Path, run_id: str, outcomes: Sequence[Any]) -> None:
    """Insert the summary after <body> of GE's index.html (once: a rebuilt index has none)."""
    text = index.read_text(encoding="utf-8")
    if MARKER in text:
        return
    section = summary_html(index.parent, run_id, outcomes)
    at = text.find("<body>")
    if at < 0:
        text = section + text
    else:
        end = at + len("<body>")
        text = text[:end] + "\n" + section + text[end:]
    index.write_text(text, encoding="utf-8")
