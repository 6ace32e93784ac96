"""What a rejected delivery tells the officer who must fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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
