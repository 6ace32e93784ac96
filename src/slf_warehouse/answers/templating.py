"""The sandboxed Jinja2 environment answer texts are rendered in, and their light text markup.

Answer texts are plain text. The environment is a ``SandboxedEnvironment`` with autoescaping, and
the template's own literal text is escaped too (``EscapeTemplateText``): "<", "&" and quotes
written in an answer, and in any value it prints, appear literally in the letter.

Helpers an answer may call (Danish names, as the texts are Danish):

- ``antal(n, "læringspartner", "læringspartnere", intetkoen=False)`` → "16 læringspartnere",
  "en projektmedarbejder", "to sektionsledere", "ingen …"; ``intetkoen=True`` gives "et …".
- ``tal(n)`` → 0–10 in words, larger in digits.
- ``kr(x)`` → "1.234.567 kr.", ``mio_kr(x)`` → "26 mio. kr.", ``procent(x)`` → "80 %".
- ``dato(d)`` → "23. november 2026", ``maaned(d)`` → "juni 2024",
  ``periode_slut(d)`` → "medio 2024" / "udgangen af 2024".
- ``opremsning(list)`` → "a, b og c"; filter ``lower_first`` → "centrale puljer".

Markup after rendering: a blank line separates paragraphs; a line starting with "- " is a bullet
(indented lines continue it).
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import StrictUndefined
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from slf_warehouse.answers import formatting as fmt


class EscapeTemplateText(Extension):
    """Escape the template's literal text, so an answer is plain text throughout."""

    def filter_stream(self, stream: TokenStream):
        for token in stream:
            if token.type == "data":
                yield Token(token.lineno, "data", str(escape(token.value)))
            else:
                yield token


def _raw(value: Any) -> Any:
    """A FigureValue's number, or the value itself."""
    return getattr(value, "value", value)


def _nowrap(text: str) -> Markup:
    return Markup('<span class="figure">{}</span>').format(text)


def _antal(n: Any, singular: str, plural: str, intetkoen: bool = False) -> Markup:
    return _nowrap(fmt.count_phrase(_raw(n), singular, plural, neuter=intetkoen))


def _tal(n: Any, intetkoen: bool = False) -> Markup:
    return _nowrap(fmt.number_words(_raw(n), neuter=intetkoen))


def _opremsning(items: Any, og: str = "og") -> Markup:
    """["a", "b", "c"] → "a, b og c"; each item escaped unless it is markup already (a figure)."""
    parts = [escape(i) for i in items]
    if len(parts) <= 1:
        return Markup("").join(parts)
    return Markup(", ").join(parts[:-1]) + Markup(" ") + escape(og) + Markup(" ") + parts[-1]


def template_helpers() -> dict[str, Any]:
    return {
        "antal": _antal,
        "tal": _tal,
        "kr": lambda x: _nowrap(fmt.format_kr(_raw(x))),
        "mio_kr": lambda x: _nowrap(fmt.format_mio_kr(_raw(x))),
        "procent": lambda x, decimaler=0: _nowrap(fmt.format_percent(_raw(x), decimaler)),
        "dato": lambda d: _nowrap(fmt.format_date(d)),
        "maaned": lambda d: _nowrap(fmt.format_month(_raw(d))),
        "periode_slut": lambda d: fmt.format_period_end(d),
        "opremsning": _opremsning,
    }


FILTERS = {
    "lower_first": lambda s: fmt.lower_first(str(s)),
    "opremsning": _opremsning,
}
HELPER_NAMES = frozenset(template_helpers())


def answer_environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                               lstrip_blocks=True, extensions=[EscapeTemplateText])
    env.globals.update(template_helpers())
    env.filters.update(FILTERS)
    return env


_BULLET = re.compile(r"^- +(.*)$")
# A figure ending in an abbreviation's full stop ("6,6 mio. kr.") at the end of a sentence takes
# no second full stop.
_DOUBLE_STOP = re.compile(r"\b(kr|mio|mia)\.(</span>)?\.(?!\.)")


def text_to_html(rendered: str) -> Markup:
    """Rendered answer text (already escaped) → <p> and <ul> blocks."""
    html: list[str] = []
    rendered = _DOUBLE_STOP.sub(r"\1.\2", rendered)
    for block in re.split(r"\n[ \t]*\n", rendered.strip()):
        paragraph: list[str] = []
        items: list[list[str]] = []

        def flush_paragraph() -> None:
            if paragraph:
                html.append("<p>" + " ".join(paragraph) + "</p>")
                paragraph.clear()

        def flush_items() -> None:
            if items:
                html.append("<ul>" + "".join("<li>" + " ".join(i) + "</li>" for i in items) + "</ul>")
                items.clear()

        for line in block.splitlines():
            if not line.strip():
                continue
            bullet = _BULLET.match(line)
            if bullet:
                flush_paragraph()
                items.append([bullet.group(1).strip()])
            elif items and line[:1] in (" ", "\t"):
                items[-1].append(line.strip())
            else:
                flush_items()
                paragraph.append(line.strip())
        flush_paragraph()
        flush_items()
    return Markup("\n".join(html))
