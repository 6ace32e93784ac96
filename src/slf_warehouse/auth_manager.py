"""The shared deployment's auth manager: FAB's, with human-in-the-loop assignments by login.

An approval (``answers/approval_operator.py``) is assigned to the signatories an inquiry file names
by their Airflow logins (``signatories[].username``). FAB compares assigned users with its database
id (``ab_user.id``), a number nobody writing an inquiry can know and that differs between
deployments; logins are unique in FAB too, so this manager compares the login instead. Everything
else is FAB's.
"""

from __future__ import annotations

from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager


class SlfAuthManager(FabAuthManager):
    def is_authorized_hitl_task(self, *, assigned_users: set[str], user) -> bool:
        return bool(user.username) and user.username in assigned_users
