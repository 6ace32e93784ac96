"""The quality override as a decision: ``slf_refresh``'s human-in-the-loop step after a refused gate.

In a run of the shared deployment (scheduled, or triggered in the UI / over REST; refresh_run.py)
whose quality gate refused publication and that has no ``quality_override`` param, the run does not
fail: this HITLOperator asks the finance leads (everyone with the role ``slf_finance_lead``, assigned
as a role, hitl_roles.py) to choose

- *Offentliggør alligevel* with a written reason (the form's ``begrundelse``) → the reason is recorded
  exactly as the ``quality_override`` param's (pipeline.record_override_decision), and the run goes on
  to publish: run history, report and every page of every answer carry it;
- *Stop* → the task fails, so the run ends unpublished (record_outcome records it, the refused build
  is removed as for any refused run).

Airflow stores a response's form values without checking them, so the reason is checked when the
task resumes: a blank or too short one (quality.gate's rules) is refused and the question asked
again, within the same deadline. No answer within ``response_timeout`` fails the task: not published.
When the gate passed (or the param overrode it) the task finishes at once, asking nobody.

Imported by the DAG file: only Airflow at module level, the project's modules inside the methods (not
in the quality package, whose import brings DuckDB into every parse of the DAG file).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator

PUBLISH, STOP = "Offentliggør alligevel", "Stop"
REASON = "begrundelse"
DECIDERS_ROLE = "slf_finance_lead"
MAX_LISTED = 25  # failed checks shown on the decision page; the report and Data Docs have them all


def decision_body(checked: dict[str, Any], deadline: datetime, min_chars: int) -> str:
    """The decision page's Markdown: what failed, where to read more, what each answer does."""
    failed = [f"- kontrol `{name}`" for name in checked.get("failed_checks") or []]
    failed += [f"- afstemning {name}" for name in checked.get("failed_reconciliations") or []]
    shown = failed[:MAX_LISTED] + (
        [f"- … og {len(failed) - MAX_LISTED} til"] if len(failed) > MAX_LISTED else []
    )
    return "\n".join(
        [
            f"Kvalitetskontrollen afviste dette build: {len(failed)} fejl af alvorlighed *error*.",
            "",
            *shown,
            "",
            "Detaljer: Data Docs under `quality/` i output-mappen og loggen for `quality_checkpoint`.",
            "",
            f"**{PUBLISH}**: skriv en begrundelse (mindst {min_chars} tegn). Den gemmes i kørselshistorikken "
            "og trykkes på hver side af svarbrevene. Et svar uden begrundelse afvises, og der spørges igen.",
            f"**{STOP}**: intet offentliggøres; kørslen ender som fejlet.",
            "",
            f"Uden svar inden {deadline:%Y-%m-%d %H:%M} UTC stopper kørslen uden offentliggørelse.",
        ]
    )


class QualityOverrideDecision(HITLOperator):
    def __init__(
        self, *, checkpoint_task_id: str, build_task_id: str, params: Any = None, **kwargs: Any
    ) -> None:
        from airflow.sdk.execution_time.hitl import HITLUser

        from slf_warehouse.hitl_roles import form_with_text_field, role_assignee

        deciders = role_assignee(DECIDERS_ROLE, f"økonomiledere ({DECIDERS_ROLE})")
        form = form_with_text_field(
            params,
            REASON,
            title="Begrundelse",
            description=f"Skal udfyldes ved '{PUBLISH}': hvorfor må data offentliggøres trods fejlene",
            max_length=1000,
        )
        super().__init__(
            subject="Kvalitetskontrollen fejlede: offentliggør alligevel?",
            options=[PUBLISH, STOP],
            multiple=False,
            params=form,
            assigned_users=[HITLUser(id=deciders["id"], name=deciders["name"])],
            **kwargs,
        )
        self.checkpoint_task_id = checkpoint_task_id
        self.build_task_id = build_task_id

    def execute(self, context: Any) -> Any:
        from slf_warehouse.quality.gate import MIN_OVERRIDE_CHARS

        checked = context["ti"].xcom_pull(task_ids=self.checkpoint_task_id)
        if not checked.get("decision_needed"):
            return {"decision": "not needed", "override": checked.get("override")}
        assert self.response_timeout is not None  # the DAG gives one: a refused build never waits forever
        deadline = datetime.now(UTC) + self.response_timeout
        self.body = decision_body(checked, deadline, MIN_OVERRIDE_CHARS)
        return self._ask(context, deadline)

    def _ask(self, context: Any, deadline: datetime) -> Any:
        """HITLOperator's wait, carrying the deadline to execute_complete (a refused answer asks again)."""
        from airflow.sdk.exceptions import TaskAwaitingInput

        try:
            return super().execute(context)
        except TaskAwaitingInput as waiting:
            waiting.kwargs = {**(waiting.kwargs or {}), "deadline": deadline.isoformat()}
            raise

    def process_trigger_event_error(self, event: dict[str, Any]) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        if event.get("error_type") == "timeout":
            raise AirflowFailException(
                f"no decision on the refused quality gate within {self.response_timeout}: not published"
            )
        super().process_trigger_event_error(event)

    def execute_complete(self, context: Any, event: dict[str, Any], deadline: str | None = None) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from slf_warehouse import pipeline
        from slf_warehouse.quality.gate import InvalidOverride
        from slf_warehouse.refresh_run import refresh_settings

        result = super().execute_complete(context, event)
        by = (result.get("responded_by_user") or {}).get("name") or "?"
        if list(result["chosen_options"]) == [STOP]:
            raise AirflowFailException(
                f"'{STOP}' chosen by {by}: the quality gate's refusal stands; the warehouse is not published"
            )
        settings = refresh_settings(context["params"])
        build = pipeline.build_from_ref(settings, context["ti"].xcom_pull(task_ids=self.build_task_id))
        run_id = context["run_id"]
        try:
            recorded = pipeline.record_override_decision(
                settings, build, run_id, result["params_input"].get(REASON)
            )
        except InvalidOverride as refused:
            # the deadline set when first asked: a refused answer does not buy more time
            due = datetime.fromisoformat(deadline) if deadline else datetime.now(UTC)
            remaining = due - datetime.now(UTC)
            if remaining <= timedelta(0):
                raise AirflowFailException(
                    f"'{PUBLISH}' by {by} refused ({refused}), and the time to decide is up: not published"
                ) from None
            self.log.warning("'%s' by %s refused: %s. Asking again (until %s).", PUBLISH, by, refused, due)
            self.response_timeout = remaining
            return self._ask(context, due)
        self.log.warning("'%s' chosen by %s; reason recorded: %s", PUBLISH, by, recorded["override_reason"])
        return {"decision": "publish anyway", "by": by, "override": recorded["override_reason"]}
