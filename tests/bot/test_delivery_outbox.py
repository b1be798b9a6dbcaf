"""Every final reaches its user: the real App on the fake Feishu and the emulator, with platform faults.

A final counts as delivered only when Feishu confirmed the patch or the post; until then it stays in the
outbox, which retries it (also after a restart) and never makes a second visible final.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.outbox import OutboxSettings
from bot.jobs.store import JobStore
from ima.models import ModelId, TaskType
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event

from .feishu_app import TEXTS, USER, FeishuRig, message_id, open_rig, texts, title

REFUSED = {"code": 230002, "msg": "The bot is not in the chat."}  # a 400 the adapter does not retry


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


def refuse_everything(rig: FeishuRig) -> None:
    """Every patch and every post of a message is refused until clear_faults()."""
    for method, path in (("PATCH", "/im/v1/messages/"), ("POST", "/reply$"), ("POST", "/im/v1/messages$")):
        rig.fake.fail_next(method, path, status=400, body=REFUSED, times=1_000_000)


def showing(rig: FeishuRig, wanted: str) -> list[str]:
    """Ids of the bot's cards whose current content has the title wanted."""
    return [m.message_id for m in rig.fake.bot_messages("interactive") if title(m.card) == wanted]


async def job_where(rig: FeishuRig, app: App, check) -> Job:  # type: ignore[no-untyped-def]
    async def found() -> Job | None:
        assert app.store is not None
        jobs = await app.store.recent_jobs(f"feishu:{USER}", limit=5)
        return next((j for j in jobs if check(j)), None)

    return await rig.until(app, found)


def never_give_up(app: App) -> None:
    app.runner.outbox.settings = OutboxSettings(give_up_after=1e12)


async def test_a_final_refused_in_place_and_as_a_post_stays_in_the_outbox_until_confirmed(
    rig: FeishuRig,
) -> None:
    event = text_event("a fox running through snow", mention_bot=BOT_OPEN_ID)
    success = TEXTS("success.title", "en")
    async with rig.app() as app:
        never_give_up(app)
        await rig.fake.push_event(event)
        running = await job_where(rig, app, lambda j: j.state is JobState.RUNNING and j.notice_ref)
        refuse_everything(rig)
        failing = await job_where(
            rig, app, lambda j: j.finished and j.extra.get("outbox", {}).get("attempts", 0) >= 2
        )
        # The first in-place edit was refused, so from then on the final goes out as a new message.
        assert failing.extra.get("final_edit_tried") and failing.extra.get("final_as_post")
        # Not delivered: the store says so, and no card shows the result.
        assert failing.state is JobState.SUCCEEDED and failing.result_ref == ""
        assert showing(rig, success) == []
        rig.fake.clear_faults()
        done = await job_where(rig, app, lambda j: j.result_ref)
    # Exactly one visible final, and it is the message the job records: a new post, not the old card.
    assert showing(rig, success) == [done.result_ref]
    assert done.notice_ref == done.result_ref != running.notice_ref
    (card,) = [m for m in rig.fake.bot_messages("interactive") if m.message_id == done.result_ref]
    assert TEXTS("success.video", "en", url=done.result_url) in texts(card.card)


async def test_an_undelivered_final_is_delivered_after_a_restart_once(rig: FeishuRig) -> None:
    event = text_event("a kite over the sea", mention_bot=BOT_OPEN_ID)
    success = TEXTS("success.title", "en")
    async with rig.app() as app:
        never_give_up(app)
        await rig.fake.push_event(event)
        await job_where(rig, app, lambda j: j.state is JobState.RUNNING and j.notice_ref)
        refuse_everything(rig)
        failing = await job_where(
            rig, app, lambda j: j.finished and j.extra.get("outbox", {}).get("attempts")
        )
        assert failing.result_ref == ""
    rig.fake.clear_faults()
    async with rig.app() as app:  # a new process: the outbox is in the store
        done = await job_where(rig, app, lambda j: j.result_ref)
    assert done.id == failing.id and showing(rig, success) == [done.result_ref]
    assert len(rig.emulator.tasks) == 1
    # The final went where the user looks: a reply to their message (or the card they were watching).
    (final,) = [m for m in rig.fake.bot_messages("interactive") if m.message_id == done.result_ref]
    assert final.parent_id == message_id(event)


async def test_a_final_refused_for_hours_is_given_up_loudly(
    rig: FeishuRig, caplog: pytest.LogCaptureFixture
) -> None:
    event = text_event("a lighthouse at night", mention_bot=BOT_OPEN_ID)
    async with rig.app() as app:
        app.runner.outbox.settings = OutboxSettings(first_delay=60, max_delay=600, give_up_after=3 * 3600)
        await rig.fake.push_event(event)
        await job_where(rig, app, lambda j: j.state is JobState.RUNNING and j.notice_ref)
        refuse_everything(rig)
        with caplog.at_level(logging.ERROR, logger="imabot.outbox"):
            gone = await job_where(rig, app, lambda j: j.extra.get("outbox", {}).get("undeliverable"))
        metrics = app.metrics.render().decode()
        assert 'imabot_finals_undeliverable_total{platform="feishu"} 1.0' in metrics
        assert app.runner.outbox.pending == 0
        assert app.store is not None and await app.store.undelivered_jobs() == []  # wait_idle ends
        # It was retried for the whole window, with growing waits, then left alone.
        attempts = gone.extra["outbox"]["attempts"]
        assert 8 <= attempts <= 3 * 3600 / 300 + 8
        assert rig.clock.now - gone.finished_at >= 3 * 3600
    assert gone.result_ref == "" and any("undeliverable" in r.getMessage() for r in caplog.records)


async def test_finals_of_the_previous_run_wait_for_the_adapter_never_for_start(rig: FeishuRig) -> None:
    """A job cut off mid-create: its "uncertain" card must reach the user after a restart (the adapter
    is up before any delivery), and the restart does not wait for it."""
    event = rig.fake.register(text_event("a boat in a storm", mention_bot=BOT_OPEN_ID))
    origin_msg = message_id(event)
    store = await JobStore.open(rig.store_path, clock=rig.clock)
    from bot.core import Origin

    job = Job(
        id="cut0001",
        user_key=f"feishu:{USER}",
        origin=Origin("feishu", "oc_group0001", USER, origin_msg),
        spec=JobSpec(task_type=TaskType.TEXT_TO_VIDEO, model_id=ModelId.FAST, prompt="a boat in a storm"),
        locale="en",
        created_at=rig.clock(),
    )
    try:
        assert await store.add_job(job)
        await store.transition(job.id, JobState.PREPARING)
        await store.transition(job.id, JobState.CREATING)
    finally:
        await store.close()
    async with rig.app() as app:
        done = await job_where(rig, app, lambda j: j.result_ref)
    assert done.state is JobState.UNCERTAIN and done.error_key == "create_interrupted"
    (card,) = rig.fake.bot_messages("interactive")
    assert card.parent_id == origin_msg and card.message_id == done.result_ref
    assert TEXTS("uncertain.body", "en") in texts(card.card)
    assert len(rig.emulator.tasks) == 0


async def test_a_discord_restart_with_finals_to_deliver_comes_up_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two jobs cut off mid-create: before, the restart delivered their "uncertain" finals before the
    gateway started (30 s × 3 login waits each, then nothing delivered). Now start() returns before any
    delivery, and both finals reach the channel once the adapter is up."""
    import time

    from bot.core import Origin
    from ima.emulator import Emulator, EmulatorConfig
    from tests.bot.discord_app import Rig, VirtualClock
    from tests.fakes.discord_server import FakeDiscord

    clock = VirtualClock(time.time())
    async with FakeDiscord(clock=clock) as fake, Emulator(EmulatorConfig(), clock=clock) as emu:
        fake.install(monkeypatch)
        rig = Rig(fake, emu, clock, tmp_path / "jobs.sqlite3")
        store = await JobStore.open(rig.store_path, clock=clock)
        try:
            for n in (1, 2):
                job = Job(
                    id=f"cut{n}",
                    user_key=rig.user_key,
                    origin=Origin("discord", fake.channel_id, fake.user_id, "", guild_id=fake.guild_id),
                    spec=JobSpec(task_type=TaskType.TEXT_TO_VIDEO, model_id=ModelId.FAST, prompt=f"clip {n}"),
                    locale="en",
                    created_at=clock(),
                )
                assert await store.add_job(job)
                await store.transition(job.id, JobState.PREPARING)
                await store.transition(job.id, JobState.CREATING)
        finally:
            await store.close()
        started = time.perf_counter()
        async with rig.app() as app:
            up = time.perf_counter() - started
            jobs = await rig.jobs(app, 2)
        assert up < 10  # the gateway identified; no login waits in front of it
        assert [j.state for j in jobs] == [JobState.UNCERTAIN] * 2
        titles = [m["embeds"][0]["title"] for m in rig.bot_messages(fake.channel_id) if m["embeds"]]
        assert titles == [TEXTS("uncertain.title", "en")] * 2
        assert fake.errors == [] and len(emu.tasks) == 0


async def test_a_final_edited_in_place_before_a_crash_is_never_posted_again(rig: FeishuRig) -> None:
    """The card showed the final, but the process died before it stored that (result_ref empty). After
    the restart the card refuses patches for a while: the bot must keep retrying the patch, never post the
    final as a second card."""
    event = text_event("a comet over the mountains", mention_bot=BOT_OPEN_ID)
    success = TEXTS("success.title", "en")
    async with rig.app() as app:
        await rig.fake.push_event(event)
        done = await job_where(rig, app, lambda j: j.result_ref)
        assert app.store is not None and done.extra.get("final_edit_tried")
        await app.store.update_job(done.id, result_ref="")  # the crash: delivered, not recorded
    assert showing(rig, success) == [done.notice_ref]
    rig.fake.fail_next("PATCH", "/im/v1/messages/", status=400, body=REFUSED, times=1_000_000)
    async with rig.app() as app:
        never_give_up(app)
        await job_where(rig, app, lambda j: j.extra.get("outbox", {}).get("attempts", 0) >= 3)
        assert showing(rig, success) == [done.notice_ref]  # still one card with the result
        rig.fake.clear_faults()
        again = await job_where(rig, app, lambda j: j.result_ref)
    assert again.result_ref == done.notice_ref and showing(rig, success) == [done.notice_ref]
    assert not again.extra.get("final_as_post")
