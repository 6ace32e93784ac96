"""Fetching deliveries from where each source system puts them: a local folder or an HTTP(S) share.

Each source's location is a URL-like setting (`SLF_SOURCE_<SOURCE>_URL`; default: the landing folder).
Remote files go through fsspec into a local pull folder that ingestion then reads; credentials come
from the Airflow Connection `slf_source_<source>` (or an `AIRFLOW_CONN_...` environment variable),
never from code or the URL in the settings.
"""

from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from slf_warehouse.contract import SOURCES

log = logging.getLogger(__name__)
LOCAL_PROTOCOLS = ("file", "local")


@dataclass(frozen=True)
class Pulled:
    source: str
    folder: Path  # the local folder ingestion reads: <root>/<source>
    files: list[str]
    remote: bool


def source_location(source: str, landing_dir: Path) -> str:
    return os.environ.get(f"SLF_SOURCE_{source.upper()}_URL") or str(landing_dir / source)


def _storage_options(protocol: str, conn_id: str) -> dict[str, object]:
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception:  # no such connection: a public location
        return {}
    if protocol in ("http", "https") and conn.login:
        # UTF-8 credentials (RFC 7617): Danish letters in a password must survive.
        token = base64.b64encode(f"{conn.login}:{conn.password or ''}".encode()).decode("ascii")
        return {"client_kwargs": {"headers": {"Authorization": f"Basic {token}"}}}
    return {}


def pull_source(source: str, location: str, pull_root: Path, conn_id: str | None = None) -> Pulled:
    """Make the source's files available locally; a local location is used where it is."""
    import fsspec
    from fsspec.utils import get_protocol

    spec = SOURCES[source]
    protocol = get_protocol(location)
    if protocol in LOCAL_PROTOCOLS:
        folder = Path(location.removeprefix("file://"))
        files = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        return Pulled(source, folder, files, remote=False)

    fs = fsspec.filesystem(protocol, **_storage_options(protocol, conn_id or f"slf_source_{source}"))
    target = pull_root / source
    target.mkdir(parents=True, exist_ok=True)
    names = []
    for entry in fs.ls(location.rstrip("/") + "/", detail=True):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") == "directory" or not spec.match(name):
            continue
        tmp = target / f".{name}.part"
        fs.get_file(entry["name"], str(tmp))
        tmp.replace(target / name)  # a half-downloaded file is never seen by ingestion
        names.append(name)
    log.info("pulled %d file(s) of %s from %s", len(names), source, location)
    return Pulled(source, target, sorted(names), remote=True)
