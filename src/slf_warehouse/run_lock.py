"""One refresh per output folder at a time: the output lock and the run's lease.

Two refreshes on one output folder overwrite each other's quality suites, and one can publish a
build the other has just pruned. So:

- `slf run` holds an exclusive flock on OUT/.slf-run.lock for its whole life (`hold_output`) and
  hands the locked descriptor and its token (env SLF_RUN_LOCK_TOKEN) to its Airflow process: the
  lock lasts while either lives;
- the refresh's first step claims the folder (`claim`): it writes the lease OUT/.slf-run.json with
  its run id, process and start. Under the scheduler every task is a process of its own, so the
  lease, not a process, marks the run as in progress until its last step `release`s it;
- a second refresh is refused with RunInProgress naming the holder. A lease whose run is gone
  (its `slf run` no longer holds the lock, its process is dead, its DagRun is no longer running)
  is an orphan: `claim` hands it to the claimant, which records it and removes its build.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from slf_warehouse.file_modes import PRIVATE_FILE_MODE, write_private

LOCK_FILE = ".slf-run.lock"
LEASE_FILE = ".slf-run.json"
TOKEN_ENV = "SLF_RUN_LOCK_TOKEN"
# Only for a lease whose liveness cannot be asked (another host, no Airflow to ask): no refresh
# runs this long, so such a lease is taken to be left over.
UNVERIFIABLE_LEASE_EXPIRES = timedelta(hours=12)

VIA_SLF_RUN = "slf run"  # alive while its `slf run` holds the lock (token)
VIA_AIRFLOW = "airflow"  # alive while its DagRun is queued or running
VIA_PROCESS = "process"  # pipeline steps called directly: alive while its process is


class RunInProgress(Exception):
    """Another refresh holds the output folder; the message names it."""


@dataclass(frozen=True)
class Holder:
    """Who holds the output folder: what the lock file and the lease record."""

    via: str
    pid: int
    host: str
    since: str
    run_id: str | None = None
    token: str | None = None

    def describe(self) -> str:
        run = f"run {self.run_id}" if self.run_id else "a refresh whose Airflow run has not started yet"
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"{run} ({self.via}, pid {self.pid}{where}, since {self.since})"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _read(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return Holder(**data) if isinstance(data, dict) else None


def _open_lock(out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    return os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


def _lock_holder(out_dir: Path) -> Holder | None:
    # The lock file's content says who holds the flock; written by the holder once it has it.
    return _read(out_dir / LOCK_FILE)


def _refusal(out_dir: Path, holder: Holder | None) -> RunInProgress:
    lease = _read(out_dir / LEASE_FILE)
    if holder is not None and lease is not None and lease.token and lease.token == holder.token:
        holder = lease  # the lease knows the run id
    who = holder.describe() if holder else "another refresh"
    return RunInProgress(
        f"the output folder {out_dir} is in use by {who}: one refresh per output folder "
        f"at a time. Wait for it to finish, or use another --out."
    )


class OutputLock:
    """The flock `slf run` holds for its whole life (see hold_output)."""

    def __init__(self, out_dir: Path, fd: int, holder: Holder):
        self.out_dir, self.fd, self.holder = out_dir, fd, holder

    @property
    def token(self) -> str:
        assert self.holder.token
        return self.holder.token

    def env(self) -> dict[str, str]:
        """For the child that shares the lock (pass `fd` to it in pass_fds as well)."""
        return {TOKEN_ENV: self.token}


@contextmanager
def hold_output(out_dir: Path, via: str = VIA_SLF_RUN) -> Iterator[OutputLock]:
    """Hold OUT's lock until the block ends; RunInProgress at once if another refresh holds it."""
    out_dir = Path(out_dir)
    fd = _open_lock(out_dir)
    try:
        if not _try_flock(fd):
            raise _refusal(out_dir, _lock_holder(out_dir))
        holder = Holder(
            via=via, pid=os.getpid(), host=socket.gethostname(), since=_now(), token=uuid.uuid4().hex
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        yield OutputLock(out_dir, fd, holder)
        os.ftruncate(fd, 0)  # a refresh that waits for nobody reads no stale holder
    finally:
        os.close(fd)  # the flock goes with the last descriptor (the child's copy, if it still runs)


@contextmanager
def _exclusive(out_dir: Path) -> Iterator[str | None]:
    """The lock for a moment (check-and-write of the lease), or proof that our own `slf run` holds
    it. Yields the token of the `slf run` that holds it for us, or None when we took it ourselves."""
    fd = _open_lock(out_dir)
    try:
        if _try_flock(fd):
            yield None
            return
        holder = _lock_holder(out_dir)
        ours = os.environ.get(TOKEN_ENV)
        if not (ours and holder and holder.token == ours):
            raise _refusal(out_dir, holder)
        yield ours
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lease_alive(lease: Holder, cli_token: str | None, dagrun_alive: Callable[[str], bool] | None) -> bool:
    """Whether the lease's run still runs. Called while we hold the lock (ourselves or via our CLI)."""
    if lease.via == VIA_SLF_RUN:
        return bool(lease.token) and lease.token == cli_token
    if lease.via == VIA_AIRFLOW and dagrun_alive is not None and lease.run_id:
        return dagrun_alive(lease.run_id)
    if lease.via == VIA_PROCESS and lease.host == socket.gethostname():
        return _pid_alive(lease.pid)
    since = datetime.fromisoformat(lease.since)
    return datetime.now(UTC) - since < UNVERIFIABLE_LEASE_EXPIRES


def _new_lease(
    out_dir: Path, run_id: str, cli_token: str | None, dagrun_alive: Callable[[str], bool] | None
) -> Holder:
    cli = _lock_holder(out_dir) if cli_token else None
    if cli is not None:  # named after the `slf run` a person started (its pid is the one to look for)
        return Holder(
            via=VIA_SLF_RUN, pid=cli.pid, host=cli.host, since=cli.since, run_id=run_id, token=cli_token
        )
    via = VIA_AIRFLOW if dagrun_alive else VIA_PROCESS
    return Holder(via=via, pid=os.getpid(), host=socket.gethostname(), since=_now(), run_id=run_id)


def dagrun_state_is_live(state: object) -> bool:
    """A DagRun state (Airflow's DagRunState enum, whose str() is "DagRunState.RUNNING", or its value)."""
    return getattr(state, "value", state) in ("queued", "running")


def claim(out_dir: Path, run_id: str, dagrun_alive: Callable[[str], bool] | None = None) -> Holder | None:
    """Take the output folder for `run_id` (the refresh's first step). RunInProgress if another run
    holds it; returns the lease of a run that held it and is gone (an orphan), else None.

    `dagrun_alive(run_id)` says whether an Airflow run is still queued or running; inside an Airflow
    task the run is recorded as via airflow (its liveness is its DagRun's state)."""
    out_dir = Path(out_dir)
    with _exclusive(out_dir) as cli_token:
        lease = _read(out_dir / LEASE_FILE)
        orphan = None
        if lease is not None and lease.run_id != run_id:
            if _lease_alive(lease, cli_token, dagrun_alive):
                raise _refusal(out_dir, lease)
            orphan = lease
        if lease is None or lease.run_id != run_id:  # a retried first step keeps its lease
            # whole or nothing: a reader never sees half a lease
            lease = _new_lease(out_dir, run_id, cli_token, dagrun_alive)
            write_private(out_dir / LEASE_FILE, json.dumps(asdict(lease)))
    return orphan


def lease(out_dir: Path) -> Holder | None:
    """The run that holds the output folder now, if any."""
    return _read(Path(out_dir) / LEASE_FILE)


def check_own(out_dir: Path, run_id: str) -> None:
    """RunInProgress unless `run_id` holds the output folder's lease (publish checks it)."""
    current = lease(out_dir)
    if current is None or current.run_id != run_id:
        who = current.describe() if current else "no run"
        raise RunInProgress(
            f"run {run_id} does not hold the output folder {out_dir} (held by {who}): it may not publish"
        )


def release(out_dir: Path, run_id: str) -> bool:
    """The run's last step: drop its lease (another run's lease stays). True if it was there."""
    out_dir = Path(out_dir)
    current = lease(out_dir)
    if current is None or current.run_id != run_id:
        return False
    (out_dir / LEASE_FILE).unlink(missing_ok=True)
    return True
