"""One-tap variations and Continue ▶ on every result (issue 14), pure: the spec each button makes, the
buttons a success message carries, and the note each variation's pre-notice shows."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.core import Action, Origin
from bot.jobs import finals
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.notices import render_notes
from bot.jobs.texts import Texts
from bot.jobs.variations import is_portrait, note_for, success_buttons, vary
from ima.models import ModelId, TaskType

TEXTS = Texts.load()
ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1", message_id="m1")
SPEC = JobSpec(
    TaskType.TEXT_TO_VIDEO, ModelId.PRO, "a kite", duration=5, aspect_ratio="16:9", resolution="720P"
)


def _job(spec: JobSpec = SPEC, locale: str = "en") -> Job:
    return Job(
        id="a1b2c3d4e5f6",
        user_key="console:u1",
        origin=ORIGIN,
        spec=spec,
        locale=locale,
        state=JobState.SUCCEEDED,
        result_url="https://cdn.example/v.mp4",
        credit=30,
    )


@pytest.mark.parametrize(
    ("action", "change"),
    [
        (Action.RETRY, {}),
        (Action.OTHER_MODEL, {"model_id": ModelId.FAST}),
        (Action.VARY_ASPECT, {"aspect_ratio": "9:16"}),
        (Action.VARY_DURATION, {"duration": 10}),
    ],
)
def test_each_variation_changes_exactly_one_thing(action: Action, change: dict) -> None:  # type: ignore[type-arg]
    assert vary(action, SPEC) == replace(SPEC, **change)


@pytest.mark.parametrize(
    ("ratio", "duration", "flipped", "other"),
    [
        ("9:16", 10, "16:9", 5),
        ("3:4", 15, "16:9", 5),
        ("1:1", None, "9:16", 10),
        (None, 5, "9:16", 10),
        ("4:3", 8, "9:16", 10),
        ("bad", 9, "9:16", 10),
    ],
)
def test_orientation_and_length_flip_from_what_the_job_has(ratio, duration, flipped, other) -> None:  # type: ignore[no-untyped-def]
    spec = replace(SPEC, aspect_ratio=ratio, duration=duration)
    assert vary(Action.VARY_ASPECT, spec).aspect_ratio == flipped
    assert vary(Action.VARY_DURATION, spec).duration == other
    assert is_portrait(ratio) is (flipped == "16:9")


@pytest.mark.parametrize("locale", ["en", "zh"])
def test_a_success_message_offers_continue_and_the_variations(locale: str) -> None:
    job = _job(locale=locale)
    notice = finals.success(TEXTS, job, elapsed=42)
    actions = [b.action for b in notice.buttons if b.action]
    assert actions == [
        Action.CONTINUE,
        Action.RETRY,
        Action.OTHER_MODEL,
        Action.VARY_ASPECT,
        Action.VARY_DURATION,
    ]
    assert all(b.job_id == job.id for b in notice.buttons if b.action)
    labels = {b.action: b.label for b in notice.buttons if b.action}
    assert labels[Action.VARY_ASPECT] == TEXTS("shots.button.vertical", locale)
    assert labels[Action.VARY_DURATION] == TEXTS("shots.button.seconds", locale, n=10)
    portrait = success_buttons(TEXTS, _job(replace(SPEC, aspect_ratio="9:16", duration=10), locale))
    assert portrait[3].label == TEXTS("shots.button.horizontal", locale)
    assert portrait[4].label == TEXTS("shots.button.seconds", locale, n=5)


@pytest.mark.parametrize(
    ("action", "key", "params"),
    [
        (Action.VARY_ASPECT, "shots.note.aspect", {"job_id": "a1b2c3d4e5f6", "aspect_ratio": "9:16"}),
        (Action.VARY_DURATION, "shots.note.duration", {"job_id": "a1b2c3d4e5f6", "seconds": "10"}),
        (Action.OTHER_MODEL, "shots.note.model", {"job_id": "a1b2c3d4e5f6", "model": "Ima Sevio 1.0-Fast"}),
        (Action.RETRY, "shots.note.again", {"job_id": "a1b2c3d4e5f6"}),
    ],
)
def test_each_variation_says_what_it_is_in_its_pre_notice(action: Action, key: str, params: dict) -> None:  # type: ignore[type-arg]
    job = _job()
    assert note_for(action, job, vary(action, job.spec), TEXTS) == (key, params)
    [line] = render_notes(TEXTS, [(key, params)], "zh")
    assert line == "ℹ️ " + TEXTS(key, "zh", **params)
