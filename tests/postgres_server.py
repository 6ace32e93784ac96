"""A throw-away PostgreSQL server for tests (Debian's postgresql 15: initdb + pg_ctl).

TCP on 127.0.0.1 only, a free port, no Unix socket, fsync off: it lives for one test module.
PostgreSQL refuses to run as root: as root, the server runs as the `postgres` system user
(`runuser`) from a private directory under the system temp dir (pytest's tmp dirs are mode 0700
and owned by root, so `postgres` could not enter them).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("SLF_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str
    database: str

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def throwaway_postgres(
    tmp_path_factory: pytest.TempPathFactory, superuser: str, database: str
) -> Iterator[PgServer]:
    """A running server with `superuser` (random password) and an empty `database`; stopped on exit."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN} (set SLF_PG_BIN)")
    base, prefix, owner = _server_dir(tmp_path_factory)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*prefix, *args], cwd=base, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(args[:1])} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    data, log = base / "data", base / "server.log"
    password = secrets.token_hex(16)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if owner is not None:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    started = False
    try:
        run(
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            superuser,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        )
        pwfile.unlink()
        port = _start_on_a_free_port(run, data, log)
        started = True
        server = PgServer("127.0.0.1", port, superuser, password, database)
        server.execute(f'create database "{database}"')
        yield server
    finally:
        if started:
            run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop", check=False)
        if owner is not None:
            shutil.rmtree(base, ignore_errors=True)


def _server_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], pwd.struct_passwd | None]:
    """The server's directory, the prefix its commands run with, and the user owning both: as root a
    private directory under the system temp dir owned by `postgres`, the commands run as that user."""
    if os.geteuid() != 0:
        return tmp_path_factory.mktemp("postgres"), [], None
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run the server as")
    base = Path(tempfile.mkdtemp(prefix="slf-pg-test-"))
    os.chown(base, owner.pw_uid, owner.pw_gid)
    return base, ["runuser", "-u", "postgres", "--"], owner


def _start_on_a_free_port(run: Callable[..., subprocess.CompletedProcess[str]], data: Path, log: Path) -> int:
    """Start the initialised server in `data` on a free port and return it (fails the test if it
    does not start)."""
    base_conf = (data / "postgresql.conf").read_text()
    settings = [
        "listen_addresses = '127.0.0.1'",
        "unix_socket_directories = ''",
        "fsync = off",
        "synchronous_commit = off",
        "full_page_writes = off",
    ]
    stderr = ""
    for _attempt in range(3):  # the port may be taken between free_port() and the server binding it
        port = free_port()
        (data / "postgresql.conf").write_text(base_conf + "\n".join(["", *settings, f"port = {port}", ""]))
        result = run(
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", check=False
        )
        if result.returncode == 0:
            return port
        stderr = result.stderr
    pytest.fail("PostgreSQL did not start:\n" + (log.read_text() if log.exists() else stderr))
