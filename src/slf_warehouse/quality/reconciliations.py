"""Reconciliations: the cross-source rules of contracts/sources.md, computed in SQL on the build.

Each reconciliation compares two sides (e.g. the ledger's programme salaries and the payroll of the
same month) and writes one row per period or key to ``audit.reconciliations``:

- ``salaries_vs_payroll`` (error), per month ``YYYY-MM``: the ledger's programme salaries
  (projekt SLF, main type 1) against the payroll (all pay components); within 0,5 % of the payroll.
  A month whose payroll pays fewer than five people is checked all the same, but its amounts are
  not stored (NULL) and ``detail`` says why: that is the pay of one or two people.
- ``spending_within_allocation`` (warning), per ``SOURCE budget-year``: the programme's expense
  postings against the allocations; spent ≤ allocated.
- ``apmf_donation_received`` (warning), per budget year and ``i alt``: the APMF income postings
  (sign turned) against the APMF allocations; equal to the øre.
- ``apmf_not_on_salaries`` (error), ``antal`` and ``beløb``: APMF postings of main type 1 in the
  whole ledger (any projekt) against 0; must be 0.

Severity: an ``error`` row that fails stops publication at the quality gate (``gate.py``), a
``warning`` is reported and published. Why:

- Ledger salaries and payroll come from two systems that must agree; a gap over 0,5 % means one of
  them is wrong (a posting on the wrong project, a missing or doubled payroll file), and every
  staff-cost figure in an answer would be wrong with it. A month delivered by only one of the two
  sources (payroll usually arrives before the ledger closes) is a warning, not an error: it is a
  delivery still to come, not a contradiction.
- Spending above an allocation is a fact to explain (an overspend, or an allocation not yet
  registered), not an error in the data: the same rule as the advisory GE check on
  ``rpt_budget_vs_actual``.
- The donation arriving in another budget year than its allocation (or not yet) is timing, which
  the report shows; a wrong amount shows up here too, as a warning to look into.
- APMF money on salaries breaks the donation's terms (contract rule): never published silently.

``passed`` is whether the row is within tolerance; a failed warning row has ``passed = false`` and
``severity = 'warning'``. ``detail`` names offending ledger lines (file and line) where there are
some; never personal data (no employee keys, no posting texts).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from slf_warehouse.quality.target import as_target, db_errors, table_exists

log = logging.getLogger(__name__)

SALARY_TOLERANCE = Decimal("0.005")  # 0,5 % of the payroll total of the month
# Money of fewer people than this is never shown outside the warehouse (one person's pay, or two
# people's where one knows their own): such a month is checked, its amounts are left out.
MIN_PEOPLE_SHOWN = 5
EXAMPLES = 5

RECONCILIATIONS_DDL = """
CREATE TABLE IF NOT EXISTS audit.reconciliations (
    run_id VARCHAR NOT NULL,
    check_name VARCHAR NOT NULL,
    key VARCHAR NOT NULL,            -- the period or key compared (month, source and year, ...)
    left_label VARCHAR,
    left_value DECIMAL(18, 2),
    right_label VARCHAR,
    right_value DECIMAL(18, 2),
    difference DECIMAL(18, 2),       -- left_value - right_value
    tolerance DECIMAL(18, 2),        -- the largest difference that passes, in the values' unit
    tolerance_rule VARCHAR,          -- the rule in words
    passed BOOLEAN NOT NULL,
    severity VARCHAR NOT NULL,       -- error | warning
    detail VARCHAR,                  -- offending ledger lines, or why the row could not be computed
    checked_at TIMESTAMP NOT NULL    -- UTC
)"""

TITLES = {
    "salaries_vs_payroll": "Lønposteringer i regnskabet mod lønsystemet",
    "spending_within_allocation": "Forbrug mod bevilling pr. finansieringskilde og budgetår",
    "apmf_donation_received": "Modtaget donation mod APMF-bevillinger",
    "apmf_not_on_salaries": "A.P. Møller Fondens midler bruges ikke til løn",
}
CHECKS = tuple(TITLES)


@dataclass
class Reconciliation:
    check: str
    key: str
    left_label: str
    left_value: Decimal | None
    right_label: str
    right_value: Decimal | None
    difference: Decimal | None
    tolerance: Decimal | None
    tolerance_rule: str
    passed: bool
    severity: str  # "error" or "warning"
    detail: str | None = None

    def __post_init__(self) -> None:  # as stored: DECIMAL(18, 2)
        for name in ("left_value", "right_value", "difference", "tolerance"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, Decimal(value).quantize(Decimal("0.01")))

    @property
    def title(self) -> str:
        return TITLES.get(self.check, self.check)

    @property
    def blocking(self) -> bool:
        return not self.passed and self.severity == "error"

    def describe(self) -> str:
        """One line for a failed reconciliation (gate messages, logs)."""

        def num(v: Decimal | None) -> str:
            return "?" if v is None else f"{v:,.2f}"

        text = (
            f"{self.check} [{self.key}]: {self.left_label} {num(self.left_value)} vs {self.right_label} "
            f"{num(self.right_value)}, difference {num(self.difference)} ({self.tolerance_rule})"
        )
        return text + (f"; {self.detail}" if self.detail else "")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("left_value", "right_value", "difference", "tolerance"):
            d[k] = None if d[k] is None else str(d[k])
        return d


def _d(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(value).quantize(Decimal("0.01"))


def _lines(rows: list[tuple[str, int]], total: int) -> str | None:
    if not rows:
        return None
    shown = ", ".join(f"{f} linje {line}" for f, line in rows[:EXAMPLES])
    return shown + (f" (og {total - EXAMPLES} flere)" if total > EXAMPLES else "")


# ------------------------------------------------------------------------------------------------
# The four checks. Each returns its rows; a query that cannot run raises one of db_errors().
# The SQL runs on DuckDB and on PostgreSQL as written (target.py maps the schemas).
# ------------------------------------------------------------------------------------------------


def salaries_vs_payroll(con: duckdb.DuckDBPyConnection) -> list[Reconciliation]:
    rows = con.execute("""
        WITH ledger_files AS (SELECT DISTINCT _period AS period FROM raw.posteringer),
        payroll_files AS (SELECT DISTINCT _period AS period FROM raw.loen),
        ledger AS (
            SELECT left(CAST(posting_month AS VARCHAR), 7) AS period, sum(amount_dkk) AS amount,
                   count(*) AS postings
            FROM marts.fct_programme_postings WHERE main_type = 1 GROUP BY 1),
        payroll AS (
            SELECT left(CAST(payroll_month AS VARCHAR), 7) AS period, sum(cost_dkk) AS amount,
                   count(DISTINCT employee_key) AS people
            FROM marts.fct_payroll GROUP BY 1),
        months AS (
            SELECT period FROM ledger_files UNION SELECT period FROM payroll_files
            UNION SELECT period FROM ledger UNION SELECT period FROM payroll)
        SELECT m.period, ledger.amount, ledger.postings, payroll.amount, coalesce(payroll.people, 0),
               m.period IN (SELECT period FROM ledger_files), m.period IN (SELECT period FROM payroll_files)
        FROM months AS m
        LEFT JOIN ledger ON ledger.period = m.period
        LEFT JOIN payroll ON payroll.period = m.period
        WHERE m.period IS NOT NULL
        ORDER BY m.period""").fetchall()
    out = []
    for period, ledger, postings, payroll, people, has_ledger, has_payroll in rows:
        left, right = _d(ledger), _d(payroll)
        difference = left - right
        tolerance = (abs(right) * SALARY_TOLERANCE).quantize(Decimal("0.01"))
        rule = "højst 0,5 % af lønsummen"
        if has_ledger and has_payroll:
            passed, severity = abs(difference) <= tolerance, "error"
            detail = None if passed else f"{postings or 0} lønposteringer i regnskabet for måneden"
        else:
            passed, severity = False, "warning"
            missing = "regnskabet (posteringer)" if not has_ledger else "lønsystemet (løn)"
            detail = f"måneden er ikke leveret fra {missing} endnu"
        shown: tuple[Decimal | None, ...] = (left, right, difference, tolerance)
        if 0 < people < MIN_PEOPLE_SHOWN:  # the ledger's side is the same pay: both sides go
            shown = (None,) * 4
            detail = "; ".join(
                filter(None, [f"beløb udeladt: færre end {MIN_PEOPLE_SHOWN} personer i lønnen", detail])
            )
        out.append(
            Reconciliation(
                "salaries_vs_payroll",
                period,
                "Regnskab: SLF-løn (hovedart 1)",
                shown[0],
                "Lønsystem: lønsum",
                shown[1],
                shown[2],
                shown[3],
                rule,
                passed,
                severity,
                detail,
            )
        )
    return out


def spending_within_allocation(con: duckdb.DuckDBPyConnection) -> list[Reconciliation]:
    rows = con.execute("""
        WITH spent AS (
            SELECT funding_source, budget_year, sum(amount_dkk) AS amount
            FROM marts.fct_programme_postings WHERE flow = 'expense' GROUP BY 1, 2),
        allocated AS (
            SELECT funding_source, budget_year, sum(amount_dkk) AS amount
            FROM marts.fct_allocations GROUP BY 1, 2)
        SELECT coalesce(s.funding_source, a.funding_source) AS funding_source,
               coalesce(s.budget_year, a.budget_year) AS budget_year, s.amount, a.amount
        FROM spent AS s
        FULL JOIN allocated AS a ON a.funding_source = s.funding_source AND a.budget_year = s.budget_year
        ORDER BY funding_source, budget_year""").fetchall()
    out = []
    for source, year, spent, allocated in rows:
        left, right = _d(spent), _d(allocated)
        difference = left - right
        passed = difference <= 0
        detail = None
        if not passed:
            detail = "forbrug uden bevilling" if allocated is None else "forbruget overstiger bevillingen"
        out.append(
            Reconciliation(
                "spending_within_allocation",
                f"{source} {year}",
                "Forbrug (udgiftsposteringer)",
                left,
                "Bevilget",
                right,
                difference,
                Decimal(0),
                "forbrug højst bevillingen",
                passed,
                "warning",
                detail,
            )
        )
    return out


def apmf_donation_received(con: duckdb.DuckDBPyConnection) -> list[Reconciliation]:
    rows = con.execute("""
        WITH received AS (
            SELECT budget_year, -sum(amount_dkk) AS amount, count(*) AS postings
            FROM marts.fct_programme_postings WHERE funding_source = 'APMF' AND flow = 'income' GROUP BY 1),
        allocated AS (
            SELECT budget_year, sum(amount_dkk) AS amount
            FROM marts.fct_allocations WHERE funding_source = 'APMF' GROUP BY 1)
        SELECT coalesce(r.budget_year, a.budget_year) AS budget_year, r.amount, a.amount
        FROM received AS r FULL JOIN allocated AS a ON a.budget_year = r.budget_year
        ORDER BY budget_year""").fetchall()
    out = []
    rule = "skal stemme (på øren)"
    total = ("i alt", sum(_d(r[1]) for r in rows), sum(_d(r[2]) for r in rows))
    for year, received, allocated in [*rows, total]:
        left, right = _d(received), _d(allocated)
        difference = left - right
        passed = abs(difference) < Decimal("0.005")
        detail = None
        if not passed:
            detail = (
                "ingen donation modtaget i budgetåret"
                if received is None or left == 0
                else "modtaget beløb afviger fra bevillingen"
            )
        out.append(
            Reconciliation(
                "apmf_donation_received",
                str(year),
                "Modtaget (APMF-indtægter, fortegn vendt)",
                left,
                "APMF-bevillinger",
                right,
                difference,
                Decimal(0),
                rule,
                passed,
                "warning",
                detail,
            )
        )
    return out


def apmf_not_on_salaries(con: duckdb.DuckDBPyConnection) -> list[Reconciliation]:
    # The whole ledger (raw), not only projekt SLF: the rule holds for every posting.
    where = "finansieringskilde = 'APMF' AND left(art, 1) = '1'"
    count, amount = con.execute(
        f"SELECT count(*), sum(beloeb) FROM raw.posteringer WHERE {where}"
    ).fetchall()[0]
    lines = con.execute(
        f"SELECT _source_file, _source_line FROM raw.posteringer WHERE {where} "
        f"ORDER BY _source_file, _source_line LIMIT {EXAMPLES}"
    ).fetchall()
    detail = _lines(lines, count)
    rule = "skal være 0"
    label = "APMF-posteringer med hovedart 1 (løn)"
    return [
        Reconciliation(
            "apmf_not_on_salaries",
            "antal",
            label,
            Decimal(count),
            "Tilladt",
            Decimal(0),
            Decimal(count),
            Decimal(0),
            rule,
            count == 0,
            "error",
            detail,
        ),
        Reconciliation(
            "apmf_not_on_salaries",
            "beløb",
            label,
            _d(amount),
            "Tilladt",
            Decimal(0),
            _d(amount),
            Decimal(0),
            rule,
            count == 0 and _d(amount) == 0,
            "error",
            detail,
        ),
    ]


COMPUTE = {
    "salaries_vs_payroll": salaries_vs_payroll,
    "spending_within_allocation": spending_within_allocation,
    "apmf_donation_received": apmf_donation_received,
    "apmf_not_on_salaries": apmf_not_on_salaries,
}
SEVERITY = {
    "salaries_vs_payroll": "error",
    "spending_within_allocation": "warning",
    "apmf_donation_received": "warning",
    "apmf_not_on_salaries": "error",
}


def compute_reconciliations(con: duckdb.DuckDBPyConnection) -> list[Reconciliation]:
    """Every reconciliation's rows, without writing anything (a read-only connection will do).

    A check whose query cannot run (a table missing, say) gives one failed row saying why, at the
    check's own severity: an error-severity check that cannot run must stop the gate too."""
    out: list[Reconciliation] = []
    for check, compute in COMPUTE.items():
        try:
            out.extend(compute(con))
        except db_errors() as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.error("reconciliation %s could not be computed: %s", check, first)
            out.append(
                Reconciliation(
                    check,
                    "-",
                    "",
                    None,
                    "",
                    None,
                    None,
                    None,
                    "",
                    False,
                    SEVERITY[check],
                    f"kunne ikke beregnes: {first}",
                )
            )
    return out


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS audit")
    con.execute(RECONCILIATIONS_DDL)


def write_reconciliations(con: duckdb.DuckDBPyConnection, run_id: str, rows: list[Reconciliation]) -> None:
    """Replace the run's rows in audit.reconciliations (a re-run of the step does not add)."""
    ensure_table(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM audit.reconciliations WHERE run_id = ?", [run_id])
        if rows:
            marks = ", ".join("?" * 14)
            con.executemany(
                f"INSERT INTO audit.reconciliations VALUES ({marks})",
                [
                    [
                        run_id,
                        r.check,
                        r.key,
                        r.left_label,
                        r.left_value,
                        r.right_label,
                        r.right_value,
                        r.difference,
                        r.tolerance,
                        r.tolerance_rule,
                        r.passed,
                        r.severity,
                        r.detail,
                        now,
                    ]
                    for r in rows
                ],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def run_reconciliations(con: duckdb.DuckDBPyConnection, run_id: str) -> list[Reconciliation]:
    """Compute every reconciliation on the warehouse ``con`` is connected to (read-write: the build)
    and write them to audit.reconciliations under ``run_id``."""
    rows = compute_reconciliations(con)
    write_reconciliations(con, run_id, rows)
    failed = [r for r in rows if not r.passed]
    log.info(
        "reconciliations: %d rows, %d failed (%d errors)",
        len(rows),
        len(failed),
        sum(r.blocking for r in failed),
    )
    return rows


def run_reconciliations_on(warehouse_path: Path, run_id: str) -> list[Reconciliation]:
    """run_reconciliations on a warehouse file or QualityTarget (opened read-write for the call)."""
    with as_target(warehouse_path).connect() as con:
        return run_reconciliations(con, run_id)


def read_reconciliations(con: duckdb.DuckDBPyConnection, run_id: str) -> list[Reconciliation]:
    """The run's rows as stored (empty when the table or the run is not there)."""
    if not table_exists(con, "audit", "reconciliations"):
        return []
    rows = con.execute(
        "SELECT check_name, key, left_label, left_value, right_label, right_value, "
        "difference, tolerance, tolerance_rule, passed, severity, detail "
        "FROM audit.reconciliations WHERE run_id = ?",
        [run_id],
    ).fetchall()
    order = {check: i for i, check in enumerate(CHECKS)}  # the checks in their order, then by key
    rows.sort(key=lambda r: (order.get(r[0], len(order)), r[1]))
    return [Reconciliation(*r) for r in rows]
