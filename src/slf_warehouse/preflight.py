"""The user's mistakes `slf` can see before it starts anything: each a sentence that says what to do.

Checked before Airflow starts (which costs seconds and would fail the same way 20 s later inside a
task): the warehouse engine, the pseudonymisation key, the landing folder and its source folders, an
output folder the refresh can write. Each check imports only what it needs (no DuckDB, no ingestion
code), so a mistake is reported in a fraction of a second.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slf_warehouse.settings import Settings

# Exit codes of every `slf` command (also in `slf --help`).
EXIT_OK = 0
EXIT_DATA = 1  # data rejected, quality gate refused, or a step of the refresh failed
EXIT_USAGE = 2  # a mistake in the command, the files it names or the configuration
EXIT_BUSY = 3  # another refresh holds the output folder

KEY_MIN_LENGTH = 16


class UsageError(Exception):
    """A mistake the user can fix; its message is one sentence naming what and how (exit code 2)."""


def require_refresh_engine(settings: Settings) -> None:
    """The chosen warehouse engine can be written: SLF_WAREHOUSE_ENGINE is duckdb or postgres, and
    on postgres the server named by SLF_PG_* answers. `slf run` asks before it claims the output
    folder, so a wrong setting is said at once, not by a failed task. The message names the server
    (host, port, database), never its password."""
    try:
        conninfo = settings.pg_conninfo if settings.warehouse_engine == "postgres" else None
    except ValueError as e:  # an engine it does not know, or SLF_PG_* it cannot use
        raise UsageError(str(e)) from None
    if conninfo is not None:
        import psycopg2

        from slf_warehouse.pg_raw import server_name

        try:
            psycopg2.connect(conninfo, connect_timeout=10).close()
        except psycopg2.Error as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(
                f"SLF_WAREHOUSE_ENGINE=postgres: the warehouse server {server_name(conninfo)} "
                f"cannot be reached ({reason}); check SLF_PG_HOST, SLF_PG_PORT, SLF_PG_USER, "
                f"SLF_PG_PASSWORD and SLF_PG_DATABASE"
            ) from None


def require_pseudonym_key(environ: dict[str, str] | None = None) -> None:
    from slf_warehouse.settings import PSEUDONYM_KEY_ENV as KEY_ENV

    key = (os.environ if environ is None else environ).get(KEY_ENV, "")
    if len(key) < KEY_MIN_LENGTH:
        what = "is not set" if not key else f"is shorter than {KEY_MIN_LENGTH} characters"
        raise UsageError(
            f"{KEY_ENV} {what}: payroll files are pseudonymised with it and are not loaded "
            f"without it. `make setup` writes one to .slf-pseudonym-key; run "
            f"`export {KEY_ENV}=$(cat .slf-pseudonym-key)` (keep the key: pseudonyms depend on it)"
        )


def require_landing(landing: Path) -> None:
    """The landing folder exists and has at least one source folder (or a source has its own URL)."""
    from slf_warehouse.contract import SOURCES

    if not landing.exists():
        raise UsageError(
            f"landing folder {landing} does not exist (give the folder with one folder per source, "
            f"e.g. `slf sample-data --out {landing}` writes one)"
        )
    if not landing.is_dir():
        raise UsageError(f"landing folder {landing} is a file, not a folder")
    present = [s for s in SOURCES if (landing / s).is_dir() or os.environ.get(f"SLF_SOURCE_{s.upper()}_URL")]
    if not present:
        raise UsageError(
            f"landing folder {landing} has none of the source folders "
            f"{', '.join(SOURCES)}: is it the right folder?"
        )


def require_writable(folder: Path, what: str = "output folder") -> None:
    """``folder`` exists or can be made, and a file can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".slf-write-check-"):
            pass
    except FileExistsError:
        raise UsageError(f"{what} {folder} is a file, not a folder") from None
    except OSError as e:
        raise UsageError(
            f"{what} {folder} is not writable ({e.strerror}): choose another with --out "
            f"or fix its permissions"
        ) from None
