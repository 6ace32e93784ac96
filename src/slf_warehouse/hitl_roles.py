"""What the project's human-in-the-loop tasks share: a role as assignee, and a form with one text field.

Airflow assigns a HITL task to users (``assigned_users``, each an ``id`` and a ``name``), and its API
asks the auth manager whether the responding user is one of them. The quality override is decided
by whoever holds the finance-lead role, a set of people that changes without touching the DAG, so
its assignee is a pseudo-user ``role:<role name>``; the project's auth manager (auth_manager.py)
lets any user holding that role answer. A real login never contains ``:`` (deployment.read_users),
so no user can be mistaken for a role.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ROLE_PREFIX = "role:"


def role_assignee(role: str, title: str) -> dict[str, str]:
    """The ``assigned_users`` entry for everyone holding ``role`` (the UI shows ``title``)."""
    return {"id": f"{ROLE_PREFIX}{role}", "name": title}


def assigned_roles(assigned_ids: Iterable[str]) -> set[str]:
    """The role names among a HITL task's assigned ids."""
    return {i.removeprefix(ROLE_PREFIX) for i in assigned_ids if i.startswith(ROLE_PREFIX)}


def form_with_text_field(params: Any, name: str, *, title: str, description: str, max_length: int) -> Any:
    """The HITL form: the params Airflow hands every operator (the DAG's, marked "dag", which the
    form drops) plus the task's own free-text field ``name`` (a comment, a reason), empty at first."""
    from airflow.sdk import Param
    from airflow.sdk.definitions.param import ParamsDict

    form = params if isinstance(params, ParamsDict) else ParamsDict(params or {})
    form[name] = Param(
        "", type="string", maxLength=max_length, title=title, source="task", description=description
    )
    return form
