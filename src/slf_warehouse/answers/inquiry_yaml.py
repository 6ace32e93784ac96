"""An inquiry file as YAML, before it is an inquiry: the parser, and how its problems are reported.

Apart from ``inquiry.py`` (the model, its templates and the holiday calendar: about 0,3 s to
import), so what can be said of a file without them is said at once: a misspelt inquiry name
(``published.resolve_inquiry``), a file that is not UTF-8 or not valid YAML (``slf inquiry check``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


class InquiryError(ValueError):
    """An inquiry file is not valid; the message names the file and the field."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an inquiry file: its line in the file (None: not placed) and the message
    (which names the file, and the line when known)."""

    line: int | None
    message: str


# libyaml's parser (PyYAML's wheels carry it): the same documents and marks as the pure-Python one,
# about 15 times faster. An inquiry is parsed several times per letter (values, then lines for errors).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """``text`` as plain data (mappings, lists, strings, numbers, dates): ``yaml.safe_load``'s result."""
    return yaml.load(text, Loader=_YAML_LOADER)


def compose_yaml(text: str) -> Any:
    """``text``'s node tree, with each node's place in the file (``start_mark``)."""
    return yaml.compose(text, Loader=_YAML_LOADER)
