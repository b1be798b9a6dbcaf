"""What the user sees, platform-neutral: each adapter renders a Notice its own way."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .intent import Action


class NoticeKind(StrEnum):
    PRENOTICE = "prenotice"  # understood + model + estimate + credits + queue position
    PROGRESS = "progress"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    INFO = "info"  # answers to commands
    ERROR = "error"  # bad input, refused request


class ButtonStyle(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    DANGER = "danger"
    LINK = "link"


@dataclass(frozen=True)
class Button:
    label: str
    action: Action | None = None  # None for link buttons
    job_id: str = ""
    url: str = ""  # link buttons only
    style: ButtonStyle = ButtonStyle.SECONDARY


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    title: str
    lines: tuple[str, ...] = ()
    progress: int | None = None  # 0..100 (an estimate) while running
    buttons: tuple[Button, ...] = ()
    video_url: str = ""
    cover_url: str = ""
    locale: str = "en"
    job_id: str = ""
    mention_user_id: str = ""  # set on final notices: the adapter mentions this user

    @property
    def text(self) -> str:
        """Plain-text rendering: title, then lines (used by the console and as a fallback)."""
        return "\n".join((self.title, *self.lines)) if self.lines else self.title
