"""`docker compose up` for real: the images build, the Celery profile starts, a refresh runs in containers.

What an operator does on the first day (docs/deploy.md, "Start it"), on this machine's Docker engine:
the Dockerfile built on a Debian 12 base made from Debian's packages (no registry is reachable here;
docker/make-base-image.sh), PostgreSQL and Redis from images built on the same base
(docker/compose.test.yml, the only difference from docker-compose.yml), a generated .env and users
file, `docker-compose --profile celery up -d`. Then: every service healthy or running, airflow-init
done, a login through the REST API published on 127.0.0.1, the auditor's trigger refused, the finance
user's slf_refresh on the sample data in the landing folder succeeding, and the answer PDF in the
output folder stating the sample's figures and owned by AIRFLOW_UID (the host user; when the tests
run as root, a uid that is neither root nor the image's own user, so the mapping is shown to work).

The engine: the one answering on the default socket, or a `dockerd` this test starts (as root) and
stops. `docker-compose down -v` runs at the end, also when the test fails; images are kept so the next
run builds from cache. Skipped, with the reason, when the Debian packages are missing or no engine
can be started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from airflow_rest import login, trigger_first_refresh
from postgres_server import free_port
from service_processes import ProcessGroups, wait_for
from test_celery_deployment import USERS, _pdf_text, dotenv

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "slf-local/debian:bookworm"
# image -> (Dockerfile, context); the first is the one docker-compose.yml names, the others
# docker/compose.test.yml's stand-ins for the official postgres and redis images.
IMAGES = {
    "slf-warehouse:latest": (PROJECT / "Dockerfile", PROJECT),
    "slf-local/postgres:15": (PROJECT / "docker" / "postgres.Dockerfile", PROJECT / "docker"),
    "slf-local/redis:7": (PROJECT / "docker" / "redis.Dockerfile", PROJECT / "docker"),
}
# Neither root nor the image's own user (50000): any host uid must own what the containers write.
UID_WHEN_ROOT = 51234
# The host's CA bundle, for pip behind this network's TLS inspection (a build secret, in no layer).
CA_BUNDLE = Path(os.environ.get("SLF_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"))
ANSWER = "answers/enhedslisten-slf.pdf"
FIGURES = ("26 mio. kr.", "6,6 mio. kr.", "16 læringspartnere")


def _docker_cli() -> str | None:
    # Debian's client matches Debian's engine (docker.io); another client on PATH may not build with it.
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker")


def _run(
    argv: list[str], timeout: float, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    """The docker client, with an engine answering: the running one, or a dockerd started (and
    stopped) here."""
    missing = [
        tool
        for tool, found in (
            ("docker (docker.io)", _docker_cli()),
            ("dockerd", shutil.which("dockerd")),
            ("docker-compose", shutil.which("docker-compose")),
            ("debootstrap", shutil.which("debootstrap")),
        )
        if not found
    ]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (make system-deps installs them)")
    docker = _docker_cli()
    procs = ProcessGroups(tmp_path_factory.mktemp("dockerd"))
    if _run([docker, "info"], 30).returncode != 0:
        if os.geteuid() != 0:
            pytest.skip("no Docker engine answers and starting dockerd needs root")
        procs.start("dockerd", ["dockerd"], env={"PATH": os.environ["PATH"]})
        try:
            wait_for(
                lambda: True if _run([docker, "info"], 30).returncode == 0 else None,
                60,
                "dockerd answering",
                alive=procs.check_running,
            )
        except (TimeoutError, RuntimeError) as exc:
            procs.stop_all()
            pytest.skip(f"no Docker engine could be started: {exc}\n{procs.log_tail('dockerd', 1500)}")
    try:
        yield docker
    finally:
        procs.stop_all(grace=30)
        assert all(p.poll() is not None for p in procs.procs.values()), "dockerd still running"


@pytest.fixture(scope="module")
def images(engine: str) -> dict[str, float]:
    """The base image and the three images built; seconds per step (cached steps take a few seconds)."""
    seconds = {}
    started = time.monotonic()
    made = _run(
        [str(PROJECT / "docker" / "make-base-image.sh"), BASE_IMAGE],
        900,
        env={**os.environ, "DOCKER": engine},
    )
    assert made.returncode == 0, made.stdout + made.stderr
    seconds["base image"] = time.monotonic() - started
    secret = ["--secret", f"id=ca_bundle,src={CA_BUNDLE}"] if CA_BUNDLE.is_file() else []
    for image, (dockerfile, context) in IMAGES.items():
        started = time.monotonic()
        built = _run(
            [
                engine,
                "build",
                "--progress=plain",
                *secret,
                "--build-arg",
                f"BASE_IMAGE={BASE_IMAGE}",
                "-f",
                str(dockerfile),
                "-t",
                image,
                str(context),
            ],
            1800,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
        assert built.returncode == 0, f"docker build {image}:\n{built.stdout[-3000:]}\n{built.stderr[-5000:]}"
        seconds[image] = time.monotonic() - started
    print("build seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    return seconds


class Stack:
    def __init__(self, engine: str, work: Path, variables: dict[str, str]):
        self.engine, self.work, self.variables = engine, work, variables
        self.project = variables["COMPOSE_PROJECT_NAME"]
        self.base = f"http://127.0.0.1:{variables['SLF_API_PORT']}"
        self.uid = int(variables["AIRFLOW_UID"])
        self.output = Path(variables["SLF_OUTPUT_PATH"])

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        # Compose prefers the shell's variables to the env file's: give it none (this test process
        # has a short SLF_PSEUDONYM_KEY of its own, conftest), so .env alone says what runs.
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "LANG")}
        return _run(
            [
                "docker-compose",
                "--env-file",
                str(self.work / ".env"),
                "-f",
                str(PROJECT / "docker-compose.yml"),
                "-f",
                str(PROJECT / "docker" / "compose.test.yml"),
                "--profile",
                "celery",
                *args,
            ],
            timeout,
            env=env,
            cwd=PROJECT,
        )

    def container(self, service: str) -> str:
        ids = self.compose("ps", "-q", service, timeout=60).stdout.split()
        assert len(ids) == 1, (service, ids)
        return ids[0]

    def state(self, service: str) -> dict:
        import json

        out = _run([self.engine, "inspect", "-f", "{{json .State}}", self.container(service)], 60)
        return json.loads(out.stdout)

    def logs(self, tail: int = 40) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), timeout=120).stdout[-12000:]


@pytest.fixture(scope="module")
def stack(engine: str, images: dict[str, float], tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("docker-compose")
    variables = dotenv(work)
    variables.update(
        {
            "COMPOSE_PROJECT_NAME": f"slf-dockertest-{secrets.token_hex(3)}",
            "AIRFLOW_UID": str(os.getuid() or UID_WHEN_ROOT),
            "SLF_API_PORT": str(free_port()),
        }
    )
    (work / ".env").write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
    passwords = {user: secrets.token_urlsafe(18) for user in USERS}
    users_file = Path(variables["SLF_USERS_PATH"])
    users_file.write_text("".join(f"{u} {USERS[u]} {p}\n" for u, p in passwords.items()))
    users_file.chmod(0o600)
    from slf_warehouse.sample_data import write_sample_data

    write_sample_data(Path(variables["SLF_LANDING_PATH"]))
    Path(variables["SLF_OUTPUT_PATH"]).mkdir()
    uid = int(variables["AIRFLOW_UID"])
    if os.getuid() == 0:  # the operator's own files are theirs already; root hands them to AIRFLOW_UID
        for path in (users_file, Path(variables["SLF_LANDING_PATH"]), Path(variables["SLF_OUTPUT_PATH"])):
            for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
                os.chown(p, uid, 0)

    s = Stack(engine, work, variables)
    try:
        started = time.monotonic()
        up = s.compose("up", "-d", "--no-build")
        assert up.returncode == 0, f"{up.stderr[-3000:]}\n{s.logs()}"

        def healthy():
            if s.state("airflow-init")["Status"] == "exited":
                assert s.state("airflow-init")["ExitCode"] == 0, s.logs()
            for service in (
                "airflow-scheduler",
                "airflow-dag-processor",
                "airflow-triggerer",
                "airflow-worker",
            ):
                state = s.state(service)
                assert state["Status"] == "running" and not state["Restarting"], (service, state, s.logs())
            return True if s.state("airflow-apiserver").get("Health", {}).get("Status") == "healthy" else None

        wait_for(healthy, 400, "the api-server's health check passing", step=3)
        s.start_seconds = time.monotonic() - started
        print(f"docker-compose up to healthy: {s.start_seconds:.1f} s")
        for password in passwords.values():
            assert password not in s.compose("logs", "--no-color", "airflow-init", timeout=120).stdout
        s.passwords = passwords
        yield s
    finally:
        down = s.compose("down", "-v", "--remove-orphans", timeout=300)
        left = _run(
            [engine, "ps", "-aq", "--filter", f"label=com.docker.compose.project={s.project}"], 60
        ).stdout
        volumes = _run(
            [engine, "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={s.project}"], 60
        ).stdout
        assert down.returncode == 0 and not left.strip() and not volumes.strip(), (
            down.stderr[-2000:],
            left,
            volumes,
        )


def _token(s: Stack, user: str) -> requests.Session:
    return login(s.base, user, s.passwords[user])


def test_refresh_in_containers(stack: Stack) -> None:
    s = stack
    wrong = requests.post(
        f"{s.base}/auth/token",
        json={"username": "finance", "password": "x" + secrets.token_hex(8)},
        timeout=30,
    )
    assert wrong.status_code == 401, wrong.text[:300]
    finance, auditor = _token(s, "finance"), _token(s, "auditor")
    wait_for(
        lambda: (
            True if finance.get(f"{s.base}/api/v2/dags/slf_refresh", timeout=10).status_code == 200 else None
        ),
        300,
        "slf_refresh parsed by the dag-processor",
        step=3,
    )
    refused = auditor.post(
        f"{s.base}/api/v2/dags/slf_refresh/dagRuns", json={"logical_date": None}, timeout=30
    )
    assert refused.status_code == 403, refused.text[:300]

    started = time.monotonic()
    run_id = trigger_first_refresh(finance, s.base)

    def finished():
        r = finance.get(f"{s.base}/api/v2/dags/slf_refresh/dagRuns/{run_id}", timeout=30)
        state = r.json()["state"] if r.status_code == 200 else None
        return state if state in ("success", "failed") else None

    state = wait_for(finished, 1200, "the refresh in containers finishing", step=5)
    seconds = time.monotonic() - started
    tis = finance.get(
        f"{s.base}/api/v2/dags/slf_refresh/dagRuns/{run_id}/taskInstances", params={"limit": 500}, timeout=30
    ).json()["task_instances"]
    assert state == "success", (
        f"run {run_id} {state}: "
        + ", ".join(f"{t['task_id']}={t['state']}" for t in tis if t["state"] != "success")
        + "\n"
        + s.logs()
    )
    hosts = {t["hostname"] for t in tis if t["hostname"]}
    print(f"refresh in containers: {seconds:.1f} s, {len(tis)} task instances, on {sorted(hosts)}")
    # The tasks ran in the worker container (its host name is its container id), not on this machine.
    assert hosts == {s.container("airflow-worker")[:12]}, hosts

    answer = s.output / ANSWER
    text = _pdf_text(answer)
    for figure in FIGURES:
        assert figure in text, figure
    assert answer.stat().st_uid == s.uid, (answer.stat().st_uid, s.uid)
    # Everything the containers wrote into the output folder belongs to the host user.
    foreign = [str(p.relative_to(s.output)) for p in s.output.rglob("*") if p.lstat().st_uid != s.uid]
    assert not foreign, foreign[:20]
