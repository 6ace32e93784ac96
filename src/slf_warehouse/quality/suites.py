"""The expectation suites in expectations/: reading and checking the files, without Great Expectations.

Each file is Great Expectations' own suite serialisation (`name`, `expectations` with `type` +
`kwargs` + optional `meta`, suite `meta`), plus two project conventions:

- `meta.batch_query` (suite level): the DuckDB query whose result is the batch the suite validates,
  a string or a list of lines (joined with newlines, so long queries stay reviewable).
- `meta.row_id_columns` (suite level, optional): batch columns that identify a row (e.g. the
  delivered file and line). Failed checks report them for a few offending rows. Never personal data;
  a suite over personal data (`is_personal_suite`) reports no rows at all, only counts.
- `meta.severity` (expectation level): `"error"` (the default) fails the quality gate; `"warning"`
  is reported but does not. It is passed on to GE as the expectation's native severity
  (`critical` / `warning`) so Data Docs and GE actions see the same.

This module does not import great_expectations, so it is cheap to import and to test.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEVERITIES = ("error", "warning")
# GE 1.x native severity for each of ours.
GE_SEVERITY = {"error": "critical", "warning": "warning"}
_FROM_GE_SEVERITY = {"critical": "error", "warning": "warning"}

# Columns that hold personal data (or its pseudonym). A batch containing one is refused: GE would
# copy unexpected values into its validation results and Data Docs, which are shared widely.
PERSONAL_DATA_COLUMNS = frozenset({"medarbejdernr", "navn", "medarbejder_key", "employee_key"})

# The one rule for which suites are over personal data: person- or respondent-level rows, or money and
# counts derived from them for groups that can be one person (rpt_staff_by_role_month has a role with
# headcount 1). Every source and model of payroll or survey data has one of these words in its name
# (raw.loen, stg_payroll__lines, int_staff_roster, fct_payroll, rpt_survey_fit, ...). Such a suite's
# results carry counts, the rule and the column, never a row's values or its row ids: in GE's own
# validation files and Data Docs, quality_results.json, audit.expectation_results and the PDF report.
PERSONAL_SUITE_WORDS = ("loen", "payroll", "staff", "social_kapital", "survey")

_EXPECTATION_KEYS = {"type", "kwargs", "meta", "id", "severity", "notes", "description", "rendered_content"}
_SUITE_KEYS = {"name", "expectations", "meta", "id", "notes", "suite_parameters"}


class SuiteFileError(ValueError):
    """A suite file that cannot be used as it stands; the message names the file and the problem."""


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    path: Path
    batch_query: str
    expectations: tuple[dict[str, Any], ...]  # as GE's ExpectationConfiguration(**dict) takes them
    meta: dict[str, Any]
    notes: Any = None

    @property
    def row_id_columns(self) -> list[str]:
        return list(self.meta.get("row_id_columns") or [])

    @property
    def personal(self) -> bool:
        """Over personal data (see PERSONAL_SUITE_WORDS): by its name or by what its batch reads."""
        return is_personal_suite(self.name, self.batch_query)

    @property
    def layer(self) -> str:
        return str(self.meta.get("layer") or self.name.split("_", 1)[0])

    def ge_suite_dict(self) -> dict[str, Any]:
        """The suite as GE's ExpectationSuite(**dict) takes it (batch query kept in meta)."""
        meta = dict(self.meta)
        meta["batch_query"] = self.batch_query
        suite: dict[str, Any] = {
            "name": self.name,
            "expectations": [dict(e) for e in self.expectations],
            "meta": meta,
        }
        if self.notes is not None:
            suite["notes"] = self.notes
        else:  # Data Docs shows a suite's notes (markdown) on its page: say what the batch is.
            description = str(self.meta.get("description") or "")
            suite["notes"] = f"{description}\n\nBatch (DuckDB):\n\n```sql\n{self.batch_query}\n```".strip()
        return suite


def is_personal_suite(name: str, batch_query: str = "") -> bool:
    """Whether a suite's results must carry no row values (its name, or its batch query when known,
    names a payroll or survey source or model)."""
    text = f"{name}\n{batch_query}".lower()
    return any(word in text for word in PERSONAL_SUITE_WORDS)


def default_suites_dir() -> Path:
    from slf_warehouse.settings import project_dir

    return project_dir() / "expectations"


def severity_of(expectation: dict[str, Any]) -> str:
    """`error` or `warning` for an expectation as stored in a suite file (or as given to GE)."""
    meta = expectation.get("meta") or {}
    if "severity" in meta:
        return str(meta["severity"])
    native = expectation.get("severity")
    if native is not None:
        return _FROM_GE_SEVERITY.get(str(getattr(native, "value", native)), "error")
    return "error"


def _check_expectation(path: Path, index: int, raw: object) -> dict[str, Any]:
    where = f"{path.name}: expectation {index + 1}"
    if not isinstance(raw, dict):
        raise SuiteFileError(f"{where} is not an object")
    unknown = set(raw) - _EXPECTATION_KEYS
    if unknown:
        raise SuiteFileError(
            f"{where} has unknown keys {sorted(unknown)} (allowed: {sorted(_EXPECTATION_KEYS)})"
        )
    kind = raw.get("type")
    if not isinstance(kind, str) or not kind.startswith("expect_"):
        raise SuiteFileError(f"{where}: 'type' must name a GE expectation (expect_...), got {kind!r}")
    if not isinstance(raw.get("kwargs"), dict):
        raise SuiteFileError(f"{where} ({kind}): 'kwargs' must be an object")
    meta = raw.get("meta") or {}
    if not isinstance(meta, dict):
        raise SuiteFileError(f"{where} ({kind}): 'meta' must be an object")
    severity = meta.get("severity", "error")
    if severity not in SEVERITIES:
        raise SuiteFileError(f"{where} ({kind}): meta.severity must be one of {SEVERITIES}, got {severity!r}")
    native = raw.get("severity")
    if native is not None and str(native) not in _FROM_GE_SEVERITY:
        raise SuiteFileError(
            f"{where} ({kind}): severity must be one of {sorted(_FROM_GE_SEVERITY)}, got {native!r}"
        )
    if native is not None and "severity" in meta and _FROM_GE_SEVERITY.get(str(native)) != severity:
        raise SuiteFileError(f"{where} ({kind}): severity {native!r} contradicts meta.severity {severity!r}")
    expectation = dict(raw)
    expectation["meta"] = dict(meta)
    expectation["severity"] = GE_SEVERITY[severity_of(expectation)]
    return expectation


def load_suite(path: Path) -> SuiteSpec:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteFileError(f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SuiteFileError(f"{path.name}: a suite file holds one JSON object")
    unknown = set(data) - _SUITE_KEYS
    if unknown:
        raise SuiteFileError(f"{path.name} has unknown keys {sorted(unknown)}")
    name = data.get("name")
    if name != path.stem:
        raise SuiteFileError(f"{path.name}: 'name' must equal the file name without .json, got {name!r}")
    meta = data.get("meta")
    if not isinstance(meta, dict):
        raise SuiteFileError(f"{path.name}: 'meta' with a 'batch_query' is required")
    query = _batch_query(path, meta)
    _check_row_id_columns(path, meta)
    expectations = data.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise SuiteFileError(f"{path.name}: 'expectations' must be a non-empty list")
    checked = tuple(_check_expectation(path, i, e) for i, e in enumerate(expectations))
    return SuiteSpec(
        name=name,
        path=path,
        batch_query=query,
        expectations=checked,
        meta={k: v for k, v in meta.items() if k != "batch_query"},
        notes=data.get("notes"),
    )


def _batch_query(path: Path, meta: dict[str, Any]) -> str:
    """meta.batch_query: a string, or a list of lines joined."""
    query = meta.get("batch_query")
    if isinstance(query, list) and query and all(isinstance(line, str) for line in query):
        query = "\n".join(query)
    if not isinstance(query, str) or not query.strip():
        raise SuiteFileError(
            f"{path.name}: meta.batch_query must be a DuckDB query (a string or a list of lines)"
        )
    return query


def _check_row_id_columns(path: Path, meta: dict[str, Any]) -> None:
    """meta.row_id_columns: column names, none of them personal data (they are shown with failures)."""
    id_columns = meta.get("row_id_columns", [])
    if not isinstance(id_columns, list) or not all(isinstance(c, str) and c for c in id_columns):
        raise SuiteFileError(f"{path.name}: meta.row_id_columns must be a list of column names")
    personal = sorted(c for c in id_columns if c.lower() in PERSONAL_DATA_COLUMNS)
    if personal:
        raise SuiteFileError(f"{path.name}: meta.row_id_columns names personal data ({', '.join(personal)})")


def load_suites(suites_dir: Path, names: Sequence[str] | None = None) -> list[SuiteSpec]:
    """The suites in suites_dir, sorted by name; `names` selects some (names or globs such as `raw_*`)."""
    if not suites_dir.is_dir():
        raise SuiteFileError(f"no expectation suites folder at {suites_dir}")
    files = {p.stem: p for p in sorted(suites_dir.glob("*.json"))}
    if not files:
        raise SuiteFileError(f"no suite files (*.json) in {suites_dir}")
    if names is None:
        chosen = list(files)
    else:
        if isinstance(names, str):
            names = [names]
        chosen = []
        for pattern in names:
            matches = [n for n in files if fnmatch.fnmatchcase(n, pattern)]
            if not matches:
                raise SuiteFileError(
                    f"no suite named {pattern!r} in {suites_dir}; there are: {', '.join(files)}"
                )
            chosen += [m for m in matches if m not in chosen]
    return [load_suite(files[name]) for name in sorted(chosen)]
