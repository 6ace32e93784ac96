"""The shared deployment's auth manager: FAB's, with human-in-the-loop assignments by login or role.

An approval (``answers/approval_operator.py``) is assigned to the signatories an inquiry file names
by their Airflow logins (``signatories[].username``). FAB compares assigned users with its database
id (``ab_user.id``), a number nobody writing an inquiry can know and that differs between
deployments; logins are unique in FAB too, so this manager compares the login instead. The quality
override decision (``override_decision.py``) is assigned to a role (``hitl_roles``): any
user holding it may answer. Everything else is FAB's.
"""

from __future__ import annotations

from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

from slf_warehouse.hitl_roles import ROLE_PREFIX, assigned_roles


class SlfAuthManager(FabAuthManager):
    def is_authorized_hitl_task(self, *, assigned_users: set[str], user) -> bool:
        if not user.username:
            return False
        if user.username in assigned_users:
            return not user.username.startswith(ROLE_PREFIX)
        roles = assigned_roles(assigned_users)
        return bool(roles) and any(role.name in roles for role in getattr(user, "roles", None) or [])
