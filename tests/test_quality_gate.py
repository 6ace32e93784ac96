"""The quality gate's decision: publish, refuse (naming every failure), or publish with an override."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from slf_warehouse.quality import GateDecision, InvalidOverride, QualityGateRefused, quality_gate
from slf_warehouse.quality.gate import BANNER_PREFIX, MIN_OVERRIDE_CHARS
from slf_warehouse.quality.reconciliations import Reconciliation


def result(failed=(), warnings=()):
    return SimpleNamespace(failed=list(failed), warnings=list(warnings), success=not failed)


def rec(check: str, key: str, passed: bool, severity: str) -> Reconciliation:
    return Reconciliation(
        check,
        key,
        "venstre",
        Decimal(1),
        "højre",
        Decimal(2),
        Decimal(-1),
        Decimal(0),
        "regel",
        passed,
        severity,
    )


FAILED_CHECK = "raw_posteringer: expect_column_sum_to_be_between on apmf_salary_postings (observed 1)"
RECS = [
    rec("salaries_vs_payroll", "2023-03", False, "error"),
    rec("salaries_vs_payroll", "2023-04", True, "error"),
    rec("spending_within_allocation", "PULJE 2023", False, "warning"),
]


def test_nothing_failed_publishes() -> None:
    decision = quality_gate(result(), [rec("salaries_vs_payroll", "2023-03", True, "error")], None)
    assert decision.publish and decision.quality_success and not decision.overridden
    assert decision.status == "passed" and decision.banner is None


def test_warnings_alone_never_block() -> None:
    decision = quality_gate(result(warnings=["marts_rpt_budget_vs_actual: overspent"]), RECS[1:], None)
    assert decision.publish and decision.quality_success
    assert len(decision.warnings) == 2
    assert any("PULJE 2023" in w for w in decision.warnings)


def test_refusal_names_every_failed_check_and_reconciliation() -> None:
    second = "marts_fct_programme_postings: expect_column_values_to_be_in_set on apmf_pays_salary"
    with pytest.raises(QualityGateRefused) as refused:
        quality_gate(result(failed=[FAILED_CHECK, second]), RECS, None)
    message = str(refused.value)
    assert "refused publication" in message and "3 error-severity" in message
    assert FAILED_CHECK in message and second in message
    assert "salaries_vs_payroll [2023-03]" in message
    assert "2023-04" not in message and "PULJE 2023" not in message  # passed / warning only
    decision = refused.value.decision
    assert not decision.publish and decision.status == "refused"
    assert decision.failed_checks == [FAILED_CHECK, second] and len(decision.failed_reconciliations) == 1


def test_a_failed_reconciliation_alone_blocks() -> None:
    with pytest.raises(QualityGateRefused, match=r"salaries_vs_payroll \[2023-03\]"):
        quality_gate(result(), RECS, None)


@pytest.mark.parametrize("reason", [None, "", "   \n "])
def test_no_override_means_refused(reason) -> None:
    with pytest.raises(QualityGateRefused):
        quality_gate(result(failed=[FAILED_CHECK]), [], reason)


@pytest.mark.parametrize("reason", ["ok", "x" * (MIN_OVERRIDE_CHARS - 1), "  kort    "])
def test_a_short_override_is_refused(reason: str) -> None:
    with pytest.raises(InvalidOverride, match=f"at least {MIN_OVERRIDE_CHARS} characters"):
        quality_gate(result(failed=[FAILED_CHECK]), [], reason)


def test_override_publishes_and_is_carried_in_the_decision() -> None:
    reason = "  Kendt fejlpostering i marts,\n rettes ved næste levering  "
    decision = quality_gate(result(failed=[FAILED_CHECK]), RECS, reason)

    assert isinstance(decision, GateDecision)
    assert decision.publish and decision.overridden and not decision.quality_success
    assert decision.override_reason == "Kendt fejlpostering i marts, rettes ved næste levering"
    assert decision.status == "passed_with_override"
    assert decision.banner == BANNER_PREFIX + decision.override_reason
    assert decision.banner.startswith("Offentliggjort trods fejlede kvalitetskontroller: ")
    assert decision.failed_checks == [FAILED_CHECK] and len(decision.failed_reconciliations) == 1
    data = decision.as_dict()
    assert (
        data["overridden"] is True and data["banner"] == decision.banner and data["status"] == decision.status
    )


def test_an_unneeded_override_is_not_recorded() -> None:
    decision = quality_gate(result(), [], "Ingen grund, men givet alligevel")
    assert decision.publish and not decision.overridden and decision.banner is None
    # ... and a short one is not even checked then.
    assert quality_gate(result(), [], "x").publish
