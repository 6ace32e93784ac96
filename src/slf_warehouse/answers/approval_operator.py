"""The approval step of ``slf_answer_inquiry``: Airflow's human-in-the-loop operator, asked of the
letter's signatories.

Whom to ask and what to show are known only when the draft exists, so this HITLOperator reads the
draft's record (``approval.render_draft``'s XCom) when it runs: it is assigned to the signatories'
Airflow logins and shows ``approval.approval_body``. Airflow's API refuses a response from anyone
else (403; the project's auth manager matches assigned users by login, ``auth_manager.py``).

Airflow accepts a response's form values without checking them against the form, so the one rule
the form cannot state — a rejection needs a comment — is checked when the task resumes: a rejection
without one fails the task (no final letter; clearing the task asks again).

Imported by the DAG file: only Airflow at module level, the project's modules inside the methods.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator


class LetterApproval(HITLOperator):
    def __init__(self, *, draft_task_id: str, params: Any = None, **kwargs: Any) -> None:
        from slf_warehouse.answers.approval import APPROVE, COMMENT, REJECT
        from slf_warehouse.hitl_roles import form_with_text_field

        form = form_with_text_field(
            params,
            COMMENT,
            title="Kommentar",
            description=f"Skal udfyldes ved '{REJECT}': hvad skal rettes",
            max_length=2000,
        )
        super().__init__(
            subject="Godkend svarbrevet", options=[APPROVE, REJECT], multiple=False, params=form, **kwargs
        )
        self.draft_task_id = draft_task_id

    def execute(self, context: Any) -> Any:
        from slf_warehouse.answers.approval import approval_body, approval_subject

        draft = context["ti"].xcom_pull(task_ids=self.draft_task_id)
        self.assigned_users = [{"id": s["username"], "name": s["username"]} for s in draft["signatories"]]
        self.subject = approval_subject(draft)
        self.body = approval_body(draft)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from slf_warehouse.answers.approval import COMMENT, REJECT

        result = super().execute_complete(context, event)
        if (
            list(result["chosen_options"]) == [REJECT]
            and not str(result["params_input"].get(COMMENT) or "").strip()
        ):
            raise AirflowFailException(
                f"'{REJECT}' without a comment: a rejection must say what to change "
                "(the comment field); no final letter was written. Clear this task to answer again."
            )
        return result
