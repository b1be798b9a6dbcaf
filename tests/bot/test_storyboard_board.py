"""The storyboard's card (pure): each shot's state, the credits for all shots, Cancel on the live shot."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.core import Action, Origin
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.texts import Texts
from bot.storyboard_board import board_notice
from ima.models import ModelId, TaskType

TEXTS = Texts.load()
ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1")


def shot(i: int, state: JobState, credit: int | None = 15, prompt: str = "") -> Job:
    spec = JobSpec(TaskType.IMAGE_TO_VIDEO, ModelId.FAST, prompt or f"shot number {i}")
    return Job(
        id=f"j{i}", user_key="console:u1", origin=ORIGIN, spec=spec, locale="en", state=state, credit=credit
    )


@pytest.mark.parametrize("locale", ["en", "zh"])
def test_each_shot_shows_its_state_and_the_total_credits(locale: str) -> None:
    jobs = [shot(1, JobState.SUCCEEDED), shot(2, JobState.RUNNING), shot(3, JobState.DRAFT, credit=20)]
    notice = board_notice(TEXTS, jobs, locale)
    assert notice.title == TEXTS("shots.storyboard.title", locale, count=3)
    states = ("done", "running", "waiting")
    for i, (job, state) in enumerate(zip(jobs, states, strict=True)):
        expected = TEXTS(
            "shots.storyboard.shot",
            locale,
            index=i + 1,
            prompt=job.spec.prompt,
            state=TEXTS(f"shots.storyboard.state.{state}", locale),
        )
        assert notice.lines[i] == expected
    assert TEXTS("shots.storyboard.credits", locale, credit=50) in notice.lines
    [cancel] = notice.buttons
    assert (cancel.action, cancel.job_id) == (Action.CANCEL, "j2")  # the first shot not finished
    assert notice.job_id == "" and notice.locale == locale


def test_every_state_has_a_word_and_unknown_credits_are_not_summed() -> None:
    jobs = [
        shot(i, state, credit=None if state is JobState.QUEUED else 5) for i, state in enumerate(JobState, 1)
    ]
    notice = board_notice(TEXTS, jobs, "en")
    assert not any("Credits" in line for line in notice.lines)
    assert [b.job_id for b in notice.buttons] == ["j1"]  # the draft comes first among the unfinished


def test_a_finished_storyboard_has_no_cancel_and_long_prompts_are_cut() -> None:
    jobs = [shot(1, JobState.SUCCEEDED, prompt="word " * 40), shot(2, JobState.CANCELLED)]
    notice = board_notice(TEXTS, jobs, "en")
    assert notice.buttons == ()
    assert notice.lines[0].endswith("…") and len(notice.lines[0]) < 140
    assert "word word" in notice.lines[0]
    short = board_notice(
        TEXTS, [replace(jobs[0], spec=replace(jobs[0].spec, prompt="a  short\nprompt"))], "en"
    )
    assert short.lines[0].endswith("· a short prompt")  # runs of blanks and line breaks become one space
