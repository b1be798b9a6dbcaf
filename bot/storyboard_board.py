"""A storyboard's card (issue 14), pure: every shot with its state, the credits for all, and Cancel."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.core import Action, Button, ButtonStyle, Notice, NoticeKind
from bot.jobs.model import Job, JobState

KEY = "storyboard"  # job.extra[KEY] = {"id": shot 1's id, "index": 0-based, "shots": [job ids in order]}

# What a shot's line says of its job's state (locale keys under shots.storyboard.state).
_STATE = {
    JobState.DRAFT: "waiting",
    JobState.QUEUED: "queued",
    JobState.PREPARING: "running",
    JobState.CREATING: "running",
    JobState.RUNNING: "running",
    JobState.SUCCEEDED: "done",
    JobState.FAILED: "failed",
    JobState.TIMED_OUT: "failed",
    JobState.UNCERTAIN: "failed",
    JobState.CANCELLED: "cancelled",
}
_PROMPT_CHARS = 80


def board_notice(texts: Callable[..., str], shots: Sequence[Job], locale: str) -> Notice:
    """The card: one line per shot ("2. ▶ generating · the puppy jumps…"), the credits of all shots when
    every one is known, and Cancel on the first shot not finished (cancelling it stops the rest)."""
    lines = [
        texts(
            "shots.storyboard.shot",
            locale,
            index=i + 1,
            prompt=_short(j.spec.prompt),
            state=texts(f"shots.storyboard.state.{_STATE[j.state]}", locale),
        )
        for i, j in enumerate(shots)
    ]
    credits = [j.credit for j in shots]
    if credits and all(c is not None for c in credits):
        lines.append(texts("shots.storyboard.credits", locale, credit=sum(c or 0 for c in credits)))
    lines.append(texts("shots.storyboard.how", locale))
    pending = next((j for j in shots if not j.finished), None)
    buttons: tuple[Button, ...] = ()
    if pending is not None:
        buttons = (
            Button(texts("button.cancel", locale), Action.CANCEL, pending.id, style=ButtonStyle.DANGER),
        )
    # No job_id: the card is the storyboard's, not one job's message (adapters key job messages by it).
    return Notice(
        NoticeKind.INFO,
        texts("shots.storyboard.title", locale, count=len(shots)),
        tuple(lines),
        buttons=buttons,
        locale=locale,
    )


def info_of(job: Job) -> dict[str, Any] | None:
    """The job's storyboard facts, None for a job outside any storyboard."""
    return job.extra.get(KEY)


def _short(prompt: str) -> str:
    p = " ".join(prompt.split())
    return p if len(p) <= _PROMPT_CHARS else p[: _PROMPT_CHARS - 1] + "…"


__all__ = ["KEY", "board_notice", "info_of"]
