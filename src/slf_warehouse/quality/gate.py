"""The quality gate: publish, refuse, or publish with a recorded override.

`quality_gate(result, reconciliations, override_reason)` looks at the Great Expectations result and
the reconciliations:

- nothing of error severity failed → publish (warnings are reported, never block);
- something of error severity failed and no override → raise QualityGateRefused, whose message
  names every failed check and reconciliation;
- something failed and an override reason (at least MIN_OVERRIDE_CHARS characters, not blank) is
  given → publish, the decision carries the reason and what it let through; the refresh records it
  in audit.runs, and every page of every answer from that warehouse prints
  "Offentliggjort trods fejlede kvalitetskontroller: <reason>".

An override given when nothing failed is not needed and not recorded (it would otherwise print a
banner on letters from a warehouse that passed). An override that is too short is refused with
InvalidOverride, but only when it would be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from slf_warehouse.quality.reconciliations import Reconciliation

MIN_OVERRIDE_CHARS = 10
BANNER_PREFIX = "Offentliggjort trods fejlede kvalitetskontroller: "


class InvalidOverride(ValueError):
    """An override reason that cannot be accepted (empty or too short)."""


@dataclass
class GateDecision:
    publish: bool
    # error-severity GE checks (and suites that could not run)
    failed_checks: list[str] = field(default_factory=list)
    failed_reconciliations: list[str] = field(default_factory=list)  # error-severity reconciliation rows
    # warning-severity checks and reconciliations that failed
    warnings: list[str] = field(default_factory=list)
    override_reason: str | None = None  # set only when the override was used

    @property
    def overridden(self) -> bool:
        return self.override_reason is not None

    @property
    def quality_success(self) -> bool:
        return not self.failed_checks and not self.failed_reconciliations

    @property
    def status(self) -> str:
        """The audit.runs status the decision leads to before publication."""
        if not self.publish:
            return "refused"
        return "passed_with_override" if self.overridden else "passed"

    @property
    def banner(self) -> str | None:
        """The line an answer prints on every page when the gate was overridden."""
        return f"{BANNER_PREFIX}{self.override_reason}" if self.overridden else None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            overridden=self.overridden,
            quality_success=self.quality_success,
            status=self.status,
            banner=self.banner,
        )
        return d


class QualityGateRefused(Exception):
    """Error-severity checks or reconciliations failed and no override was given."""

    def __init__(self, decision: GateDecision):
        self.decision = decision
        lines = [f"- check {name}" for name in decision.failed_checks]
        lines += [f"- reconciliation {name}" for name in decision.failed_reconciliations]
        count = len(decision.failed_checks) + len(decision.failed_reconciliations)
        super().__init__(
            f"quality gate refused publication: {count} error-severity quality check(s) and "
            f"reconciliation(s) failed; the warehouse is not published. Fix the data and run again, or "
            f"publish anyway with an override reason (at least {MIN_OVERRIDE_CHARS} characters), which "
            f"every answer will print.\n" + "\n".join(lines)
        )


def validate_override(reason: str | None) -> str | None:
    """The reason, stripped; None when none is given; InvalidOverride when it is too short."""
    if reason is None:
        return None
    text = " ".join(str(reason).split())
    if not text:
        return None
    if len(text) < MIN_OVERRIDE_CHARS:
        raise InvalidOverride(
            f"override reason {text!r} is too short: say why the warehouse may be "
            f"published despite failed checks, in at least {MIN_OVERRIDE_CHARS} characters"
        )
    return text


def quality_gate(
    result: Any, reconciliations: Sequence[Reconciliation], override_reason: str | None = None
) -> GateDecision:
    """Decide on publication; raises QualityGateRefused (naming every failed check and
    reconciliation) unless nothing of error severity failed or an override reason is given.

    `result` is a QualityResult (its `.failed` and `.warnings` lists are used)."""
    failed_checks = list(result.failed)
    failed_recs = [r.describe() for r in reconciliations if r.blocking]
    warnings = list(getattr(result, "warnings", []) or [])
    warnings += [r.describe() for r in reconciliations if not r.passed and r.severity != "error"]
    decision = GateDecision(
        publish=True, failed_checks=failed_checks, failed_reconciliations=failed_recs, warnings=warnings
    )
    if decision.quality_success:
        return decision
    reason = validate_override(override_reason)
    if reason is None:
        decision.publish = False
        raise QualityGateRefused(decision)
    decision.override_reason = reason
    return decision
