"""The confirm step for big spends (issue 14) on every button that starts a job: Retry, the other model,
the variations and Continue ▶ ask first above jobs.confirm_above_credits, on the console pipeline, on
Discord (discord.py against the fake Discord) and on Feishu (lark-oapi against the fake Feishu); a
Cancel of the confirm creates nothing at IMA and leaves no job running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import Config
from bot.core import Action, ActionIntent, GenerationIntent, Origin
from bot.dispatch import DispatchSettings
from bot.jobs.model import Job, JobState
from bot.jobs.scheduler import budget_day_start
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.feishu_events import card_action_event, text_event
from tests.waiting import until_job_change

from .discord_app import Rig, custom_ids, open_discord_rig
from .feishu_app import P2P, open_rig
from .feishu_app import buttons as feishu_buttons
from .harness import pipeline

ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1", message_id="m1")
BIG = "pro 1080p 10s a red kite over green hills at sunset"
SMALL = "fast 5s a red kite over green hills at sunset"
LIMIT = 20  # credits: a pro 1080p 10 s job costs more, a fast 5 s one less
CONFIRM = DispatchSettings(confirm_above_credits=LIMIT, daily_credit_budget=500)
JOBS = {"confirm_above_credits": LIMIT, "daily_credit_budget": 500}


def _actions(notice) -> list[Action | None]:  # type: ignore[no-untyped-def]
    return [b.action for b in notice.buttons]


# -- the console pipeline: every button path ----------------------------------------------------------


@pytest.mark.parametrize(
    "action", [Action.RETRY, Action.OTHER_MODEL, Action.VARY_DURATION, Action.VARY_ASPECT, Action.CONTINUE]
)
async def test_every_button_on_a_big_result_asks_first(tmp_path: Path, action: Action) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(confirm_above_credits=10_000)) as p:
        # made while the bar was high; then the operator lowered it
        await p.dispatcher(GenerationIntent(origin=ORIGIN, text=BIG, event_keys=("big",)))
        [first] = await p.store.recent_jobs("console:u1", limit=5)
        first = await p.wait_finished(first.id, within=60)
        assert first.state is JobState.SUCCEEDED
        p.dispatcher.settings = CONFIRM
        asked = await p.dispatcher(ActionIntent(ORIGIN, first.id, action, event_keys=("press",)))
        assert asked is not None and _actions(asked) == [Action.GENERATE, Action.HELP, Action.CANCEL]
        [held] = [j for j in await p.store.recent_jobs("console:u1", limit=5) if j.id != first.id]
        assert held.state is JobState.DRAFT and held.retry_of == first.id
        credit = (await p.runner.preview(held))[0].credit
        assert credit > LIMIT
        assert p.texts("shots.confirm.amount", "en", credit=credit) in asked.lines
        assert len(p.emulator.tasks) == 1  # nothing created before the Generate press
        # Generate runs it, once
        await p.dispatcher(ActionIntent(ORIGIN, held.id, Action.GENERATE, event_keys=("gen",)))
        done = await p.wait_finished(held.id, within=60)
        assert done.state is JobState.SUCCEEDED and len(p.emulator.tasks) == 2


async def test_a_retry_under_the_bar_runs_at_once(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=CONFIRM) as p:
        assert await p.dispatcher(GenerationIntent(origin=ORIGIN, text=SMALL, event_keys=("s",))) is None
        [first] = await p.store.recent_jobs("console:u1", limit=5)
        first = await p.wait_finished(first.id, within=60)
        assert (await p.runner.preview(first))[0].credit <= LIMIT
        assert await p.dispatcher(ActionIntent(ORIGIN, first.id, Action.RETRY, event_keys=("r",))) is None
        [again] = [j for j in await p.store.recent_jobs("console:u1", limit=5) if j.id != first.id]
        assert (await p.wait_finished(again.id, within=60)).state is JobState.SUCCEEDED


async def test_a_cancelled_retry_confirm_creates_nothing_and_holds_nothing(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(confirm_above_credits=10_000)) as p:
        await p.dispatcher(GenerationIntent(origin=ORIGIN, text=BIG, event_keys=("big",)))
        [first] = await p.store.recent_jobs("console:u1", limit=5)
        first = await p.wait_finished(first.id, within=60)
        p.dispatcher.settings = CONFIRM
        since = budget_day_start(p.clock())
        spent = await p.store.credits_committed("console:u1", since=since)
        await p.dispatcher(ActionIntent(ORIGIN, first.id, Action.RETRY, event_keys=("r",)))
        [held] = [j for j in await p.store.recent_jobs("console:u1", limit=5) if j.id != first.id]
        await p.dispatcher(ActionIntent(ORIGIN, held.id, Action.CANCEL, event_keys=("c",)))
        held = await p.store.get_job(held.id)
        assert held is not None and held.state is JobState.CANCELLED and not held.task_id
        assert len(p.emulator.tasks) == 1
        assert await p.store.credits_committed("console:u1", since=since) == spent


# -- Discord --------------------------------------------------------------------------------------------


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async with open_discord_rig(tmp_path, monkeypatch) as rig:
        yield rig


def _with_jobs(rig: Rig, jobs: dict[str, object]) -> None:
    """From now on the rig's Apps run with these jobs settings (the Discord rig takes only discord's)."""
    plain = rig.config

    def config(**discord: object) -> Config:
        c = plain(**discord)
        return replace(c, jobs=replace(c.jobs, **jobs))

    rig.config = config  # type: ignore[method-assign]


def _ephemeral_with_buttons(fake: FakeDiscord) -> list[dict[str, object]]:
    """The answers to button presses (ephemeral followups) that carry buttons, oldest first."""
    return [m for m in fake.channel_messages(fake.channel_id) if m["flags"] & 64 and custom_ids(m)]


async def test_discord_a_big_request_asks_first_and_a_cancel_creates_nothing(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    _with_jobs(rig, JOBS)
    async with rig.app() as app:
        ask = await fake.send_message(BIG, mention_bot=True)

        def answer() -> dict[str, object] | None:
            return next(
                (
                    m
                    for m in rig.bot_messages(fake.channel_id)
                    if (m.get("message_reference") or {}).get("message_id") == ask["id"]
                ),
                None,
            )

        reply = await fake.wait_until(answer)
        ids = custom_ids(reply)
        assert [i.split(":")[1] for i in ids] == ["generate", "help", "cancel"]
        draft_id = ids[0].split(":")[2]
        draft = await app.store.get_job(draft_id)
        assert draft is not None and draft.state is JobState.DRAFT
        credit = (await app.runner.preview(draft))[0].credit
        assert credit > LIMIT and str(credit) in str(reply["embeds"])  # the amount is shown
        click = await fake.click_button(reply["id"], f"imabot:cancel:{draft_id}")

        async def cancelled() -> Job | None:
            job = await app.store.get_job(draft_id)
            return job if job is not None and job.state is JobState.CANCELLED else None

        done = await until_job_change(app.runner.listeners, cancelled, 15)
        unfinished = await app.store.unfinished_jobs()
    assert click.acked_type == 6
    assert done.task_id == "" and unfinished == []
    assert emu.tasks == {} and len(emu.state.uploads) == 0


async def test_discord_retry_and_other_model_of_a_big_result_ask_first(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        await fake.send_message(BIG, mention_bot=True)
        (first,) = await rig.jobs(app)
    _with_jobs(rig, JOBS)  # the operator lowered the bar and restarted
    async with rig.app() as app:
        final = rig.message(first.result_ref)
        for n, action in enumerate(("retry", "other_model"), start=1):
            await fake.click_button(final["id"], f"imabot:{action}:{first.id}")
            answers = await fake.wait_until(lambda n=n: len(_ephemeral_with_buttons(fake)) >= n)
            asked = _ephemeral_with_buttons(fake)[-1]
            assert answers and [i.split(":")[1] for i in custom_ids(asked)] == ["generate", "help", "cancel"]
        held = [j for j in await app.store.recent_jobs(rig.user_key, limit=10) if j.id != first.id]
        assert sorted(j.state.value for j in held) == ["draft", "draft"]
        assert {j.spec.model_id for j in held} == {first.spec.model_id, first.spec.model_id.other}
        assert len(emu.tasks) == 1  # nothing created before a Generate press
        # Generate on the retry's confirm runs it
        retry = next(j for j in held if j.spec.model_id is first.spec.model_id)
        confirm = next(
            m for m in _ephemeral_with_buttons(fake) if f"imabot:generate:{retry.id}" in custom_ids(m)
        )
        await fake.click_button(confirm["id"], f"imabot:generate:{retry.id}")

        async def ran() -> Job | None:
            job = await app.store.get_job(retry.id)
            return job if job is not None and job.finished and job.result_ref else None

        done = await until_job_change(app.runner.listeners, ran, 15)
    assert done.state is JobState.SUCCEEDED and len(emu.tasks) == 2


# -- Feishu ---------------------------------------------------------------------------------------------


async def test_feishu_retry_and_other_model_of_a_big_result_ask_first(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        fake, emu = rig.fake, rig.emulator
        async with rig.app() as app:
            await fake.push_event(text_event(BIG, chat_type="p2p", chat_id=P2P))
            (first,) = await rig.jobs(app)
        async with rig.app(jobs=JOBS) as app:  # the operator lowered the bar and restarted
            for n, action in enumerate(("retry", "other_model"), start=1):
                await fake.push_event(
                    card_action_event(
                        action,
                        first.id,
                        open_message_id=first.result_ref,
                        open_chat_id=P2P,
                        operator=first.origin.user_id,
                    )
                )
                await fake.wait_until(lambda n=n: len(rig.replies_to(first.result_ref, "interactive")) >= n)
            asked = [rig.sent_card(m.message_id) for m in rig.replies_to(first.result_ref, "interactive")]
            for card in asked:
                values = [b.get("value") for b in feishu_buttons(card) if b.get("value")]
                assert [v["action"] for v in values] == ["generate", "help", "cancel"]
            held = [j for j in await app.store.recent_jobs(first.user_key, limit=10) if j.id != first.id]
            assert sorted(j.state.value for j in held) == ["draft", "draft"]
            assert {j.spec.model_id for j in held} == {first.spec.model_id, first.spec.model_id.other}
        assert len(emu.tasks) == 1  # nothing created before a Generate press
