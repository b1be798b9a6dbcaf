"""What the resolver changed reads in the user's words, and the other model is one tap away when it
offers what was asked: the real App on the fake Feishu and the emulator (issue 10)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.model import JobState
from ima.models import ModelId
from tests.fakes.feishu_events import BOT_OPEN_ID, card_action_event, text_event

from .feishu_app import GROUP, TEXTS, USER, FeishuRig, buttons, message_id, open_rig, texts


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


def prenotice_lines(rig: FeishuRig, event: dict) -> list[str]:  # type: ignore[type-arg]
    first = rig.replies_to(message_id(event), "interactive")[0]
    return texts(rig.sent_card(first.message_id))


async def test_a_combination_pro_does_not_price_keeps_15_s_and_says_why(rig: FeishuRig) -> None:
    event = rig.fake.register(text_event("a lighthouse in a storm, pro 15秒 1080p", mention_bot=BOT_OPEN_ID))
    async with rig.app() as app:
        await rig.fake.push_event(event)
        (job,) = await rig.jobs(app, within=30)
    (task,) = rig.emulator.tasks.values()
    assert (task.params["duration"], str(task.params["resolution"]).lower()) == ("15", "720p")
    assert (job.spec.duration, job.spec.resolution, job.spec.asked) == (
        15,
        "720P",
        (("resolution", "1080P"),),
    )
    lines = prenotice_lines(rig, event)
    assert any("Ima Sevio 1.0 offers 1080P only up to 10s, so this is 720P at 15s." in line for line in lines)
    # Neither model offers 1080P at 15 s: no other-model button on the pre-notice.
    first = rig.replies_to(message_id(event), "interactive")[0]
    assert [b["value"]["action"] for b in buttons(rig.sent_card(first.message_id))] == ["cancel"]


async def test_fast_full_hd_offers_pro_with_one_tap_that_runs_1080p_on_pro(rig: FeishuRig) -> None:
    event = rig.fake.register(text_event("a lighthouse in a storm, 极速 全高清", mention_bot=BOT_OPEN_ID))
    async with rig.app() as app:
        await rig.fake.push_event(event)
        (first,) = await rig.jobs(app, within=30)
        lines = prenotice_lines(rig, event)
        card = rig.sent_card(rig.replies_to(message_id(event), "interactive")[0].message_id)
        switch = [b for b in buttons(card) if b["value"]["action"] == "other_model"]
        assert switch and switch[0]["value"]["job_id"] == first.id
        await rig.fake.push_event(
            card_action_event(
                "other_model", first.id, open_message_id=first.notice_ref, open_chat_id=GROUP, operator=USER
            )
        )
        first, again = await rig.jobs(app, 2, within=30)
    assert any("Ima Sevio 1.0-Fast" in line and "1080P" in line and "720P" in line for line in lines)
    offer = TEXTS("params.button_other_model", "en", model="Ima Sevio 1.0")
    assert any(f"Ima Sevio 1.0 offers 1080P: tap “{offer}”" in line for line in lines)
    assert (again.spec.model_id, again.spec.resolution, again.state) == (
        ModelId.PRO,
        "1080P",
        JobState.SUCCEEDED,
    )
    fast_task, pro_task = rig.emulator.tasks.values()
    assert (str(fast_task.params["resolution"]).lower(), str(pro_task.params["resolution"]).lower()) == (
        "720p",
        "1080p",
    )


def test_every_resolver_note_has_a_text_in_both_languages() -> None:
    from bot.jobs.param_notes import KEYS

    assert all(TEXTS.has(f"params.{key}") for key in KEYS)
    assert {k for k in TEXTS.keys("en") if k.startswith("params.")} == {
        k for k in TEXTS.keys("zh") if k.startswith("params.")
    }


@pytest.mark.parametrize("locale", ["en", "zh"])
def test_resolver_notes_render_with_units_and_display_spellings(locale: str) -> None:
    from bot.jobs.notices import render_notes
    from ima.models import Note

    notes = [
        Note(
            "value_not_offered",
            {"model": "ima-pro", "field": "duration", "requested": 7, "used": "5", "source": "said"},
        ),
        Note("reflection_degraded", {"field": "resolution", "from": "1080p", "to": "720p"}),
        Note(
            "reflection_completed",
            {"fields": ["duration"], "values": {"duration": "5", "resolution": "480p"}},
        ),
    ]
    lines = render_notes(TEXTS, notes, locale)
    seconds = {"en": ("7s", "5s"), "zh": ("7秒", "5秒")}[locale]
    assert len(lines) == 3 and all(s in lines[0] for s in seconds) and "Ima Sevio 1.0" in lines[0]
    assert "1080P" in lines[1] and "720P" in lines[1] and "480P" in lines[2] and "5" in lines[2]
