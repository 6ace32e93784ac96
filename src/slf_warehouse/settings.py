"""Every path and setting the pipeline reads, in one place (environment, then DAG params)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The payroll pseudonymisation key's variable (ingest.pseudonym reads it; `slf` checks it is set
# before it starts anything, without importing the ingestion).
PSEUDONYM_KEY_ENV = "SLF_PSEUDONYM_KEY"


def project_dir() -> Path:
    """The checkout holding dbt_project/, inquiries/, expectations/ and report_templates/."""
    if env := os.environ.get("SLF_PROJECT_DIR"):
        return Path(env)
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    landing_dir: Path
    output_dir: Path
    project: Path

    @classmethod
    def from_env(
        cls, landing_dir: str | Path | None = None, output_dir: str | Path | None = None
    ) -> Settings:
        project = project_dir()
        return cls(
            landing_dir=Path(
                landing_dir or os.environ.get("SLF_LANDING_DIR") or project / "landing"
            ).resolve(),
            output_dir=Path(output_dir or os.environ.get("SLF_OUTPUT_DIR") or project / "output").resolve(),
            project=project,
        )

    @property
    def warehouse_dir(self) -> Path:
        """Builds, published versions and the published pointer live here."""
        return Path(os.environ.get("SLF_WAREHOUSE_DIR") or self.output_dir / "warehouse")

    @property
    def warehouse_engine(self) -> str:
        """``SLF_WAREHOUSE_ENGINE``: ``duckdb`` (the file store in warehouse_dir, the default) or
        ``postgres`` (the server named by ``SLF_PG_*``, as dbt's postgres target)."""
        from slf_warehouse.warehouse_reader import engine_from_env

        return engine_from_env()

    @property
    def pg_conninfo(self) -> str:
        from slf_warehouse.pg_raw import conninfo_from_env

        return conninfo_from_env()

    @property
    def quarantine_dir(self) -> Path:
        return self.output_dir / "quarantine"

    @property
    def answers_dir(self) -> Path:
        return self.output_dir / "answers"

    @property
    def quality_dir(self) -> Path:
        return self.output_dir / "quality"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project / "dbt_project"

    @property
    def inquiries_dir(self) -> Path:
        return self.project / "inquiries"

    @property
    def expectations_dir(self) -> Path:
        return self.project / "expectations"
