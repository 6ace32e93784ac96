"""Output files readable by the service user only.

Quality results, GE's validation files and Data Docs, the run history, the quarantine, the logs and
the warehouse may hold personal data (or, before a fix like the one for issue 14, did), so every
file the pipeline creates is 0600 and every folder 0700: the process-wide umask PRIVATE_UMASK, set
once at each entry point (the `slf` CLI, whose children and `airflow standalone` inherit it, and
each slf_refresh task, which may run in a worker process started by something else).

Owner only, not 0640/0750: the deployment has no group of readers; people read the quality report
and the answers through the service (or a copy it makes), never straight from its output folder.
A deployment that wants a reader group sets PRIVATE_UMASK to 0o027 here, and Airflow's
file_task_handler_new_*_permissions (airflow_env.py) to match.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def write_private(path: Path, data: bytes | str) -> None:
    """``data`` (text as UTF-8) in ``path``, whole or not at all, and owner-only from its first byte.

    Written to a temporary file beside ``path`` (hidden, a name of its own for every writer, created
    0600, never through a link) and renamed over it: a reader sees the old file or the new one, never
    half of one; two writers never share the temporary file; a link at ``path`` is replaced, not
    followed. A failed write leaves ``path`` as it was and no temporary file behind.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def private_outputs() -> None:
    """Every file and folder this process (and its children) creates from now on is owner-only."""
    os.umask(PRIVATE_UMASK)


def make_private(root: Path) -> None:
    """Tighten what an earlier run (under a looser umask) left under `root`: folders 0700, files 0600."""
    root = Path(root)
    if not root.exists() or root.is_symlink():
        return
    if root.is_file():
        root.chmod(PRIVATE_FILE_MODE)
        return
    root.chmod(PRIVATE_DIR_MODE)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            path = Path(folder, name)
            if not path.is_symlink():
                path.chmod(PRIVATE_DIR_MODE)
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                path.chmod(PRIVATE_FILE_MODE)
