"""What a rejected delivery tells the officer who must fix it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Issue:
    file: str
    line: int | None  # as a person opens the file: the header is line 1 (a sheet's row number for XLSX)
    column: str | None
    value: str | None
    message: str
    severity: str = "error"  # "error" rejects the file; "warning" is recorded only

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column {self.column}"
        value = f" (value {self.value!r})" if self.value is not None else ""
        return f"{where}: {self.message}{value}"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# A header name shown even for a source with personal data: shaped like a column name. A file whose
# first line is a data row has names and numbers where the header should be.
_COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def header_name(name: str, position: int, personal_data: bool) -> str:
    """How an issue names a header field: by its name, or, for a source with personal data whose
    header field does not look like a column name, by its position (`field 3`)."""
    if not personal_data or _COLUMN_NAME.fullmatch(name):
        return name
    return f"field {position}"


def without_values(issues: list[Issue], column_names: list[str]) -> list[Issue]:
    """The issues of a file with personal data as they may leave the process that read it: file, line,
    column and the kind of problem, never a value; a column is a contract column or a position."""
    return [
        replace(
            i,
            value=None,
            column=i.column
            if i.column is None
            or i.column in column_names
            or _COLUMN_NAME.fullmatch(i.column)
            or re.fullmatch(r"field \d+", i.column)
            else "field ?",
        )
        for i in issues
    ]


class FileRejected(Exception):
    """A delivery with at least one error: nothing of it is loaded."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        shown = "\n  ".join(str(i) for i in errors[:10])
        more = f"\n  … and {len(errors) - 10} more" if len(errors) > 10 else ""
        super().__init__(f"{len(errors)} error(s):\n  {shown}{more}")


class ConfigurationError(Exception):
    """A setting the load cannot do without is missing (e.g. the pseudonymisation key)."""
