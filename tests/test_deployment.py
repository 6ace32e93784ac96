"""The shared deployment refuses placeholder and short secrets, reads its users from a secret file,
masks the pseudonymisation key's Variable; `slf airflow` keeps its password file private."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import compose_env
from slf_warehouse.deployment import (
    ADMIN,
    ANSWER_WRITER,
    AUDITOR,
    FINANCE,
    DeploymentError,
    read_users,
    role_permissions,
    secret_problems,
)

PROJECT = Path(__file__).resolve().parents[1]
ROLES = {ADMIN, FINANCE, ANSWER_WRITER, AUDITOR}


def _compose_env(variables: dict[str, str]) -> dict[str, str]:
    env = compose_env.load(variables)["services"]["airflow-scheduler"]["environment"]
    return {k: str(v) for k, v in env.items()}


def _strong() -> dict[str, str]:
    from cryptography.fernet import Fernet

    values = compose_env.read_env_file(PROJECT / ".env.example")
    values.update(
        {
            "AIRFLOW_DB_PASSWORD": secrets.token_hex(16),
            "SLF_PG_PASSWORD": secrets.token_hex(16),
            "AIRFLOW_JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW_API_SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW_FERNET_KEY": Fernet.generate_key().decode(),
            "SLF_PSEUDONYM_KEY": secrets.token_hex(32),
        }
    )
    return values


def test_env_example_is_refused_at_start() -> None:
    """`.env.example` satisfies every `${VAR:?}` of the compose file, but no component starts with it."""
    env = _compose_env(compose_env.read_env_file(PROJECT / ".env.example"))
    problems = "\n".join(secret_problems(env))
    for name in (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "SLF_PSEUDONYM_KEY",
        "SLF_PG_PASSWORD",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CORE__FERNET_KEY",
    ):
        assert name in problems, name
    assert "change-me" not in problems  # values are named, never shown
    result = subprocess.run(
        [sys.executable, "-m", "slf_warehouse.cli", "deploy", "serve", "scheduler"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "refusing to start" in result.stderr, result.stderr[-2000:]


def test_generated_secrets_pass_and_short_ones_do_not() -> None:
    values = _strong()
    assert secret_problems(_compose_env(values)) == []
    values["AIRFLOW_JWT_SECRET"] = secrets.token_hex(16)  # 32 characters: Airflow wants 64 bytes
    values["AIRFLOW_DB_PASSWORD"] = "Kq7zP2w"
    problems = secret_problems(_compose_env(values))
    assert len(problems) == 3, problems  # JWT secret, metadata DB URL, result backend URL
    assert all("shorter than" in p for p in problems), problems


def _users(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users"
    path.write_text(text, encoding="utf-8")
    return path


def test_users_file(tmp_path: Path) -> None:
    good = {u: secrets.token_urlsafe(18) for u in ("ops", "hanne", "peter", "revisor")}
    path = _users(
        tmp_path,
        f"# username role password\nops Admin {good['ops']}\n\nhanne slf_finance {good['hanne']}\n"
        f"peter slf_answer_writer {good['peter']}\nrevisor slf_auditor {good['revisor']}\n",
    )
    users = read_users(path, ROLES)
    assert [(u.username, u.role, u.password) for u in users] == [
        ("ops", ADMIN, good["ops"]),
        ("hanne", FINANCE, good["hanne"]),
        ("peter", ANSWER_WRITER, good["peter"]),
        ("revisor", AUDITOR, good["revisor"]),
    ]
    assert good["ops"] not in repr(users)
    strong = secrets.token_urlsafe(18)
    for text, expected in [
        (
            f"ops Admin {strong}\nhanne slf_finance change-me-please\n",
            "line 2: the password of 'hanne' is a placeholder",
        ),
        (
            f"ops Admin {strong}\nhanne slf_finance Kq7zP2\n",
            "line 2: the password of 'hanne' is shorter than 12",
        ),
        (f"ops Admin {strong}\nhanne Viewer {strong}\n", "line 2: unknown role 'Viewer'"),
        (f"ops Admin {strong}\nhanne slf_finance\n", "line 2: expected `username role password`"),
        (f"ops Admin {strong}\nops slf_finance {strong}\n", "line 2: user 'ops' is listed twice"),
        (f"hanne slf_finance {strong}\n", "no user with role Admin"),
    ]:
        with pytest.raises(DeploymentError) as caught:
            read_users(_users(tmp_path, text), ROLES)
        assert expected in str(caught.value) and strong not in str(caught.value), (
            expected,
            str(caught.value),
        )


@pytest.mark.airflow  # imports FAB's security manager
def test_roles_trigger_only_their_dag() -> None:
    roles = role_permissions()
    assert ("can_edit", "DAG:slf_refresh") in roles[FINANCE] and (
        "can_create",
        "DAG Run:slf_refresh",
    ) in roles[FINANCE]
    assert ("can_edit", "DAG:slf_answer_inquiry") in roles[ANSWER_WRITER]
    for role, own in ((FINANCE, "slf_refresh"), (ANSWER_WRITER, "slf_answer_inquiry"), (AUDITOR, None)):
        edits = {
            r
            for a, r in roles[role]
            if a in ("can_edit", "can_create", "can_delete")
            and (r.startswith(("DAG:", "DAG Run:")) or r in ("DAGs", "DAG Runs"))
        }
        assert edits == ({f"DAG:{own}", f"DAG Run:{own}"} if own else set()), (role, edits)
        assert ("can_read", "Task Logs") in roles[role] and ("can_read", "DAG Runs") in roles[role]
    assert ("can_read", "Audit Logs") in roles[AUDITOR]


@pytest.mark.airflow  # imports Airflow's secrets masker
def test_pseudonym_key_variable_is_masked() -> None:
    """Airflow redacts a Variable by its name (UI, REST API, task logs): the old name was shown in clear."""
    from airflow._shared.secrets_masker import redact

    from slf_warehouse.ingest.pseudonym import KEY_VARIABLE, OLD_KEY_VARIABLE

    key = secrets.token_hex(32)
    assert redact(key, KEY_VARIABLE) == "***"
    assert redact(key, OLD_KEY_VARIABLE) == key  # why it was renamed


def test_local_password_file_is_private(tmp_path: Path) -> None:
    from slf_warehouse.local_airflow import private_password_file

    env = {"AIRFLOW_HOME": str(tmp_path)}
    old = tmp_path / "simple_auth_manager_passwords.json.generated"
    old.write_text('{"admin": "x"}\n')
    old.chmod(0o644)  # as `airflow standalone` left it
    path = private_password_file(env)
    assert path == old and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == '{"admin": "x"}\n'  # kept: the user's password stays the same
    old.unlink()
    assert stat.S_IMODE(private_password_file(env).stat().st_mode) == 0o600


@pytest.mark.postgres  # starts a throw-away PostgreSQL server
def test_init_sets_up_the_warehouse_reader_from_its_secret(tmp_path: Path, tmp_path_factory) -> None:
    """With SLF_WAREHOUSE_ENGINE=postgres, init refuses a weak SLF_READER_PASSWORD (naming the
    variable, not the value) and otherwise creates slf_reader with it, from the environment or the
    secret file: it logs in and reads the published marts, not raw."""
    import psycopg2

    from postgres_server import throwaway_postgres
    from slf_warehouse.deployment import reader_password, setup_reader_role

    assert setup_reader_role({"SLF_WAREHOUSE_ENGINE": "duckdb"}) == []  # no server, no role
    for weak in ("change-me", "short-1a2b", ""):
        with pytest.raises(
            DeploymentError, match="SLF_READER_PASSWORD .*the warehouse reader's password"
        ) as e:
            reader_password({"SLF_READER_PASSWORD": weak})
        assert not weak or weak not in str(e.value)
    secret = tmp_path / "reader_password"
    password = secrets.token_hex(16)
    secret.write_text(password + "\n")
    with throwaway_postgres(tmp_path_factory, "slf", "slf_warehouse") as pg:
        pg.execute(
            "create schema raw",
            "create table raw.loen (beloeb numeric)",
            "create schema marts",
            "create view marts.fct_x as select 1 as n",
            database="slf_warehouse",
        )
        env = {"SLF_WAREHOUSE_ENGINE": "postgres", **pg.env(), "SLF_READER_PASSWORD_FILE": str(secret)}
        lines = setup_reader_role(env)
        assert lines and password not in " ".join(lines)
        con = psycopg2.connect(
            host=pg.host, port=pg.port, user="slf_reader", password=password, dbname="slf_warehouse"
        )
        try:
            with con.cursor() as cur:
                cur.execute("select n from marts.fct_x")
                assert cur.fetchall() == [(1,)]
            con.rollback()
            with con.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("select * from raw.loen")
        finally:
            con.close()
        # again from the environment with a new password: the role follows the secret
        new = secrets.token_hex(16)
        setup_reader_role({**env, "SLF_READER_PASSWORD": new})
        with pytest.raises(psycopg2.OperationalError):
            psycopg2.connect(
                host=pg.host, port=pg.port, user="slf_reader", password=password, dbname="slf_warehouse"
            ).close()
        psycopg2.connect(
            host=pg.host, port=pg.port, user="slf_reader", password=new, dbname="slf_warehouse"
        ).close()


@pytest.mark.postgres  # starts a throw-away PostgreSQL server
def test_a_warehouse_user_that_cannot_create_the_reader_is_a_clear_error(tmp_path_factory) -> None:
    from postgres_server import throwaway_postgres
    from slf_warehouse.deployment import setup_reader_role

    owner_password = secrets.token_hex(16)
    with throwaway_postgres(tmp_path_factory, "slf", "slf_warehouse") as pg:
        pg.execute(
            ("create role plain login password %s", (owner_password,)),
            "alter database slf_warehouse owner to plain",
        )
        env = {
            "SLF_WAREHOUSE_ENGINE": "postgres",
            **pg.env(),
            "SLF_PG_USER": "plain",
            "SLF_PG_PASSWORD": owner_password,
            "SLF_READER_PASSWORD": secrets.token_hex(16),
        }
        with pytest.raises(
            DeploymentError, match="slf_reader could not be set up .* as plain .*permission denied"
        ) as e:
            setup_reader_role(env)
        assert owner_password not in str(e.value) and env["SLF_READER_PASSWORD"] not in str(e.value)
