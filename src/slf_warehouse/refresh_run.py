"""Which kind of refresh run a task belongs to, and the folders it may use.

A refresh runs in one of two ways:

- **embedded**: `slf run` (and `make demo`) starts `airflow_runner`, which runs the DAG with
  `dag.test()` inside its own process. Only that process is marked embedded (``embedded_run()``,
  a flag in this module's memory): nothing sent over the REST API, no conf and no user name can set
  it. There the folders come from the run's conf (`landing_dir`, `output_dir`: the CLI's
  `--landing` / `--out`), and a failing quality gate without an override fails the run at once —
  nobody is there to decide.
- **shared** (the deployment: scheduled, or triggered in the UI / over REST): folders come from the
  configuration only (`SLF_LANDING_DIR`, `SLF_OUTPUT_DIR`); a conf naming a folder is refused before
  anything is written; a failing gate waits for a finance lead's decision (override_decision.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from slf_warehouse.settings import Settings

PATH_PARAMS = ("landing_dir", "output_dir")
_embedded = False


class PathParamRefused(ValueError):
    """A run of the shared deployment whose conf names a folder."""


@contextmanager
def embedded_run() -> Iterator[None]:
    """Marks this process as running the refresh embedded (airflow_runner around dag.test())."""
    global _embedded
    saved, _embedded = _embedded, True
    try:
        yield
    finally:
        _embedded = saved


def is_embedded() -> bool:
    return _embedded


def refresh_settings(params: Mapping[str, Any]) -> Settings:
    """The folders of a refresh task: the conf's in an embedded run, the configuration's otherwise.
    PathParamRefused when a shared run's params name a folder (nothing has been read or written)."""
    given = {name: params.get(name) for name in PATH_PARAMS if params.get(name)}
    if _embedded:
        return Settings.from_env(given.get("landing_dir"), given.get("output_dir"))
    if given:
        raise PathParamRefused(
            f"param(s) {', '.join(given)} not accepted: in the shared deployment the folders come from "
            f"its configuration (SLF_LANDING_DIR, SLF_OUTPUT_DIR), never from a run's conf; "
            f"nothing was read or written"
        )
    return Settings.from_env()
