"""The data-quality gate: Great Expectations suites (expectations/*.json) run against the warehouse.

Importing this package is cheap: great_expectations is imported only when the checks run.
"""

from slf_warehouse.quality.checkpoint import CheckRecord, QualityResult, SuiteOutcome, run_quality_checks
from slf_warehouse.quality.suites import SuiteFileError, SuiteSpec, load_suites

__all__ = ["CheckRecord", "QualityResult", "SuiteFileError", "SuiteOutcome", "SuiteSpec", "load_suites",
           "run_quality_checks"]
