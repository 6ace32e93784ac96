"""What changed since the last edition: every figure's value kept beside the letter, and compared.

Rendering writes ``<stem>.figures.json`` next to the PDF: each figure's exact value (a table
figure's total and every row), its text as the letter prints it, and the warehouse version and
run it came from. When that file exists from an earlier rendering in the same folder, the new
values are compared with it before it is replaced: the figures whose value differs (a table figure:
any row added, removed or changed) are listed with old and new value in the result and in the
letter's appendix ("Ændringer siden sidste udgave"). Row counts alone do not count as a change.

The sidecar is written with sorted keys and no timestamp of its own, so the same figures give
the same bytes; the letter names the previous edition by its warehouse version, which the sidecar
records, so re-rendering with unchanged values gives an unchanged letter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from slf_warehouse.answers.exhibits import key_label
from slf_warehouse.answers.figures import FigureResult, FigureTable
from slf_warehouse.file_modes import write_private

SIDECAR_SUFFIX = ".figures.json"
FORMAT = 1


def sidecar_path(out_dir: Path, stem: str) -> Path:
    return Path(out_dir) / f"{stem}{SIDECAR_SUFFIX}"


def _json_value(value: Any) -> Any:
    """Exact and comparable: Decimals as text (no float rounding), dates as ISO."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _group(f: FigureResult, keys: Mapping[str, Any]) -> str:
    """A table row's name as the appendix writes it ("1. kvt. 2022", "OPSPARING · Centralt …")."""
    return " · ".join(key_label(v, k, f.spec, {}) for k, v in keys.items())


def figure_record(f: FigureResult) -> dict[str, Any]:
    record: dict[str, Any] = {
        "label": f.spec.label,
        "unit": f.spec.unit,
        "value": _json_value(f.value),
        "text": f.text,
        "exact": f.result.total.exact if isinstance(f.result, FigureTable) else f.result.exact,
        "rows": f.rows,
    }
    if isinstance(f.result, FigureTable):
        record["parts"] = [
            {
                "group": _group(f, r.keys),
                "keys": {k: _json_value(v) for k, v in r.keys.items()},
                "value": _json_value(r.value.value),
                "text": r.value.text,
                "exact": r.value.exact,
            }
            for r in f.result.rows
        ]
    return record


def sidecar_document(
    inquiry_file: str,
    parameters: dict[str, Any],
    figures: dict[str, FigureResult],
    warehouse: str | dict[str, Any],
    run_info: dict[str, Any] | None,
    *,
    inquiry_sha256: str = "",
    official: bool = False,
) -> dict[str, Any]:
    """``warehouse``: the reader's ``describe()`` (engine and file, or database and schema), or a
    file name."""
    info = {
        k: _json_value(v) if not isinstance(v, (list, tuple, set)) else sorted(str(x) for x in v)
        for k, v in (run_info or {}).items()
    }
    source = {"file": warehouse} if isinstance(warehouse, str) else dict(warehouse)
    return {
        "format": FORMAT,
        "inquiry": inquiry_file,
        "inquiry_sha256": inquiry_sha256,  # the exact inquiry text the figures were answered for
        "official": official,  # the inquiry file is one of the project's (inquiries/)
        "parameters": {k: _json_value(v) for k, v in parameters.items()},
        "warehouse": {**source, "version": info.get("version"), "run_id": info.get("run_id")},
        "run_info": info,
        "figures": {name: figure_record(f) for name, f in figures.items()},
    }


def sidecar_text(document: dict[str, Any]) -> str:
    """The sidecar's exact text (the archival PDF embeds these very bytes)."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_sidecar(path: Path, document: dict[str, Any]) -> None:
    write_private(path, sidecar_text(document))


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The previous edition's record, or None when there is none (or it cannot be read as one)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or not isinstance(document.get("figures"), dict)
    ):
        return None
    return document


@dataclass(frozen=True)
class PartChange:
    group: str
    old: str | None  # exact text; None: the row is new
    new: str | None  # None: the row is gone


@dataclass(frozen=True)
class FigureChange:
    name: str
    label: str
    old: str | None  # exact text of the previous value; None: the figure is new in this edition
    new: str | None  # None: the figure is no longer used
    old_value: Any = None  # as recorded (Decimal as text)
    new_value: Any = None
    parts: tuple[PartChange, ...] = ()


@dataclass(frozen=True)
class Changes:
    """The comparison with the previous edition (``previous`` is None for a first edition)."""

    previous: dict[str, Any] | None
    figures: tuple[FigureChange, ...] = ()
    parameters_changed: bool = False

    @property
    def first_edition(self) -> bool:
        return self.previous is None

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.figures]

    @property
    def previous_version(self) -> str | None:
        if self.previous is None:
            return None
        return (self.previous.get("warehouse") or {}).get("version")


def _part_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[PartChange, ...]:
    def identity(part: dict[str, Any]) -> str:  # the group's values, not its printed name
        return json.dumps(part.get("keys", part.get("group")), sort_keys=True, ensure_ascii=False)

    old_parts = {identity(p): p for p in old.get("parts") or []}
    new_parts = {identity(p): p for p in new.get("parts") or []}
    changes = []
    for key in [*new_parts, *(k for k in old_parts if k not in new_parts)]:
        o, n = old_parts.get(key), new_parts.get(key)
        if o is not None and n is not None and o.get("value") == n.get("value"):
            continue
        part = n if n is not None else old_parts[key]
        changes.append(PartChange(part["group"], o and o.get("exact"), n and n.get("exact")))
    return tuple(changes)


def compare(previous: dict[str, Any] | None, current: dict[str, Any]) -> Changes:
    """The figures whose value differs between two sidecar documents, in the current order."""
    if previous is None:
        return Changes(None)
    old_figures, new_figures = previous["figures"], current["figures"]
    changed = []
    for name in [*new_figures, *(n for n in old_figures if n not in new_figures)]:
        old, new = old_figures.get(name), new_figures.get(name)
        if old is None or new is None:
            record = new or old
            changed.append(
                FigureChange(
                    name,
                    record.get("label", name),
                    old and old.get("exact"),
                    new and new.get("exact"),
                    old and old.get("value"),
                    new and new.get("value"),
                )
            )
            continue
        parts = _part_changes(old, new) if ("parts" in old or "parts" in new) else ()
        if old.get("value") != new.get("value") or parts:
            changed.append(
                FigureChange(
                    name,
                    new.get("label", name),
                    old.get("exact"),
                    new.get("exact"),
                    old.get("value"),
                    new.get("value"),
                    parts,
                )
            )
    return Changes(previous, tuple(changed), previous.get("parameters") != current.get("parameters"))
