"""
### slf_answer_inquiry — answer one council inquiry from the published warehouse

Triggered by hand (no schedule) when a council member's inquiry has been written up as a YAML
file in `inquiries/` (fields, figures, tables and charts: `src/slf_warehouse/answers/`). The one
task, **render_answer**, reads the last *published* warehouse read-only — the version that passed
the refresh's quality gate, never a build in progress — and writes the letter to
`OUTPUT/answers/<inquiry>.pdf` (PDF/UA), its `.html`, and `<inquiry>.figures.json` with every
figure's value and the warehouse version. When an earlier edition's `.figures.json` is there, the
letter's appendix lists the figures that changed since then, and so does the task's result.

Params:

- `inquiry` — a file name in `inquiries/` (`enhedslisten-slf.yaml`, or without `.yaml`) or an
  absolute path;
- `output_dir` — the refresh's output folder (the warehouse is in `OUTPUT/warehouse`).

It fails, and renders nothing, when no warehouse has been published yet, when the inquiry file is
invalid (the message names the file and the field) or when a figure's mart is missing.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Asset, Param, dag, task

# What the answer reads: slf_refresh updates this asset when it publishes a build.
PUBLISHED_WAREHOUSE = Asset("slf://warehouse/published")
DEFAULT_OUTPUT = os.environ.get("SLF_OUTPUT_DIR", "output")


@dag(
    dag_id="slf_answer_inquiry",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["slf", "answers"],
    default_args={"owner": "boern-og-unge-oekonomi", "retries": 0},
    params={
        "inquiry": Param("enhedslisten-slf.yaml", type="string", minLength=1,
                         description="file name in inquiries/ or an absolute path to an inquiry YAML"),
        "output_dir": Param(DEFAULT_OUTPUT, type="string", minLength=1,
                            description="the refresh's output folder: warehouse/ is read, answers/ written"),
    },
    doc_md=__doc__,
)
def slf_answer_inquiry():
    @task(inlets=[PUBLISHED_WAREHOUSE])
    def render_answer(params: dict | None = None) -> dict:
        from slf_warehouse.answers.published import answer_from_published

        params = params or {}
        return answer_from_published(params["inquiry"], params.get("output_dir") or DEFAULT_OUTPUT)

    render_answer()


slf_answer_inquiry()
