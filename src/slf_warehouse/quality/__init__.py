"""The data-quality gate: Great Expectations suites (expectations/*.json) run against the warehouse,
reconciliations across sources, the publish/refuse/override decision, run history in the warehouse's
`audit` schema and a PDF quality report.

- checkpoint.run_quality_checks: the GE suites → QualityResult (Data Docs, quality_results.json)
- reconciliations.run_reconciliations: cross-source rules → audit.reconciliations
- gate.quality_gate: QualityResult + reconciliations (+ override reason) → GateDecision or QualityGateRefused
- history: audit.runs, audit.run_files, audit.dbt_results, audit.expectation_results,
  OUT/quality/history.jsonl
- report.render_quality_report: OUT/quality/report.pdf (+ .html)
- step: the refresh's quality step (check_build), mark_published, finish_failed_run

Importing this package is cheap: great_expectations and weasyprint are imported only when used.
"""

from slf_warehouse.quality.checkpoint import CheckRecord, QualityResult, SuiteOutcome, run_quality_checks
from slf_warehouse.quality.gate import GateDecision, InvalidOverride, QualityGateRefused, quality_gate
from slf_warehouse.quality.reconciliations import Reconciliation, run_reconciliations
from slf_warehouse.quality.suites import SuiteFileError, SuiteSpec, load_suites

__all__ = [
    "CheckRecord",
    "GateDecision",
    "InvalidOverride",
    "QualityGateRefused",
    "QualityResult",
    "Reconciliation",
    "SuiteFileError",
    "SuiteOutcome",
    "SuiteSpec",
    "load_suites",
    "quality_gate",
    "run_quality_checks",
    "run_reconciliations",
]
