"""A failure caused by the user's own image says to send another image, never "try the other model"."""

from __future__ import annotations

import pytest

from bot.core import Action, Origin
from bot.jobs import finals
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.texts import Texts
from ima.models import ModelId, TaskType

T = Texts.load()


def _failed(key: str, locale: str) -> Job:
    spec = JobSpec(task_type=TaskType.IMAGE_TO_VIDEO, model_id=ModelId.FAST, prompt="waves")
    return Job(
        id="j1",
        user_key="console:u",
        origin=Origin("console", "c", "u"),
        spec=spec,
        locale=locale,
        state=JobState.FAILED,
        error_key=key,
        extra={"error_params": {"name": "photo.png", "size_mb": "30.0", "limit_mb": "20"}},
    )


@pytest.mark.parametrize("locale", ["en", "zh"])
@pytest.mark.parametrize(
    ("key", "hint", "buttons"),
    [
        ("attachment_not_image", "failure_hint.image", []),
        ("attachment_too_large", "failure_hint.image", []),
        ("attachment_download_failed", "failure_hint.download", [Action.RETRY, Action.OTHER_MODEL]),
        ("task_failed", "error.generic_hint", [Action.RETRY, Action.OTHER_MODEL]),
    ],
)
def test_the_hint_fits_the_cause(key: str, hint: str, buttons: list[Action], locale: str) -> None:
    notice = finals.failure(T, _failed(key, locale))
    other = T("model.ima-pro", locale)
    assert T("failure.hint", locale, hint=T(hint, locale, model=other)) in notice.lines
    assert [b.action for b in notice.buttons if b.action] == buttons
