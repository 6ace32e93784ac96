"""File and folder names made from identifiers that are not safe as names (Airflow run ids)."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def slug(text: str, max_length: int = 80) -> str:
    """``text`` as one path component: each run of characters other than letters, digits, ``_``,
    ``.`` and ``-`` (``:``, ``+``, ``/``, spaces) becomes ``_``, cut at ``max_length``.
    "manual__2026-12-01T16:25:05+00:00" → "manual__2026-12-01T16_25_05_00_00"."""
    return _UNSAFE.sub("_", text)[:max_length]
