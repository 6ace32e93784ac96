"""
### slf_answer_inquiry — from draft to signed answer

Triggered by hand (no schedule) when a council member's inquiry has been written up as a YAML
file in `inquiries/` (fields, figures, tables and charts: `src/slf_warehouse/answers/`).

1. **render_draft** reads the last *published* warehouse read-only — the version that passed the
   refresh's quality gate — and writes a draft to `OUTPUT/answers/review/<run>/`: every page marked
   "UDKAST", the signature block unsigned, the appendix listing what changed since the last
   approved edition.
2. **approve** waits (state *awaiting input*, Browse → Required Actions) for one of the signatories
   the inquiry file names (`signatories[].username`, their Airflow logins) to choose *Godkend* or
   *Afvis*; the page shows the draft's figures, the changes, the warehouse's quality status and
   where the draft is. Anyone else is refused. A rejection needs a comment.
3. **conclude**: approved → the final letter (`answers/approved/<inquiry>.pdf`, PDF/UA, signed
   "Godkendt af … den …") and its archival copy (`<inquiry>.arkiv.pdf`, PDF/A-3a with the figures,
   the queries and the approval embedded); rejected → the comment is kept beside the draft and no
   final is written. A draft made from a warehouse version that has since been replaced is stale:
   approving it is refused.

Params (no param names a path: folders come from the deployment's configuration, `SLF_OUTPUT_DIR`):

- `inquiry` — one of the inquiries in `inquiries/` (the list shows party and subject);
- `edition_note` — optional, printed in the appendix and shown on the approval page.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, Param, dag, task

from slf_warehouse.answers.approval_operator import LetterApproval

# What the answer reads: slf_refresh updates this asset when it publishes a build.
PUBLISHED_WAREHOUSE = Asset("slf://warehouse/published")
# Ten working days to answer: a draft nobody decides on within three weeks fails rather than waits on.
APPROVAL_TIMEOUT = timedelta(days=21)


def _inquiry_choices() -> dict[str, str]:
    from slf_warehouse.answers.choices import inquiry_choices

    return inquiry_choices()


CHOICES = _inquiry_choices()


@dag(
    dag_id="slf_answer_inquiry",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["slf", "answers"],
    default_args={"owner": "boern-og-unge-oekonomi", "retries": 0},
    params={
        "inquiry": Param(
            next(iter(CHOICES), ""),
            type="string",
            enum=list(CHOICES),
            values_display=CHOICES,
            title="Forespørgsel",
            description="the inquiry to answer (a file in inquiries/)",
        ),
        # null allowed: the UI marks a param without null as required and refuses an empty field
        "edition_note": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Udgavenote",
            description="optional: what this edition is, e.g. '2. udgave: rettet efter …'",
        ),
    },
    doc_md=__doc__,
)
def slf_answer_inquiry():
    @task(inlets=[PUBLISHED_WAREHOUSE])
    def render_draft(params: dict | None = None, run_id: str | None = None) -> dict:
        from slf_warehouse.answers.approval import render_draft as draft

        return draft(dict(params or {}), run_id or "manual")

    @task
    def conclude(draft: dict, decision: dict) -> dict:
        from slf_warehouse.answers.approval import conclude as act

        return act(draft, decision)

    drafted = render_draft()
    approve = LetterApproval(
        task_id="approve", draft_task_id="render_draft", response_timeout=APPROVAL_TIMEOUT
    )
    drafted >> approve
    conclude(drafted, approve.output)


slf_answer_inquiry()
