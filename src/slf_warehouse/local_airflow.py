"""`slf airflow`: api-server, scheduler, dag-processor and triggerer on one laptop, on loopback only.

`airflow standalone` would do this too, but its scheduler and triggerer start Airflow's log servers
on every interface (ports 8793/8794; the log server binds all addresses, with no setting for it).
Here every component runs on this machine and writes its logs into AIRFLOW_HOME/logs, which the
api-server reads directly, so the log servers are not started at all (`--skip-serve-logs`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

COMPONENTS = (
    ["api-server"],
    ["scheduler", "--skip-serve-logs"],
    ["dag-processor"],
    ["triggerer", "--skip-serve-logs"],
)
STOP_GRACE_S = 20


def private_password_file(env: dict[str, str]) -> Path:
    """SimpleAuthManager keeps its generated plain-text passwords in this file, opened in append mode:
    created here first with mode 0600 it stays readable by this user only."""
    path = Path(
        env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
        or Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    )
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)
    return path


def run_components(env: dict[str, str]) -> int:
    """Start the components in this process group, wait until one ends or a signal comes, stop them all."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    procs = [subprocess.Popen([airflow, *args], env=env) for args in COMPONENTS]
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for s, handler in previous.items():
            signal.signal(s, handler)
    failed = [
        " ".join(a)
        for a, p in zip(COMPONENTS, procs, strict=True)
        if p.returncode not in (0, -signal.SIGTERM)
    ]
    if failed and not stopping:
        print(f"slf airflow: stopped because {', '.join(failed)} ended", file=sys.stderr)
        return 1
    return 0
