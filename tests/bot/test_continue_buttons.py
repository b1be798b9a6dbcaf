"""Continue ▶ and the variation buttons (issue 14) on each surface: Discord custom_ids, Feishu card values,
console commands, and presses through the real pipeline, also after a restart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.adapters.discord.convert import custom_id, parse_custom_id
from bot.adapters.discord.render import render_notice
from bot.adapters.feishu import render as feishu_render
from bot.adapters.feishu.convert import Context, to_intent
from bot.core import Action, ActionIntent, GenerationIntent
from bot.jobs import finals
from bot.jobs.model import JobState
from ima.emulator import Emulator, EmulatorConfig
from ima.models import ModelId
from tests.fakes.feishu_events import card_action_event

from .harness import VirtualClock, pipeline
from .test_continue_variations import ORIGIN, TEXTS, _job


def test_discord_buttons_carry_the_job_and_action_in_at_most_five_per_row() -> None:
    notice = finals.success(TEXTS, _job(), elapsed=42)
    rendered = render_notice(notice, TEXTS)
    assert rendered.view is not None
    rows = rendered.view.to_components()
    assert all(len(r["components"]) <= 5 for r in rows)
    ids = [c["custom_id"] for r in rows for c in r["components"] if c.get("custom_id")]
    assert [parse_custom_id(i) for i in ids] == [
        (a, "a1b2c3d4e5f6")
        for a in (Action.CONTINUE, Action.RETRY, Action.OTHER_MODEL, Action.VARY_ASPECT, Action.VARY_DURATION)
    ]
    assert sum(len(r["components"]) for r in rows) == 6  # with the link to the video


def test_every_action_fits_a_discord_custom_id_with_the_longest_job_id() -> None:
    for action in Action:
        value = custom_id(action, "x" * 80)
        assert len(value) <= 100 and parse_custom_id(value) == (action, "x" * 80)


def test_feishu_card_buttons_carry_the_job_and_action_and_come_back_as_intents() -> None:
    notice = finals.success(TEXTS, _job(locale="zh"), elapsed=42)
    labels = {k: TEXTS(f"feishu.{k}", "zh") for k in feishu_render.LABEL_KEYS}
    card = feishu_render.render_card(notice, labels)
    values = [
        b["value"] for el in card["elements"] if el["tag"] == "action" for b in el["actions"] if "value" in b
    ]
    assert {"action": "continue", "job_id": "a1b2c3d4e5f6"} in values
    assert {"action": "vary_ar", "job_id": "a1b2c3d4e5f6"} in values
    assert {"action": "vary_len", "job_id": "a1b2c3d4e5f6"} in values
    for value in values:
        raw = card_action_event(value["action"], value["job_id"], open_message_id="om_1")
        intent = to_intent(raw, Context("ou_bot"))
        assert isinstance(intent, ActionIntent)
        assert (intent.action.value, intent.job_id) == (value["action"], value["job_id"])


def gen(text: str, key: str) -> GenerationIntent:
    return GenerationIntent(origin=ORIGIN, text=text, event_keys=(key,))


async def test_variations_work_after_a_restart(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu:
        async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
            await p.dispatcher(gen("a red kite over hills, pro, 16:9, 5s", "orig"))
            [first] = await p.store.recent_jobs("console:u1", limit=5)
            first = await p.wait_finished(first.id)
            assert first.state is JobState.SUCCEEDED
        # A new process: new runner and dispatcher over the same SQLite file; the buttons carry only ids.
        async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
            made = {}
            for n, action in enumerate((Action.VARY_ASPECT, Action.VARY_DURATION, Action.OTHER_MODEL)):
                before = {j.id for j in await p.store.recent_jobs("console:u1", limit=50)}
                assert (
                    await p.dispatcher(ActionIntent(ORIGIN, first.id, action, event_keys=(f"v{n}",))) is None
                )
                [new] = [j for j in await p.store.recent_jobs("console:u1", limit=50) if j.id not in before]
                made[action] = await p.wait_finished(new.id)
            assert made[Action.VARY_ASPECT].spec.aspect_ratio == "9:16"
            assert made[Action.VARY_DURATION].spec.duration == 10
            assert made[Action.OTHER_MODEL].spec.model_id is ModelId.FAST
            for action, job in made.items():
                assert job.state is JobState.SUCCEEDED, action
                assert job.retry_of == first.id
                assert job.spec.prompt == first.spec.prompt
                task = emu.tasks[job.task_id]
                assert task.prompt == first.spec.prompt
            assert emu.tasks[made[Action.VARY_ASPECT].task_id].params.get("aspect_ratio") == "9:16"
            # The pre-notice said what the variation is.
            notes = [n[0] for n in made[Action.VARY_ASPECT].spec.notes]
            assert notes == ["shots.note.aspect"]


async def test_a_stranger_cannot_press_a_variation(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        await p.dispatcher(gen("a red kite over hills", "orig"))
        [first] = await p.store.recent_jobs("console:u1", limit=5)
        await p.wait_finished(first.id)
        stranger = replace(ORIGIN, user_id="u2")
        answer = await p.dispatcher(ActionIntent(stranger, first.id, Action.VARY_ASPECT, event_keys=("s",)))
        assert answer is not None and answer.kind.value == "error"
        assert len(await p.store.recent_jobs("console:u1", limit=50)) == 1


def test_the_console_shows_each_button_as_a_command_that_does_the_same(tmp_path: Path) -> None:
    from bot.adapters.console import render
    from bot.adapters.console_input import to_intent

    text = render(finals.success(TEXTS, _job(), elapsed=3))
    for typed, action in (
        ("/continue", Action.CONTINUE),
        ("/orientation", Action.VARY_ASPECT),
        ("/length", Action.VARY_DURATION),
    ):
        assert f"{typed} a1b2c3d4e5f6" in text
        intent = to_intent(f"{typed} a1b2c3d4e5f6", user="u1", seq=1, cwd=tmp_path)
        assert isinstance(intent, ActionIntent) and (intent.action, intent.job_id) == (action, "a1b2c3d4e5f6")
