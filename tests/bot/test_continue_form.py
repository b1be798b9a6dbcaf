"""Continue ▶ asks what happens next (issue 14): on Discord a modal (discord.py's Modal against the fake
Discord: callback type 9, then a MODAL_SUBMIT interaction), on Feishu a card form (lark-oapi's long
connection and the signed webhook deliver the submit's `action.form_value`). What is typed becomes the next
shot's prompt (settings said in it win); an empty form keeps the words of the shot it continues."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.discord.convert import interaction_intent
from bot.adapters.discord.form import submitted_text
from bot.adapters.feishu import forms
from bot.adapters.feishu.convert import Context, to_intent
from bot.core import Action, ActionIntent
from bot.core.text import clean_intent
from bot.jobs.model import Job, JobState
from bot.jobs.texts import Texts
from tests.fakes import discord_modals, feishu_cards
from tests.fakes.feishu_events import card_action_event, text_event
from tests.waiting import until_job_change

from .discord_app import Rig, open_discord_rig
from .feishu_app import P2P, open_rig
from .test_continue_platforms import _assert_continues

TEXTS = Texts.load()
ASK = "a red kite over green hills, 16:9, 5s"


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async with open_discord_rig(tmp_path, monkeypatch) as rig:
        yield rig


def _inputs(modal: dict[str, Any]) -> list[dict[str, Any]]:
    return [c["component"] for c in modal["components"] if c["type"] == 18]


# -- Discord --------------------------------------------------------------------------------------------


async def test_discord_continue_opens_a_modal_and_its_words_make_the_next_shot(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        await fake.send_message(ASK, mention_bot=True)
        (first,) = await rig.jobs(app)
        final = rig.message(first.result_ref)
        click = await fake.click_button(final["id"], f"imabot:continue:{first.id}", locale="zh-CN")
        await fake.wait_until(lambda: click.modal is not None)
        modal = click.modal
        assert modal is not None and click.acked_type == 9
        assert modal["custom_id"] == f"imabot:continue:{first.id}"
        assert modal["title"] == TEXTS("shots.form.title", "zh")  # in the presser's language
        [field] = _inputs(modal)
        assert (field["custom_id"], field["required"], field["style"]) == ("prompt", False, 2)
        assert [c["label"] for c in modal["components"]] == [TEXTS("shots.form.label", "zh")]
        assert app.store is not None and len(await app.store.recent_jobs(rig.user_key)) == 1  # nothing yet
        submit = await fake.submit_modal(click, {"prompt": "风筝落在屋顶上，10秒"})
        first, shot = await rig.jobs(app, 2)
    assert submit.acked_type == 6  # a silent deferred update: the result message stays as it is
    assert shot.spec.duration == 10  # a setting said in the form wins
    assert "10秒" not in emu.tasks[shot.task_id].prompt
    _assert_continues(emu, first, _with_duration(shot, first.spec.duration), "风筝落在屋顶上")


def _with_duration(job: Job, duration: int | None) -> Job:
    """job as if it had `duration` (to compare a shot whose form changed only its length)."""
    return replace(job, spec=replace(job.spec, duration=duration))


async def test_discord_a_form_opened_before_a_restart_works_after_it(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        await fake.send_message(ASK, mention_bot=True)
        (first,) = await rig.jobs(app)
        final = rig.message(first.result_ref)
        click = await fake.click_button(final["id"], f"imabot:continue:{first.id}")
        await fake.wait_until(lambda: click.modal is not None)
    async with rig.app() as app:  # a new process on the same store, while the user was typing
        await fake.submit_modal(click, {"prompt": "the kite lands on a roof"})
        first, shot = await rig.jobs(app, 2)
    _assert_continues(emu, first, shot, "the kite lands on a roof")


async def test_discord_a_stranger_submitting_the_form_makes_nothing(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        await fake.send_message(ASK, mention_bot=True)
        (first,) = await rig.jobs(app)
        final = rig.message(first.result_ref)
        click = await fake.click_button(
            final["id"], f"imabot:continue:{first.id}", user_id=fake.other_user_id
        )
        await fake.wait_until(lambda: click.modal is not None)
        before = len(fake.messages)
        await fake.submit_modal(click, {"prompt": "mine now"})
        await fake.wait_until(lambda: len(fake.messages) > before)  # the ephemeral answer
        [answer] = list(fake.messages.values())[before:]
        assert answer["flags"] & 64
        assert TEXTS("input.not_your_job", "en") in str(answer)
        assert app.store is not None
        assert await app.store.recent_jobs(f"discord:{fake.other_user_id}") == []
    assert len(emu.tasks) == 1


def test_the_discord_modal_check_refuses_what_discord_refuses() -> None:
    good = {
        "custom_id": "imabot:continue:a1",
        "title": "t",
        "components": [{"type": 18, "label": "l", "component": {"type": 4, "custom_id": "prompt"}}],
    }
    assert discord_modals.problem(good) is None
    assert discord_modals.problem({**good, "title": "x" * 46}) is not None
    assert discord_modals.problem({**good, "components": []}) is not None
    labelled = {"type": 18, "label": "l", "component": {"type": 4, "custom_id": "p", "label": "x"}}
    assert discord_modals.problem({**good, "components": [labelled]}) is not None


@pytest.mark.parametrize(
    ("components", "text"),
    [
        ([{"type": 18, "id": 1, "component": {"type": 4, "custom_id": "prompt", "value": "next"}}], "next"),
        ([{"type": 1, "id": 1, "components": [{"type": 4, "custom_id": "prompt", "value": "row"}]}], "row"),
        ([{"type": 18, "id": 1, "component": {"type": 4, "custom_id": "other", "value": "no"}}], ""),
        ([{"type": 18, "id": 1, "component": {"type": 4, "custom_id": "prompt", "value": ""}}], ""),
        ([{"type": 18, "component": {"type": 4, "custom_id": "prompt", "value": 7}}, "junk"], ""),
        ([], ""),
    ],
)
def test_the_typed_text_is_read_from_either_modal_layout(components: list[Any], text: str) -> None:
    assert submitted_text(components) == text


def test_a_modal_submit_is_the_continue_press_with_its_text_and_foreign_modals_are_ignored() -> None:
    def submit(custom_id: str, value: Any) -> dict[str, Any]:
        component = {"type": 4, "custom_id": "prompt", "value": value}
        return {
            "id": "7",
            "type": 5,
            "channel_id": "c1",
            "channel": {"id": "c1", "type": 0},
            "guild_id": "g1",
            "member": {"user": {"id": "u1"}},
            "locale": "en-US",
            "data": {"custom_id": custom_id, "components": [{"type": 18, "component": component}]},
        }

    intent = interaction_intent(submit("imabot:continue:a1b2", "the kite lands"))
    assert isinstance(intent, ActionIntent)
    assert (intent.action, intent.job_id, intent.text) == (Action.CONTINUE, "a1b2", "the kite lands")
    assert intent.event_keys == ("discord:interaction:7",)
    assert interaction_intent(submit("someone-elses-modal", "x")) is None
    # what was typed is cleaned like any message before the pipeline sees it
    dirty = interaction_intent(submit("imabot:continue:a1b2", "a\x00b\ud800c"))
    assert isinstance(dirty, ActionIntent) and clean_intent(dirty).text == "abc"  # type: ignore[union-attr]


# -- Feishu ---------------------------------------------------------------------------------------------


def test_the_feishu_form_card_is_one_feishu_builds_and_its_submit_comes_back_with_the_text() -> None:
    card = forms.continue_card("a1b2", TEXTS, "en")
    assert feishu_cards.problem(card) is None
    [form] = [el for el in card["elements"] if el["tag"] == "form"]
    field, submit = form["elements"]
    assert (field["tag"], field["name"], field["required"]) == ("input", "prompt", False)
    assert field["max_length"] == 1000 and form["name"] == "continue" and submit["name"] == "submit"
    assert field["label"]["content"] == TEXTS("shots.form.label", "en")
    assert card["header"]["title"]["content"] == TEXTS("shots.form.title", "en")
    assert TEXTS("shots.form.body", "en", job_id="a1b2") in str(card)
    assert (submit["action_type"], submit["value"]) == (
        "form_submit",
        {"action": "continue", "job_id": "a1b2"},
    )
    ctx = Context("ou_bot", frozenset())
    press = card_action_event("continue", "a1b2", open_message_id="om_1", open_chat_id=P2P)
    sent = card_action_event(
        "continue", "a1b2", open_message_id="om_2", open_chat_id=P2P, form_value={"prompt": "next"}
    )
    empty = card_action_event("continue", "a1b2", open_message_id="om_2", open_chat_id=P2P, form_value={})
    assert forms.wants_form(press) and not forms.wants_form(sent) and not forms.wants_form(empty)
    assert not forms.wants_form(card_action_event("retry", "a1b2", open_message_id="om_1"))
    assert not forms.wants_form(text_event("continue", chat_type="p2p", chat_id=P2P))
    forged = text_event("continue", chat_type="p2p", chat_id=P2P)  # a message dressed as a press
    forged["event"]["action"] = press["event"]["action"]
    assert not forms.wants_form(forged)
    assert not forms.wants_form({**press, "header": "card.action.trigger"})
    assert not forms.wants_form({**press, "event": "junk"})
    no_job = card_action_event("continue", "", open_message_id="om_1", open_chat_id=P2P)
    assert not forms.wants_form(no_job)
    assert not forms.wants_form(card_action_event("x", "a1", open_message_id="om_1", value="continue"))
    texts = [getattr(to_intent(e, ctx), "text", None) for e in (press, sent, empty)]
    assert texts == ["", "next", ""]
    assert forms.form_text({"form_value": {"prompt": 5}}) == ""


async def _feishu_first(rig, app) -> Job:  # type: ignore[no-untyped-def]
    await rig.fake.push_event(text_event(ASK, chat_type="p2p", chat_id=P2P))
    (first,) = await rig.jobs(app)
    return first


def _press(first: Job, **kw: Any) -> dict[str, Any]:
    return card_action_event("continue", first.id, open_chat_id=P2P, operator=first.origin.user_id, **kw)


@pytest.mark.parametrize("typed", ["the kite lands on a roof", ""])
async def test_feishu_continue_opens_a_card_form_and_its_submit_makes_the_next_shot(
    tmp_path: Path, typed: str
) -> None:
    async with open_rig(tmp_path) as rig:
        fake, emu = rig.fake, rig.emulator
        async with rig.app() as app:
            first = await _feishu_first(rig, app)
            press = _press(first, open_message_id=first.result_ref)
            await fake.push_event(press)
            await fake.wait_until(lambda: bool(rig.replies_to(first.result_ref, "interactive")))
            [form_msg] = rig.replies_to(first.result_ref, "interactive")
            card = rig.sent_card(form_msg.message_id)
            assert [el["tag"] for el in card["elements"]] == ["div", "form"]
            await fake.push_event(press)  # a redelivered press posts no second form
            assert app.store is not None and len(await app.store.recent_jobs(first.user_key)) == 1
            submit = _press(first, open_message_id=form_msg.message_id, form_value={"prompt": typed})
            await fake.push_event(submit)
            first, shot = await rig.jobs(app, 2)
        assert len(rig.replies_to(first.result_ref, "interactive")) == 1
        _assert_continues(emu, first, shot, typed or "a red kite over green hills")


async def test_feishu_the_form_submit_arrives_through_the_signed_webhook(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        fake, emu = rig.fake, rig.emulator
        async with rig.app(transport="webhook") as app, rig.poster(app) as poster:
            first_ask = fake.register(text_event(ASK, chat_type="p2p", chat_id=P2P))
            await poster.post(first_ask)
            (first,) = await rig.jobs(app)
            answer = await poster.post(_press(first, open_message_id=first.result_ref))
            assert answer.status == 200
            await fake.wait_until(lambda: bool(rig.replies_to(first.result_ref, "interactive")))
            [form_msg] = rig.replies_to(first.result_ref, "interactive")
            submit = _press(first, open_message_id=form_msg.message_id, form_value={"prompt": "it lands"})
            assert (await poster.post(submit)).status == 200
            first, shot = await rig.jobs(app, 2)
        _assert_continues(emu, first, shot, "it lands")


async def _job_count(app, key: str) -> int:  # type: ignore[no-untyped-def]
    return len(await app.store.recent_jobs(key))


async def test_feishu_a_stranger_submitting_the_form_makes_nothing(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        fake, emu = rig.fake, rig.emulator
        async with rig.app() as app:
            first = await _feishu_first(rig, app)
            stranger = card_action_event(
                "continue",
                first.id,
                open_message_id=first.result_ref,
                open_chat_id=P2P,
                operator="ou_stranger01",
                form_value={"prompt": "mine now"},
            )
            await fake.push_event(stranger)
            await fake.wait_until(lambda: bool(rig.replies_to(first.result_ref, "interactive")))
            [answer] = rig.replies_to(first.result_ref, "interactive")
            assert TEXTS("input.not_your_job", "en") in str(rig.sent_card(answer.message_id)) or TEXTS(
                "input.not_your_job", "zh"
            ) in str(rig.sent_card(answer.message_id))

            async def one() -> bool:
                return await _job_count(app, first.user_key) == 1

            assert await until_job_change(app.runner.listeners, one, 5)
        assert len(emu.tasks) == 1
        assert first.state is JobState.SUCCEEDED


async def test_the_discord_modal_is_never_kept_and_its_texts_fit_discords_limits() -> None:
    from bot.adapters.discord.modals import continue_form

    modal = continue_form("a1b2", TEXTS, "en")
    assert modal.is_finished()  # never stored by discord.py: the submit is read from the raw interaction
    data = modal.to_dict()
    [label] = data["components"]
    field = label["component"]
    assert (label["label"], label["description"]) == (
        TEXTS("shots.form.label", "en"),
        TEXTS("shots.form.hint", "en"),
    )
    assert (field["placeholder"], field["max_length"]) == (TEXTS("shots.form.placeholder", "en"), 1000)
    assert discord_modals.problem(data) is None

    def wordy(key: str, locale: str, **params: object) -> str:
        return "w" * 300

    long = continue_form("a1b2", wordy, "en").to_dict()
    [label] = long["components"]
    lengths = (len(long["title"]), len(label["label"]), len(label["description"]))
    assert lengths == (45, 45, 100) and long["title"].endswith("…")
    assert len(label["component"]["placeholder"]) == 100
    assert discord_modals.problem(long) is None
