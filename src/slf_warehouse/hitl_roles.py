"""Human-in-the-loop tasks assigned to a role rather than to named users.

Airflow assigns a HITL task to users (``assigned_users``, each an ``id`` and a ``name``), and its API
asks the auth manager whether the responding user is one of them. The quality override is decided
by whoever holds the finance-lead role, a set of people that changes without touching the DAG, so
its assignee is a pseudo-user ``role:<role name>``; the project's auth manager (auth_manager.py)
lets any user holding that role answer. A real login never contains ``:`` (deployment.read_users),
so no user can be mistaken for a role.
"""

from __future__ import annotations

from collections.abc import Iterable

ROLE_PREFIX = "role:"


def role_assignee(role: str, title: str) -> dict[str, str]:
    """The ``assigned_users`` entry for everyone holding ``role`` (the UI shows ``title``)."""
    return {"id": f"{ROLE_PREFIX}{role}", "name": title}


def assigned_roles(assigned_ids: Iterable[str]) -> set[str]:
    """The role names among a HITL task's assigned ids."""
    return {i.removeprefix(ROLE_PREFIX) for i in assigned_ids if i.startswith(ROLE_PREFIX)}
