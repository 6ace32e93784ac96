"""A throw-away PostgreSQL server on loopback (Debian's postgresql 15: initdb + pg_ctl), for the tests
and for `make bench ENGINE=postgres` on a laptop without a server of its own.

TCP on 127.0.0.1 only, a free port, no Unix socket, fsync off: it lives for one test module or one
bench run and is stopped (and its files removed) when the block ends, also when the block fails.
PostgreSQL refuses to run as root: as root, the server runs as the `postgres` system user
(`runuser`) from a private directory under the system temp dir (a root-owned 0700 folder, such as
pytest's tmp dirs, could not be entered by `postgres`).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path(os.environ.get("SLF_PG_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresUnavailable(Exception):
    """This machine cannot run a throw-away server (no binaries, or root without a `postgres` user)."""


class PostgresFailed(RuntimeError):
    """initdb or the server's start failed; the message holds their output (never the password)."""


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    # the cluster's data directory when this process started the server (postmaster.pid is there)
    data_dir: Path | None = field(default=None, compare=False)

    def conninfo(self, database: str | None = None) -> str:
        from psycopg2.extensions import make_dsn

        return make_dsn(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
        )

    def env(self) -> dict[str, str]:
        """What dbt's `postgres` target (profiles.yml) and pg_raw.conninfo_from_env read."""
        return {
            "SLF_PG_HOST": self.host,
            "SLF_PG_PORT": str(self.port),
            "SLF_PG_USER": self.user,
            "SLF_PG_PASSWORD": self.password,
            "SLF_PG_DATABASE": self.database,
        }

    def execute(self, *statements: tuple[str, tuple] | str, database: str = "postgres") -> None:
        """Statements run as the superuser in autocommit (CREATE DATABASE cannot run in a transaction)."""
        import psycopg2

        con = psycopg2.connect(self.conninfo(database))
        try:
            con.autocommit = True
            with con.cursor() as cur:
                for statement in statements:
                    sql, params = (statement, ()) if isinstance(statement, str) else statement
                    cur.execute(sql, params)
        finally:
            con.close()

    def postmaster_pid(self) -> int | None:
        """The server's main process (its backends are its children), when this process started it."""
        if self.data_dir is None:
            return None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_folder(base_dir: Path | None) -> tuple[Path, list[str], tuple[int, int] | None, bool]:
    """(folder, command prefix, (uid, gid) to give the server's files to, remove the folder after?)."""
    if os.geteuid() != 0:
        if base_dir is not None:
            return base_dir, [], None, False
        return Path(tempfile.mkdtemp(prefix="slf-pg-")), [], None, True
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailable(
            "running as root and there is no `postgres` user to run the server as"
        ) from None
    base = Path(tempfile.mkdtemp(prefix="slf-pg-"))
    os.chown(base, owner.pw_uid, owner.pw_gid)
    return base, ["runuser", "-u", "postgres", "--"], (owner.pw_uid, owner.pw_gid), True


def _listen_settings(port: int) -> str:
    return "\n".join(
        [
            "",
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            "unix_socket_directories = ''",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "",
        ]
    )


@contextmanager
def throwaway_postgres(superuser: str, database: str, base_dir: Path | None = None) -> Iterator[PgServer]:
    """A running server with `superuser` (random password) and an empty `database`; stopped on exit.
    Its files go to `base_dir` (an empty folder this user owns) or, as root or when not given, to a
    private temp folder removed afterwards."""
    if not (PG_BIN / "initdb").exists():
        raise PostgresUnavailable(f"no PostgreSQL binaries in {PG_BIN} (set SLF_PG_BIN)")
    base, prefix, owner, remove_base = _server_folder(base_dir)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*prefix, *args], cwd=base, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise PostgresFailed(
                f"{Path(args[0]).name} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        return result

    data, log = base / "data", base / "server.log"
    password = secrets.token_hex(16)
    started = False
    try:
        pwfile = base / "pwfile"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if owner:
            os.chown(pwfile, *owner)
        initdb = [str(PG_BIN / "initdb"), "-D", str(data), "-U", superuser, f"--pwfile={pwfile}"]
        run(*initdb, "--auth=scram-sha-256", "-E", "UTF8", "--locale=C")
        pwfile.unlink()
        base_conf = (data / "postgresql.conf").read_text()
        for _attempt in range(3):  # the port may be taken between free_port() and the server binding it
            port = free_port()
            (data / "postgresql.conf").write_text(base_conf + _listen_settings(port))
            pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60"]
            result = run(*pg_ctl, "start", check=False)
            if started := result.returncode == 0:
                break
        if not started:
            raise PostgresFailed(
                "PostgreSQL did not start:\n" + (log.read_text() if log.exists() else result.stderr)
            )
        server = PgServer("127.0.0.1", port, superuser, password, database, data_dir=data)
        server.execute(f'create database "{database}"')
        yield server
    finally:
        if started:
            run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop", check=False)
        if remove_base:
            shutil.rmtree(base, ignore_errors=True)
