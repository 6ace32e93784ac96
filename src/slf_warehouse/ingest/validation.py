"""Contract checks on a staged file, set-based in SQL, and the typed projection into raw.

Each check is one query over the whole staging table that returns the offending rows with their
line numbers, so a bad file costs one scan per rule rather than a Python loop over its rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from slf_warehouse.contract import ID_CHARACTERS, Column, SourceSpec
from slf_warehouse.ingest.errors import Issue
from slf_warehouse.ingest.reading import StagedFile

MAX_EXAMPLES_PER_RULE = 20

_DK_DECIMAL = r"^-?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$"

# (SQL that is TRUE for a valid non-empty value {v}, what was expected)
_VALID: dict[str, tuple[str, str]] = {
    "text": ("TRUE", ""),
    "id": (
        f"regexp_full_match({{v}}, '{ID_CHARACTERS}')",
        "an id of letters, digits and - _ . / only (no spaces, no look-alike such as U+2010 for '-')",
    ),
    "cost_centre": (r"regexp_full_match({v}, '\d{6}')", "six digits, e.g. 041203"),
    "iso_date": (
        "try_strptime({v}, '%Y-%m-%d') IS NOT NULL AND regexp_full_match({v}, '\\d{4}-\\d{2}-\\d{2}')",
        "a date as yyyy-mm-dd",
    ),
    "dk_date": (
        "try_strptime({v}, '%d-%m-%Y') IS NOT NULL AND regexp_full_match({v}, '\\d{2}-\\d{2}-\\d{4}')",
        "a date as dd-mm-yyyy",
    ),
    "dk_decimal": (
        "regexp_full_match({v}, '" + _DK_DECIMAL + "')",
        "a number with decimal comma, e.g. 1.234.567,89",
    ),
    "integer": (r"regexp_full_match({v}, '\d+')", "a whole number ≥ 0"),
    "answer": (r"regexp_full_match({v}, '[0-4]')", "an answer 0–4, or empty"),
    "month": (r"regexp_full_match({v}, '\d{4}-(0[1-9]|1[0-2])')", "a month as YYYY-MM"),
    "year": (r"regexp_full_match({v}, '\d{4}')", "a year as YYYY"),
}


_CONTROL = r"[\x{00}-\x{08}\x{0A}-\x{1F}\x{7F}]"

# The length above which a well-formed number may not fit its stored type: only those are cast
# (a cast of every amount of the ledger costs more than the rule is worth).
_MAY_NOT_FIT: dict[str, Callable[[Column], int]] = {
    "integer": lambda col: 9,
    "dk_decimal": lambda col: 18 - col.decimals,
}

# What a well-formed number that does not fit its stored type is told.
_FITS: dict[str, Callable[[Column], str]] = {
    "integer": lambda col: "the number is too large: at most 2.147.483.647",
    "dk_decimal": lambda col: (
        f"the number is too large to store: at most {18 - col.decimals} digits before the decimal comma"
    ),
}


def typed_expression(col: Column, cast: str = "CAST") -> str:
    """The SQL that turns the staged text of a column into its stored type (`cast="try_cast"`: NULL
    where it does not fit)."""
    v = f'"{col.name}"'
    strptime = "try_strptime" if cast == "try_cast" else "strptime"
    match col.type:
        case "iso_date":
            return f"{strptime}({v}, '%Y-%m-%d')::DATE"
        case "dk_date":
            return f"{strptime}({v}, '%d-%m-%Y')::DATE"
        case "dk_decimal":
            return f"{cast}(replace(replace({v}, '.', ''), ',', '.') AS DECIMAL(18, {col.decimals}))"
        case "integer" | "answer" | "year":
            return f"{cast}({v} AS INTEGER)"
        case _:
            return v


def stored_type(col: Column) -> str:
    return {
        "iso_date": "DATE",
        "dk_date": "DATE",
        "dk_decimal": f"DECIMAL(18, {col.decimals})",
        "integer": "INTEGER",
        "answer": "INTEGER",
        "year": "INTEGER",
    }.get(col.type, "VARCHAR")


def raw_columns(spec: SourceSpec) -> list[tuple[str, str, str]]:
    """(stored name, stored type, select expression over the staging table) per stored column;
    a pseudonymised column is read from the `pseudonyms` table joined beside the staging table."""
    result = []
    for col in spec.columns:
        if col.name in spec.drop_columns:
            continue
        if col.name in spec.pseudonymise:
            result.append((spec.pseudonymise[col.name], "VARCHAR", "pseudonyms.key"))
        else:
            result.append((col.name, stored_type(col), typed_expression(col)))
    return result


def _examples(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> list[tuple[Any, ...]]:
    return con.execute(sql + f" ORDER BY _line LIMIT {MAX_EXAMPLES_PER_RULE}", params or []).fetchall()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class _Rule:
    column: str
    bad: str  # SQL that is TRUE for an offending row
    message: str  # "" for a missing value (the message depends on the row)


def _column_rules(col: Column, check_text: bool) -> list[_Rule]:
    c = f'"{col.name}"'
    rules = []
    if col.required:
        rules.append(_Rule(col.name, f"{c} IS NULL", ""))
    if col.type == "code":
        codes = ", ".join(_literal(code) for code in col.codes)
        rules.append(
            _Rule(
                col.name,
                f"{c} IS NOT NULL AND {c} NOT IN ({codes})",
                f"unknown code; expected one of {', '.join(col.codes)}",
            )
        )
        return rules
    valid, expected = _VALID[col.type]
    if valid != "TRUE":
        rules.append(
            _Rule(
                col.name,
                f"{c} IS NOT NULL AND NOT coalesce({valid.replace('{v}', c)}, FALSE)",
                f"expected {expected}",
            )
        )
    if check_text and col.type in ("text", "id"):
        # NUL and ESC were stored and reached the PDF; a line break inside a quoted value shifts
        # every later line number. Tab is allowed.
        rules.append(
            _Rule(
                col.name,
                f"{c} IS NOT NULL AND regexp_matches({c}, '{_CONTROL}')",
                "a control character (NUL, ESC, a line break, … U+0000–U+001F or U+007F) in the "
                "value: remove it",
            )
        )
    if (fits := _FITS.get(col.type)) is not None:
        # The format rule passed: the number is well formed, but may not fit its stored type (a
        # 20-digit amount, 99999999999 participants crashed the load with no line).
        rules.append(
            _Rule(
                col.name,
                f"length({c}) > {_MAY_NOT_FIT[col.type](col)} "
                f"AND coalesce({valid.replace('{v}', c)}, FALSE) "
                f"AND {typed_expression(col, 'try_cast')} IS NULL",
                fits(col),
            )
        )
    return rules


def _period_rule(staged: StagedFile) -> list[_Rule]:
    spec = staged.spec
    if not (staged.period and spec.period_column):
        return []
    col = next(c for c in spec.columns if c.name == spec.period_column)
    c = f'"{col.name}"'
    as_period = {"dk_date": f"strftime(try_strptime({c}, '%d-%m-%Y'), '%Y-%m')", "month": c, "year": c}[
        col.type
    ]
    return [
        _Rule(
            col.name,
            f"{c} IS NOT NULL AND {as_period} IS NOT NULL AND {as_period} <> {_literal(staged.period)}",
            f"belongs to another period than the file name says ({staged.period})",
        )
    ]


def _row_rules(spec: SourceSpec) -> list[_Rule]:
    """The contract's rules across a row's columns (a period that ends before it starts), over the
    typed values; a value that is missing or malformed leaves the rule to its column's own rules."""
    typed = {col.name: typed_expression(col, "try_cast") for col in spec.columns}
    return [
        _Rule(column, f"NOT coalesce({valid.format(**typed)}, TRUE)", message)
        for column, valid, message in spec.row_rules
    ]


def _rule_issues(con: duckdb.DuckDBPyConnection, staged: StagedFile) -> list[Issue]:
    """All column, row and period rules in one scan; examples are fetched only for rules that found any."""
    rules = (
        [r for col in staged.spec.columns for r in _column_rules(col, staged.check_text)]
        + _row_rules(staged.spec)
        + _period_rule(staged)
    )
    counts = con.execute(
        "SELECT " + ", ".join(f"count_if({r.bad})" for r in rules) + f" FROM {staged.table}"
    ).fetchall()[0]
    issues = []
    # A source with personal data is checked in a process of its own, which hands back no value
    # (errors.without_values); the value is not even selected there.
    personal = staged.spec.personal_data
    for rule, count in zip(rules, counts, strict=True):
        if not count:
            continue
        value_sql = "NULL" if personal else f'"{rule.column}"'
        for line, value in _examples(con, f"SELECT _line, {value_sql} FROM {staged.table} WHERE {rule.bad}"):
            if rule.message:
                issues.append(Issue(staged.path.name, line, rule.column, value, rule.message))
            else:
                issues.append(
                    Issue(
                        staged.path.name,
                        line,
                        rule.column,
                        None if personal else "",
                        _missing_message(con, staged.table, line),
                    )
                )
    return issues


def _missing_message(con: duckdb.DuckDBPyConnection, table: str, line: int) -> str:
    found = con.execute(f"SELECT * EXCLUDE (_line) FROM {table} WHERE _line = ?", [line]).fetchall()
    filled = found[0] if found else None
    if filled is not None and sum(v is not None for v in filled) <= 2:
        return "required value is missing: this looks like a summary or blank row; remove it from the file"
    return "required value is missing"


def _duplicate_issues(con: duckdb.DuckDBPyConnection, staged: StagedFile) -> list[Issue]:
    key = staged.spec.unique_key
    if not key:
        return []
    cols = ", ".join(f'"{k}"' for k in key)
    value = "NULL" if staged.spec.personal_data else f"concat_ws(' / ', {cols})"
    rows = con.execute(
        f"SELECT min(_line), list(_line ORDER BY _line), {value} FROM {staged.table} "
        f"GROUP BY {cols} HAVING count(*) > 1 ORDER BY 1 LIMIT {MAX_EXAMPLES_PER_RULE}"
    ).fetchall()
    return [
        Issue(
            staged.path.name,
            lines[1],
            "/".join(key),
            value,
            f"duplicate key: the same value is on line {first}",
        )
        for first, lines, value in rows
    ]


def _reference_issues(
    con: duckdb.DuckDBPyConnection, staged: StagedFile, known: dict[str, list[str]]
) -> list[Issue]:
    """Values that must be one of another source's (spec.references), checked when that one is loaded."""
    issues = []
    for column, values in known.items():
        source, other = staged.spec.references[column]
        for (line,) in _examples(
            con,
            f'SELECT _line FROM {staged.table} WHERE "{column}" IS NOT NULL AND '
            f'"{column}" NOT IN (SELECT unnest(?::VARCHAR[]))',
            [values],
        ):
            issues.append(
                Issue(staged.path.name, line, column, None, f"not a known {other} (none in {source})")
            )
    return issues


def validate(
    con: duckdb.DuckDBPyConnection, staged: StagedFile, known: dict[str, list[str]] | None = None
) -> list[Issue]:
    """The file's issues; `known`: the values of loaded sources that spec.references names."""
    issues = list(staged.warnings)
    if staged.rows == 0:
        issues.append(Issue(staged.path.name, None, None, None, "the file has a header but no rows"))
    issues.extend(_rule_issues(con, staged))
    issues.extend(_duplicate_issues(con, staged))
    issues.extend(_reference_issues(con, staged, known or {}))
    return issues
