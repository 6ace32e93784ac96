"""The shared deployment's start-up: refuse weak secrets, set up the metadata database, roles and users.

`slf deploy init` (docker-compose's airflow-init) checks the secrets, migrates Airflow's metadata
database, creates the writer pool and then, through the FAB auth manager's security manager, the
project's roles and the users listed in the users file (a secret; docs/deploy.md). `slf deploy serve
COMPONENT…` checks the secrets and then becomes `airflow COMPONENT…`, so no component starts with a
placeholder or short secret. Nothing here has a default password.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# FAB with approvals assigned by login (auth_manager.py)
FAB_AUTH_MANAGER = "slf_warehouse.auth_manager.SlfAuthManager"
USERS_FILE_ENV = "SLF_USERS_FILE"

# Environment variable -> (what it is, the shortest value accepted). Airflow warns about JWT
# secrets under 64 bytes; the others are random strings an operator generates (.env.example).
SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": ("the JWT secret between Airflow's components", 64),
    "AIRFLOW__API__SECRET_KEY": ("the API server's session secret", 32),
    "SLF_PSEUDONYM_KEY": ("the payroll pseudonymisation key", 32),
    "SLF_PG_PASSWORD": ("the warehouse database password", 16),
}
# Connection URLs whose password must be as strong as a secret.
SECRET_URLS = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "the Airflow metadata database password",
    "AIRFLOW__CELERY__RESULT_BACKEND": "the Celery result backend password",
}
FERNET_KEY = "AIRFLOW__CORE__FERNET_KEY"
# The read-only warehouse login for analysts and BI tools (warehouse_pg.ensure_reader_role): only
# airflow-init needs it, so it is checked there, not by every component. From the environment, or
# from the file SLF_READER_PASSWORD_FILE names (a Docker secret).
READER_PASSWORD_ENV = "SLF_READER_PASSWORD"
READER_PASSWORD_FILE_ENV = "SLF_READER_PASSWORD_FILE"
DB_PASSWORD_MIN = 16
USER_PASSWORD_MIN = 12
# Words that mark a value someone copied from an example instead of generating it.
_PLACEHOLDER = re.compile(
    r"change.?me|example|placeholder|password|secret|default|dummy|todo|xxx|admin", re.IGNORECASE
)


class DeploymentError(Exception):
    """A setting or secret the shared deployment refuses to start with (named, its value never shown)."""


def _weakness(value: str, minimum: int) -> str | None:
    if not value:
        return "is not set"
    if _PLACEHOLDER.search(value):
        return "is a placeholder (copied from an example?)"
    if len(value) < minimum:
        return f"is shorter than {minimum} characters"
    if len(set(value)) < min(10, minimum // 2):
        return "repeats too few distinct characters"
    return None


def secret_problems(env: dict[str, str]) -> list[str]:
    """Every placeholder, short or missing secret in `env`, by variable name (values are never shown)."""
    problems = []
    for name, (what, minimum) in SECRETS.items():
        if (why := _weakness(env.get(name, ""), minimum)) is not None:
            problems.append(f"{name} ({what}) {why}")
    for name, what in SECRET_URLS.items():
        url = env.get(name, "")
        if not url or url.startswith(("sqlite:", "redis:")):
            continue
        password = urlsplit(url.removeprefix("db+")).password or ""
        if (why := _weakness(password, DB_PASSWORD_MIN)) is not None:
            problems.append(f"{name}: {what} {why}")
    fernet = env.get(FERNET_KEY, "")
    try:
        from cryptography.fernet import Fernet

        Fernet(fernet.encode())
    except (ValueError, TypeError):
        problems.append(
            f"{FERNET_KEY} (encrypts Connections and Variables in the metadata DB) is not a "
            'Fernet key: generate one with `python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`'
        )
    return problems


def require_strong_secrets(env: dict[str, str]) -> None:
    if problems := secret_problems(env):
        raise DeploymentError("refusing to start: " + "; ".join(problems))


# --- roles -----------------------------------------------------------------------------------------

FINANCE, ANSWER_WRITER, AUDITOR, ADMIN = "slf_finance", "slf_answer_writer", "slf_auditor", "Admin"
SIGNATORY = "slf_signatory"
# Finance staff who may also decide on a refused quality gate (override_decision.py).
FINANCE_LEAD = "slf_finance_lead"
REFRESH_DAG, ANSWER_DAG = "slf_refresh", "slf_answer_inquiry"


def _trigger(dag_id: str) -> list[tuple[str, str]]:
    """Trigger, clear and mark runs of one DAG: FAB asks for edit on the DAG and create/edit on its runs."""
    return [
        ("can_edit", f"DAG:{dag_id}"),
        ("can_create", f"DAG Run:{dag_id}"),
        ("can_edit", f"DAG Run:{dag_id}"),
        ("can_edit", "Task Instances"),
    ]


def role_permissions() -> dict[str, list[tuple[str, str]]]:
    """The project's roles: everyone reads runs, task logs and XComs of both DAGs (FAB's Viewer set);
    finance staff also trigger slf_refresh, answer writers slf_answer_inquiry; auditors trigger nothing
    and also read the audit log.

    Task instances' edit right is global in FAB, but it is only granted together with edit on the DAG,
    so finance staff cannot clear answer runs nor answer writers refresh runs.
    """
    from airflow.providers.fab.auth_manager.security_manager.override import (
        FabAirflowSecurityManagerOverride as Fab,
    )

    viewer = [(action, resource) for action, resource in Fab.VIEWER_PERMISSIONS]
    return {
        FINANCE: viewer + _trigger(REFRESH_DAG),
        # The override decision is a HITL task of slf_refresh assigned to this role (hitl_roles.py):
        # answering it needs edit on the DAG (already there) and on HITL details.
        FINANCE_LEAD: viewer
        + _trigger(REFRESH_DAG)
        + [("can_edit", "HITL Detail"), ("menu_access", "HITL Detail")],
        ANSWER_WRITER: viewer + _trigger(ANSWER_DAG),
        AUDITOR: viewer + [("can_read", "Audit Logs"), ("menu_access", "Audit Logs")],
        # Signatories answer the approvals of answer letters they are assigned to (FAB asks for edit on
        # the DAG and on HITL details); they trigger nothing.
        SIGNATORY: viewer
        + [("can_edit", f"DAG:{ANSWER_DAG}"), ("can_edit", "HITL Detail"), ("menu_access", "HITL Detail")],
    }


# --- users -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserSpec:
    username: str
    role: str
    password: str

    def __repr__(self) -> str:  # a password never reaches a log line
        return f"UserSpec({self.username!r}, {self.role!r})"


_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")


def read_users(path: Path, roles: set[str]) -> list[UserSpec]:
    """The users file: one `username role password` per line (`#` starts a comment); the password is the
    rest of the line. Errors name the file and line, never the password."""
    users: dict[str, UserSpec] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        where = f"{path}, line {number}"
        if len(parts) != 3:
            raise DeploymentError(f"{where}: expected `username role password`")
        username, role, password = parts
        if not _USERNAME.match(username):
            raise DeploymentError(f"{where}: user name {username!r}: lower case letters, digits, . _ - only")
        if role not in roles:
            raise DeploymentError(f"{where}: unknown role {role!r} (one of {', '.join(sorted(roles))})")
        if username in users:
            raise DeploymentError(f"{where}: user {username!r} is listed twice")
        if (why := _weakness(password, USER_PASSWORD_MIN)) is not None or username in password.lower():
            raise DeploymentError(f"{where}: the password of {username!r} {why or 'contains the user name'}")
        users[username] = UserSpec(username, role, password)
    if not any(u.role == ADMIN for u in users.values()):
        raise DeploymentError(f"{path}: no user with role {ADMIN} (someone must manage the others)")
    return list(users.values())


def _sync_roles_and_users(users: list[UserSpec]) -> list[str]:
    """Idempotent: the project's roles get exactly their permissions, each listed user exactly its role
    (password reset only when it changed); users no longer listed are deactivated."""
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

    done = []
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        sm.sync_roles()  # FAB's own roles and the global permissions
        for role_name, wanted in role_permissions().items():
            done.append(_sync_role(sm, role_name, set(wanted)))
        for spec in users:
            done.append(_sync_user(sm, spec))
        listed = {u.username for u in users}
        for user in sm.get_all_users():
            if user.username not in listed and user.active:
                user.active = False
                sm.update_user(user)
                done.append(f"user {user.username}: deactivated (no longer in the users file)")
    return done


def _sync_role(sm: Any, role_name: str, wanted: set[tuple[str, str]]) -> str:
    """The role with exactly the `wanted` (action, resource) permissions (FAB security manager `sm`)."""
    role = sm.add_role(role_name)
    for action, resource in sorted(wanted):
        permission = sm.create_permission(action, resource)
        if permission not in role.permissions:
            sm.add_permission_to_role(role, permission)
    for permission in list(role.permissions):
        if (permission.action.name, permission.resource.name) not in wanted:
            sm.remove_permission_from_role(role, permission)
    return f"role {role_name}: {len(wanted)} permissions"


def _sync_user(sm: Any, spec: UserSpec) -> str:
    """A listed user: created, or given its role, reactivated and its password reset where they differ."""
    from werkzeug.security import check_password_hash

    role = sm.find_role(spec.role)
    user = sm.find_user(username=spec.username)
    if user is None:
        sm.add_user(
            spec.username,
            spec.username,
            spec.role,
            f"{spec.username}@users.invalid",
            role,
            password=spec.password,
        )
        return f"user {spec.username}: created ({spec.role})"
    changed = []
    if [r.name for r in user.roles] != [spec.role]:
        user.roles = [role]
        changed.append("role")
    if not user.active:
        user.active = True
        changed.append("reactivated")
    if changed:
        sm.update_user(user)
    if not check_password_hash(user.password, spec.password):
        sm.reset_password(user.id, spec.password)
        changed.append("password")
    return f"user {spec.username}: " + (", ".join(changed) + " updated" if changed else "unchanged")


def _role_names() -> list[str]:
    return [ADMIN, FINANCE, FINANCE_LEAD, ANSWER_WRITER, AUDITOR, SIGNATORY]


def reader_password(env: dict[str, str]) -> str:
    """The reader role's password (DeploymentError when missing, a placeholder or weak; never shown)."""
    password = env.get(READER_PASSWORD_ENV, "")
    where = READER_PASSWORD_ENV
    if not password and (path := env.get(READER_PASSWORD_FILE_ENV)):
        where = f"{READER_PASSWORD_FILE_ENV} ({path})"
        try:
            password = Path(path).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise DeploymentError(f"{where} cannot be read: {e.strerror}") from None
    if (why := _weakness(password, DB_PASSWORD_MIN)) is not None:
        raise DeploymentError(f"refusing to start: {where} (the warehouse reader's password) {why}")
    if not (password.isascii() and password.isprintable()):
        raise DeploymentError(
            f"refusing to start: {where} (the warehouse reader's password) must be printable ASCII"
        )
    return password


def setup_reader_role(env: dict[str, str]) -> list[str]:
    """With the PostgreSQL warehouse: the login role that may SELECT the published marts and nothing
    else, its password from SLF_READER_PASSWORD (idempotent: every init sets it again)."""
    from slf_warehouse.warehouse_reader import engine_from_env

    if engine_from_env(env) != "postgres":
        return []
    import psycopg2
    from psycopg2.extensions import parse_dsn

    from slf_warehouse.pg_raw import conninfo_from_env, server_name
    from slf_warehouse.warehouse_pg import READER_ROLE, ensure_reader_role

    conninfo, password = conninfo_from_env(env), reader_password(env)
    try:
        ensure_reader_role(conninfo, password)
    except psycopg2.Error as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DeploymentError(
            f"the read-only role {READER_ROLE} could not be set up on the warehouse "
            f"{server_name(conninfo)} as {parse_dsn(conninfo).get('user')} "
            f"({reason}): SLF_PG_USER must own the warehouse database and may create roles "
            f"(the postgres image's POSTGRES_USER does)"
        ) from None
    return [f"warehouse reader role {READER_ROLE}: may read the published marts only"]


def init_deployment(env: dict[str, str] | None = None) -> list[str]:
    """docker-compose's airflow-init: secrets checked, metadata database migrated, pool, roles, users,
    and with the PostgreSQL warehouse its read-only role."""
    from slf_warehouse.airflow_env import setup_metadata_db
    from slf_warehouse.warehouse_reader import engine_from_env

    env = dict(os.environ if env is None else env)
    require_strong_secrets(env)
    if engine_from_env(env) == "postgres":
        reader_password(env)  # refused before anything is set up
    if env.get("AIRFLOW__CORE__AUTH_MANAGER") != FAB_AUTH_MANAGER:
        raise DeploymentError(f"AIRFLOW__CORE__AUTH_MANAGER must be {FAB_AUTH_MANAGER} when shared")
    users_file = env.get(USERS_FILE_ENV)
    if not users_file or not Path(users_file).is_file():
        raise DeploymentError(f"{USERS_FILE_ENV} must name the users file (`username role password` a line)")
    users = read_users(Path(users_file), set(_role_names()))
    setup_metadata_db(env)
    return _sync_roles_and_users(users) + setup_reader_role(env)


def serve(component: list[str], env: dict[str, str] | None = None) -> None:
    """Become `airflow COMPONENT…` once the secrets are checked (never returns)."""
    env = dict(os.environ if env is None else env)
    require_strong_secrets(env)
    airflow = Path(sys.executable).with_name("airflow")
    os.execve(str(airflow), [str(airflow), *component], env)
