"""docker-compose.yml validates against the Compose file schema and keeps its secrets out of git."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
SCHEMA = Path(sys.prefix) / "compose_spec.json"  # fetched by `make setup` from the docker-compose wheel


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_file_matches_the_schema(compose: dict) -> None:
    validator = jsonschema.Draft201909Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    validator.validate(compose)
    # The schema is strict enough to catch a typo.
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"services": {"airflow-scheduler": {"imagee": "slf-warehouse:latest"}}})


def test_services_and_profiles(compose: dict) -> None:
    services = compose["services"]
    for name in (
        "airflow-db",
        "warehouse-db",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    ):
        assert name in services and "profiles" not in services[name], name
    assert services["airflow-worker"]["profiles"] == ["celery"]
    assert services["redis"]["profiles"] == ["celery"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)  # nothing listens beyond the host
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")


def test_logins_secrets_and_log_servers(compose: dict) -> None:
    from slf_warehouse.deployment import FAB_AUTH_MANAGER, SECRETS

    services = compose["services"]
    airflow = {n: s for n, s in services.items() if n.startswith("airflow-") and n != "airflow-db"}
    for name, service in airflow.items():
        env = service["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER, name
        assert not any("SIMPLE_AUTH_MANAGER" in k for k in env), name  # no generated plain-text passwords
        for secret in (*SECRETS, "AIRFLOW__CORE__FERNET_KEY"):
            assert str(env[secret]).startswith("${") and ":?" in str(env[secret]), (name, secret)
        assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"].isdigit()
        command = service["command"]
        # Every component checks the secrets before it starts (slf deploy serve / init).
        assert command[:5] in (
            ["python", "-m", "slf_warehouse.cli", "deploy", "serve"],
            ["python", "-m", "slf_warehouse.cli", "deploy", "init"],
        ), (name, command)
        # Airflow's log servers bind every interface: none runs; the api-server reads the shared log volume.
        if command[5:6] in (["scheduler"], ["triggerer"], ["celery"]):
            assert "--skip-serve-logs" in command, name
        assert "airflow-logs:/opt/airflow/logs" in service["volumes"], name
    init = services["airflow-init"]
    assert (
        init["secrets"] == ["slf_users"] and init["environment"]["SLF_USERS_FILE"] == "/run/secrets/slf_users"
    )
    assert compose["secrets"]["slf_users"]["file"].startswith("${SLF_USERS_PATH:?")
    assert all("secrets" not in s for n, s in services.items() if n != "airflow-init")


def test_secrets_come_from_env_file_only() -> None:
    text = (PROJECT / "docker-compose.yml").read_text(encoding="utf-8")
    referenced = set(re.findall(r"\$\{([A-Z_]+)", text))
    example = (PROJECT / ".env.example").read_text(encoding="utf-8")
    declared = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert referenced <= declared, referenced - declared
    for secret in ("PASSWORD", "SECRET", "KEY"):
        for line in text.splitlines():
            if secret in line and ":" in line and "${" not in line:
                pytest.fail(f"a literal secret in docker-compose.yml: {line.strip()}")
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=PROJECT).returncode == 0
    assert ignored, ".env must be ignored by git"
