"""Where `slf`'s own process sends log records: all of them to a log file, only warnings to the terminal.

Libraries talk at INFO while they work (Great Expectations' "Skipping registering function …",
WeasyPrint's "Step 2 - Fetching and parsing CSS", dbt, Airflow): useful in a log, noise on a terminal.
``-v/--verbose`` shows them live as well. The refresh itself runs in a child process whose whole
output goes to ``OUT/logs/slf_refresh.log`` (cli._run); this is for the commands that work in-process
(answer, ingest, figures, status).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_file: Path | None, verbose: bool = False) -> Path | None:
    """Root logger: everything to ``log_file`` (appended; None: no file), warnings (everything when
    verbose) to stderr. Returns the log file actually opened (None when it could not be)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setLevel(logging.INFO if verbose else logging.WARNING)
    terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(terminal)
    logging.captureWarnings(
        True
    )  # warnings.warn() goes through logging: to the file and, as a warning, shown
    opened = None
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError:
            pass  # an unwritable output folder is reported by the command itself
        else:
            handler.setFormatter(logging.Formatter(FORMAT))
            root.addHandler(handler)
            opened = log_file
    return opened
