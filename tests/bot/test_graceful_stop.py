"""A graceful stop (SIGTERM: App.close) while work is on its way, through the real App on the fake Feishu.

The order is the point: intake stops first (the long connection closes, the webhook answers 503, events
already acked are handed on), the runner settles while the platform still takes messages (a final on its
way lands and is recorded; no create begins), and only then does the adapter close its session. The fake
holds one request so each test stops the App at a known moment; nothing here waits on time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import App
from bot.jobs.model import Job, JobState
from bot.jobs.store import JobStore
from tests.fakes.feishu_events import BOT_OPEN_ID, Ack, text_event
from tests.fakes.feishu_server import Hold

from .feishu_app import TEXTS, USER, FeishuRig, message_id, open_rig, title

SUCCESS = "Your video is ready!"  # in the final card's title (TEXTS "success.title", en)
CREATING = "Sending the job to"  # in the card's "creating" stage
WITHIN = 60.0  # hang guards only


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


@contextlib.asynccontextmanager
async def started(rig: FeishuRig, *, transport: str = "ws") -> AsyncIterator[App]:
    """A started App whose close() the test calls itself (closed again at the end: close is idempotent,
    and a failed test leaves nothing running)."""
    app = App(rig.config(transport=transport), clock=rig.clock, sleep=rig.clock.sleep)
    connects = rig.fake.ws.connects
    try:
        await app.start()
        (adapter,) = app.adapters
        async with asyncio.timeout(WITHIN):
            await adapter.wait_started()
        if transport == "ws":
            ws = rig.fake.ws
            await rig.fake.wait_until(lambda: ws.connects > connects and ws.connected_clients == 1, WITHIN)
        yield app
    finally:
        await app.close()


async def stored(rig: FeishuRig) -> list[Job]:
    store = await JobStore.open(rig.store_path, clock=rig.clock)
    try:
        return await store.recent_jobs(f"feishu:{USER}", limit=10)
    finally:
        await store.close()


async def close_while_held(rig: FeishuRig, app: App, held: Hold, *, until: str) -> None:
    """Stops the App while a request is held, and lets the request through once the stop reached
    `until`: "intake" (the long connection is gone) or "runner" (the runner began to settle), so its
    answer comes in the middle of the stop."""
    closing = asyncio.create_task(app.close())
    async with asyncio.timeout(WITHIN):
        if until == "intake":
            await rig.fake.wait_until(lambda: rig.fake.ws.connected_clients == 0, WITHIN)
        else:
            await app.runner.wait_closing()
        assert not closing.done()  # the stop waits for the held request
        held.release()
        await closing


async def stop_with_held(rig: FeishuRig, event: dict[str, Any], held: Hold, *, until: str) -> Ack:
    """Starts the App, pushes event, and stops the App once the held request waits (close_while_held);
    returns the event's ack."""
    try:
        async with started(rig) as app:
            ack = await rig.fake.push_event(event)
            await rig.fake.wait_until(lambda: held.waiting == 1, WITHIN)
            await close_while_held(rig, app, held, until=until)
    finally:
        held.release()
    return ack


async def test_a_final_on_its_way_at_the_stop_lands_and_is_recorded(rig: FeishuRig) -> None:
    event = text_event("a fox running through snow", mention_bot=BOT_OPEN_ID)
    held = rig.fake.hold_requests("PATCH", "/messages/", containing=SUCCESS)
    await stop_with_held(rig, event, held, until="runner")
    (job,) = await stored(rig)
    # Recorded as delivered before the stop ended: the next start sends nothing again.
    assert job.state is JobState.SUCCEEDED and job.result_ref == job.notice_ref
    card = rig.fake.messages[job.result_ref]
    assert card.parent_id == message_id(event) and title(card.card) == TEXTS("success.title", "en")
    assert not job.extra.get("outbox")
    # The held edit was the only final edit, and the platform confirmed it.
    finals = [c for c in rig.fake.calls_to("PATCH", f"/messages/{job.result_ref}$") if SUCCESS in str(c.body)]
    assert [c.status for c in finals] == [200]


async def test_a_job_stopped_in_its_creating_notice_sends_nothing_to_ima_and_runs_after_the_restart(
    rig: FeishuRig,
) -> None:
    event = text_event("a kite over the sea", mention_bot=BOT_OPEN_ID)
    held = rig.fake.hold_requests("PATCH", "/messages/", containing=CREATING)
    await stop_with_held(rig, event, held, until="runner")
    (job,) = await stored(rig)
    # Stopped between its "creating" notice and the create: nothing reached IMA, and it is not uncertain.
    assert job.state is JobState.PREPARING and not rig.emulator.tasks
    async with rig.app() as again:
        (done,) = await rig.jobs(again)
    assert done.id == job.id and done.state is JobState.SUCCEEDED and len(rig.emulator.tasks) == 1
    cards = rig.replies_to(message_id(event), "interactive")
    assert [m.message_id for m in cards] == [done.notice_ref]  # one card, edited to its final


async def test_an_acked_event_still_becomes_a_job_when_the_stop_comes_while_it_is_read(
    rig: FeishuRig,
) -> None:
    photo = rig.fake.register(text_event("a lighthouse at dusk, waves crashing", mention_bot=BOT_OPEN_ID))
    ask = text_event("animate this", mention_bot=BOT_OPEN_ID, parent_id=message_id(photo))
    # Reading the quoted message is the adapter's own step before the handler: held, the event is acked
    # (Feishu will not push it again) but not yet a job when the stop comes.
    held = rig.fake.hold_requests("GET", f"/messages/{message_id(photo)}$")
    ack = await stop_with_held(rig, ask, held, until="intake")
    assert ack.code == 200
    (job,) = await stored(rig)
    assert job.origin.message_id == message_id(ask) and not job.finished
    async with rig.app() as again:
        (done,) = await rig.jobs(again)
    assert done.id == job.id and done.state is JobState.SUCCEEDED
    assert [t.prompt for t in rig.emulator.tasks.values()] == ["animate this"]


async def test_the_webhook_refuses_events_once_intake_stopped_and_feishu_pushes_again(
    rig: FeishuRig,
) -> None:
    event = rig.fake.register(text_event("a paper boat in the rain", mention_bot=BOT_OPEN_ID))
    async with started(rig, transport="webhook") as app, rig.poster(app) as poster:
        (adapter,) = app.adapters
        await adapter.stop_intake()
        reply = await poster.post(event)
        assert reply.status == 503 and not adapter.connected
        await app.close()
    assert await stored(rig) == []  # nothing taken: Feishu pushes it again (to another replica)
