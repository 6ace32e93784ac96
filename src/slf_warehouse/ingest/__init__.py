"""Ingestion: delivered files → validated, typed rows in the warehouse's raw schema."""

from slf_warehouse.ingest.errors import ConfigurationError, FileRejected, Issue
from slf_warehouse.ingest.loading import (FileResult, IngestFailed, IngestReport, ingest_landing,
                                          ingest_source)

__all__ = ["ConfigurationError", "FileRejected", "FileResult", "IngestFailed", "IngestReport", "Issue",
           "ingest_landing", "ingest_source"]
