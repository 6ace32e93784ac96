"""Which edition of a letter is rendered: a draft waiting for approval, or the approved final.

A draft carries "UDKAST" on every page and leaves the signature block unsigned; the final names who
approved it and when ("Godkendt af … den …"), in the signature block and in the Datagrundlag, with
the SHA-256 of the draft PDF that was approved. The approval itself is given in Airflow
(``approval.py``); this module only says what the letter prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from slf_warehouse.rendering import formatting as fmt

# Approval times are printed in the municipality's time, whatever the worker's clock zone is.
LOCAL_ZONE = ZoneInfo("Europe/Copenhagen")
DRAFT_MARK = "UDKAST – afventer godkendelse"


@dataclass(frozen=True)
class Approval:
    """Who approved which draft, and when (``approved_at`` is timezone-aware)."""

    username: str
    name: str
    title: str
    approved_at: datetime
    draft_sha256: str
    comment: str = ""

    def __post_init__(self) -> None:
        if self.approved_at.tzinfo is None:
            raise ValueError("approved_at must carry its time zone")

    @property
    def local_time(self) -> datetime:
        return self.approved_at.astimezone(LOCAL_ZONE)

    @property
    def text(self) -> str:
        """ "Godkendt af Thomas Medom, Rådmand, den 1. december 2026 kl. 13.05"."""
        when = self.local_time
        return f"Godkendt af {self.name}, {self.title}, den {fmt.format_date(when.date())} kl. {when:%H.%M}"

    def record(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "name": self.name,
            "title": self.title,
            "approved_at": self.approved_at.astimezone(UTC).isoformat(),
            "draft_sha256": self.draft_sha256,
            "comment": self.comment,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Approval:
        return cls(
            username=record["username"],
            name=record["name"],
            title=record["title"],
            approved_at=datetime.fromisoformat(record["approved_at"]),
            draft_sha256=record["draft_sha256"],
            comment=record.get("comment", ""),
        )


@dataclass(frozen=True)
class Edition:
    stage: Literal["draft", "final"]
    note: str = ""  # the answer writer's edition note ("2. udgave: rettet efter …")
    approval: Approval | None = None

    def __post_init__(self) -> None:
        if self.stage == "final" and self.approval is None:
            raise ValueError("a final edition needs its approval")
        if self.stage == "draft" and self.approval is not None:
            raise ValueError("a draft is not approved")

    @property
    def is_draft(self) -> bool:
        return self.stage == "draft"

    def record(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "note": self.note,
            "approval": self.approval.record() if self.approval else None,
        }
