"""The sandboxed Jinja2 environment answer texts are rendered in, and their light text markup.

Answer texts are plain text. The environment is an immutable sandbox (``AnswerSandbox``: no
template can change a list, a dict or a figure) with autoescaping, and the template's own literal
text is escaped too (``EscapeTemplateText``): "<", "&" and quotes written in an answer, and in any
value it prints, appear literally in the letter. Constructs that would print markup unescaped
(``safe``, ``{% autoescape %}`` …) are refused when the inquiry loads (``template_check.py``), and
whatever an answer renders to is checked again afterwards (``markup_problem``): the only markup it
may contain is the figure span the helpers write. Rendering itself runs in a child process with a
time and memory limit (``sandbox_run.py``).

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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from jinja2 import StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from slf_warehouse.rendering import formatting as fmt


class EscapeTemplateText(Extension):
    """Escape the template's literal text, so an answer is plain text throughout."""

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        for token in stream:
            if token.type == "data":
                yield Token(token.lineno, "data", str(escape(token.value)))
            else:
                yield token


@dataclass(frozen=True)
class Period:
    """The inquiry's window as a template sees it: ``window.start``, ``window.end``."""

    start: date
    end: date


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


# Jinja's own filters an answer may use: all return text (escaped when printed) or plain values.
# Not here: safe, urlize, xmlattr, tojson, pprint (markup or object internals).
BUILTIN_FILTERS = frozenset(
    {
        "abs",
        "attr",
        "batch",
        "capitalize",
        "center",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "filesizeformat",
        "first",
        "float",
        "forceescape",
        "format",
        "groupby",
        "indent",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "replace",
        "reverse",
        "round",
        "select",
        "selectattr",
        "slice",
        "sort",
        "string",
        "striptags",
        "sum",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "wordcount",
        "wordwrap",
    }
)
ALLOWED_FILTERS = BUILTIN_FILTERS | frozenset(FILTERS)


class AnswerSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, and no reaching into markup: a helper's result (a ``Markup`` figure
    span) can be printed but not indexed or edited with its string methods, which keep it markup
    (``tal(1).replace("span class=", "img src=…")`` would otherwise write an image tag). Jinja
    compiles slices to plain Python, so ``tal(1)[:1]`` still gives markup: the rendered text is
    checked afterwards (``markup_problem``) for that and whatever else is not foreseen here."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, Markup):
            return False
        return super().is_safe_attribute(obj, attr, value)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Markup):
            return self.undefined(
                "a helper's formatted text cannot be sliced", obj=obj, name=str(argument), exc=SecurityError
            )
        return super().getitem(obj, argument)


def answer_environment() -> AnswerSandbox:
    env = AnswerSandbox(
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[EscapeTemplateText],
    )
    env.globals.update(template_helpers())
    env.filters = {name: f for name, f in {**env.filters, **FILTERS}.items() if name in ALLOWED_FILTERS}
    return env


# The only tags a rendered answer may contain: the figure span (``_nowrap``, ``FigureValue``).
_FIGURE_TAGS = re.compile(r'<span class="figure">|</span>')


def markup_problem(rendered: str) -> str | None:
    """None when ``rendered`` is escaped text and figure spans only; else what is wrong (without
    quoting the text: it is the letter's content, not the log's)."""
    rest = _FIGURE_TAGS.sub("", rendered)
    if "<" not in rest and ">" not in rest:
        return None
    tag = re.search(r"<\s*/?\s*([A-Za-z][A-Za-z0-9-]*)", rest)
    what = f"an HTML tag <{tag.group(1)[:20]}>" if tag else "a raw angle bracket"
    return (
        f"the answer renders to {what}; answers are plain text and may not produce markup "
        "(only the helpers' figure formatting)"
    )


_BULLET = re.compile(r"^- +(.*)$")
# A figure ending in an abbreviation's full stop ("6,6 mio. kr.") at the end of a sentence takes
# no second full stop.
_DOUBLE_STOP = re.compile(r"\b(kr|mio|mia)\.(</span>)?\.(?!\.)")


def text_to_html(rendered: str) -> Markup:
    """Rendered answer text (already escaped) → <p> and <ul> blocks."""
    rendered = _DOUBLE_STOP.sub(r"\1.\2", rendered)
    html: list[str] = []
    for block in re.split(r"\n[ \t]*\n", rendered.strip()):
        html.extend(_block_to_html(block))
    return Markup("\n".join(html))


def _block_to_html(block: str) -> list[str]:
    """One blank-line-separated block → its <p> and <ul> elements, in order: a bullet line starts a
    list item, an indented line continues it, any other line belongs to the paragraph."""
    html: list[str] = []
    paragraph: list[str] = []
    items: list[list[str]] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        bullet = _BULLET.match(line)
        if bullet:
            _flush_paragraph(paragraph, html)
            items.append([bullet.group(1).strip()])
        elif items and line[:1] in (" ", "\t"):
            items[-1].append(line.strip())
        else:
            _flush_items(items, html)
            paragraph.append(line.strip())
    _flush_paragraph(paragraph, html)
    _flush_items(items, html)
    return html


def _flush_paragraph(paragraph: list[str], html: list[str]) -> None:
    if paragraph:
        html.append("<p>" + " ".join(paragraph) + "</p>")
        paragraph.clear()


def _flush_items(items: list[list[str]], html: list[str]) -> None:
    if items:
        html.append("<ul>" + "".join("<li>" + " ".join(i) + "</li>" for i in items) + "</ul>")
        items.clear()
