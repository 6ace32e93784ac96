"""What an answer template may not contain, checked when the inquiry loads (before any rendering).

Answers are plain text: everything they print is escaped. These constructs would print markup
unescaped, or reach outside the answer, and are refused with the template line they are on:

- a filter not on the list in ``templating.ALLOWED_FILTERS`` (``safe``, ``urlize``, ``xmlattr``,
  ``tojson`` …), as ``{{ x | safe }}`` or ``{% filter safe %}``;
- ``{% autoescape %}`` (switching escaping off);
- ``{% include %}``, ``{% import %}``, ``{% from … import %}``, ``{% extends %}``;
- the name ``Markup`` (there is no such helper; named here so the message says why).

Only the parse tree is looked at here, never a compiled template: compiling folds constant
expressions, so ``{{ "x" * 10**9 }}`` or ``"x" | center(10**9)`` would be evaluated while the inquiry
loads, outside the rendering process's limits (``sandbox_run.py``). For the same reason the names a
template uses are collected from the tree (``names_used``), not with ``jinja2.meta``.

This is the early, precise refusal. The rendered text is checked again whatever it was made with
(``templating.markup_problem``), so a construct missing from this list still cannot put markup
into the letter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jinja2 import nodes

from slf_warehouse.answers.templating import ALLOWED_FILTERS

_WHY_FILTER = {
    "safe": "it prints its text as HTML, unescaped",
    "urlize": "it turns text into HTML links",
    "xmlattr": "it writes HTML attributes",
    "tojson": "it prints unescaped JSON",
    "pprint": "it prints Python objects' internals",
}
_REFUSED_NODES: tuple[tuple[type[nodes.Node], str], ...] = (
    (
        nodes.ScopedEvalContextModifier,
        "{% autoescape %} is not allowed: answers are always escaped plain text",
    ),
    (nodes.EvalContextModifier, "{% autoescape %} is not allowed: answers are always escaped plain text"),
    (nodes.Include, "{% include %} is not allowed in an answer"),
    (nodes.Import, "{% import %} is not allowed in an answer"),
    (nodes.FromImport, "{% from … import %} is not allowed in an answer"),
    (nodes.Extends, "{% extends %} is not allowed in an answer"),
    (nodes.MarkSafe, "marking text as safe markup is not allowed in an answer"),
    (nodes.MarkSafeIfAutoescape, "marking text as safe markup is not allowed in an answer"),
)


# Names Jinja itself provides inside loops and macros.
_JINJA_NAMES = frozenset({"loop", "caller", "varargs", "kwargs", "self", "super"})


def names_used(ast: nodes.Template, provided: Iterable[str]) -> list[str]:
    """The names a template reads that it does not set itself and that are not ``provided`` (the
    environment's globals): the figures and context names it needs. Scoping is not followed (a name
    set anywhere counts as set); a name read before it is set still fails when rendering."""
    loaded: set[str] = set()
    stored: set[str] = set()
    for node in ast.find_all(nodes.Name):
        (loaded if node.ctx == "load" else stored).add(node.name)
    return sorted(loaded - stored - set(provided) - _JINJA_NAMES)


@dataclass(frozen=True)
class TemplateProblem:
    lineno: int  # line in the answer template (1 = its first line)
    message: str


def refused_constructs(ast: nodes.Template) -> list[TemplateProblem]:
    """Every refused construct in a parsed answer template, in template order."""
    problems = []
    for node in ast.find_all(nodes.Node):
        for kind, message in _REFUSED_NODES:
            if isinstance(node, kind):
                problems.append(TemplateProblem(node.lineno, message))
        if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
            why = _WHY_FILTER.get(node.name, "it is not one of the filters an answer may use")
            problems.append(
                TemplateProblem(
                    node.lineno,
                    f"filter '{node.name}' is not allowed: {why} "
                    f"(allowed: {', '.join(sorted(ALLOWED_FILTERS))})",
                )
            )
        if isinstance(node, nodes.Name) and node.name == "Markup":
            problems.append(TemplateProblem(node.lineno, "'Markup' is not available: answers are plain text"))
    return sorted(problems, key=lambda p: p.lineno)
