"""What may be read from the landing folder: regular files inside it, within the source's limits.

A symbolic link `enheder/enheder.csv → ../.slf-pseudonym-key` was followed, loaded and quoted in the
quarantine report; a file replaced while it was read left the manifest's hash and the rows
describing two different versions. So a delivery is opened once, without following links, and the
bytes that are hashed are the bytes that are parsed (reading.py copies them as it scans them).
"""

from __future__ import annotations

import os
import stat
from dataclasses import fields, replace
from pathlib import Path
from typing import BinaryIO

from slf_warehouse.contract import Limits, SourceSpec
from slf_warehouse.ingest.errors import FileRejected, Issue


def limits_for(spec: SourceSpec) -> Limits:
    """The source's limits, each overridable by SLF_INGEST_<SOURCE>_<FIELD> (e.g.
    SLF_INGEST_POSTERINGER_MAX_BYTES=2147483648). Read at each use: a reading process inherits them."""
    changed = {}
    for f in fields(Limits):
        name = f"SLF_INGEST_{spec.name.upper()}_{f.name.upper()}"
        if (value := os.environ.get(name)) is not None:
            try:
                changed[f.name] = int(value)
            except ValueError:
                raise ValueError(f"{name}={value!r}: expected a whole number") from None
    return replace(spec.limits, **changed)


def refusal(path: Path, landing: Path) -> Issue | None:
    """Why an entry of a source folder is not read at all, or None: a link (to anywhere), or anything
    whose real path is outside the landing folder. Decided on the entry itself: its target is not
    opened, and nothing of it is quoted."""
    if path.is_symlink():
        return Issue(
            path.name,
            None,
            None,
            None,
            "a symbolic link, not a file: refused (deliver the file itself into the landing folder)",
        )
    real, root = path.resolve(), landing.resolve()
    if not real.is_relative_to(root):
        return Issue(
            path.name, None, None, None, "the file's real path is outside the landing folder: refused"
        )
    return None


def open_delivery(path: Path, spec: SourceSpec) -> BinaryIO:
    """The delivery opened for reading, refusing a link put in its place since the folder was listed,
    anything but a regular file (a FIFO would block the load) and a file over the size limit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if path.is_symlink():
            raise FileRejected(
                [
                    Issue(
                        path.name,
                        None,
                        None,
                        None,
                        "a symbolic link, not a file: refused (deliver the file itself into "
                        "the landing folder)",
                    )
                ]
            ) from None
        raise FileRejected([Issue(path.name, None, None, None, f"cannot be opened ({e.strerror})")]) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FileRejected([Issue(path.name, None, None, None, "not a regular file: refused")])
    limit = limits_for(spec).max_bytes
    if info.st_size > limit:
        os.close(fd)
        raise FileRejected([too_big(path.name, info.st_size, limit)])
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def too_big(name: str, size: int, limit: int) -> Issue:
    return Issue(
        name,
        None,
        None,
        None,
        f"the file is larger than this source's limit ({size:,} bytes; at most "
        f"{limit:,}): refused unread".replace(",", "."),
    )
