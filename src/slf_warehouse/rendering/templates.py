"""The report templates: where they are, the Jinja2 environment they render in, their stylesheets."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from markupsafe import Markup

if TYPE_CHECKING:
    from jinja2 import Environment


def default_templates_dir() -> Path:
    """The project's ``report_templates/`` folder: the letters' and the quality report's templates,
    their stylesheets, and everything WeasyPrint may fetch (``fetcher.ProjectFilesFetcher``)."""
    from slf_warehouse.settings import project_dir

    return project_dir() / "report_templates"


@functools.lru_cache(maxsize=8)
def template_environment(templates_dir: Path, *, sandboxed: bool = False) -> Environment:
    """A Jinja2 environment over ``templates_dir``: autoescaped, an undefined name an error, block
    tags leaving no blank lines, Danish dates as the ``dato`` filter. ``sandboxed``: Jinja2's
    immutable sandbox.

    One per folder and kind in a process, so each template is compiled once (25-40 ms a letter or
    report); Jinja2 compiles it again when its file changes (``auto_reload``). Shared: callers must
    not change it."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from slf_warehouse.rendering.formatting import format_date

    kind = ImmutableSandboxedEnvironment if sandboxed else Environment
    env = kind(
        loader=FileSystemLoader(str(templates_dir)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dato"] = format_date
    return env


def inline_stylesheets(templates_dir: Path, names: Sequence[str]) -> Markup:
    """The project's own stylesheets, joined to be inlined in the HTML so it stands alone."""
    return Markup("\n".join((Path(templates_dir) / name).read_text(encoding="utf-8") for name in names))
