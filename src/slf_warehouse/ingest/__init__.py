"""Ingestion: delivered files → validated, typed rows in the warehouse's raw schema."""

from slf_warehouse.ingest.errors import ConfigurationError, FileRejected, Issue
from slf_warehouse.ingest.loading import FileResult, IngestFailed, IngestReport, ingest_landing, ingest_source
from slf_warehouse.ingest.targets import DuckDBTarget, PostgresTarget, RawTarget

__all__ = [
    "ConfigurationError",
    "DuckDBTarget",
    "FileRejected",
    "FileResult",
    "IngestFailed",
    "IngestReport",
    "Issue",
    "PostgresTarget",
    "RawTarget",
    "ingest_landing",
    "ingest_source",
]
