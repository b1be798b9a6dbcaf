"""The long connection during a store fault: a push the bot cannot record is not acknowledged.

Real lark-oapi long connection against the fake Feishu; the fault is real too: another connection holds
the SQLite file's write lock, so every write of the bot fails after its busy timeout until it goes. While
the store is known to fail, the SDK acks a push 500 (Feishu pushes it again later) instead of 200.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.model import Job, JobState
from bot.jobs.store import JobStore
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event
from tests.waiting import until_job_change

from .feishu_app import TEXTS, USER, FeishuRig, message_id, open_rig, title


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


async def _jobs(store: JobStore) -> list[Job]:
    return await store.recent_jobs(f"feishu:{USER}", limit=10)


async def test_a_push_the_store_cannot_record_is_acked_500_and_handled_when_pushed_again(
    rig: FeishuRig,
) -> None:
    async with rig.app() as app:  # transport: the long connection
        assert app.store is not None
        store = app.store
        first = rig.fake.register(text_event("a glider over dunes, fast 5s 720p", mention_bot=BOT_OPEN_ID))
        assert (await rig.fake.push_event(first)).code == 200

        async def running() -> Job | None:
            jobs = await _jobs(store)
            return jobs[0] if jobs and jobs[0].state is JobState.RUNNING else None

        job = await rig.until(app, running)
        later = rig.fake.register(text_event("a second glider, fast 5s 720p", mention_bot=BOT_OPEN_ID))
        holder = sqlite3.connect(rig.store_path, isolation_level=None, timeout=0)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # the write lock, taken from outside the bot
            await until_job_change(app.runner.store_listeners, lambda: store.write_error, within=30)
            refused = await rig.fake.push_event(later)
            # Not acknowledged as handled: Feishu keeps the event and pushes it again later.
            assert refused.code == 500
        finally:
            holder.rollback()
            holder.close()

        async def delivered() -> Job | None:
            current = await store.get_job(job.id)
            return current if current is not None and current.result_ref else None

        await rig.until(app, delivered, within=60)
        assert store.write_error == ""  # a write committed again: pushes are taken from now on
        assert [j.id for j in await _jobs(store)] == [job.id]  # the refused push made no job
        again = await rig.fake.push_event(later)  # Feishu's push again
        assert again.code == 200

        async def second() -> Job | None:
            jobs = await _jobs(store)
            return jobs[0] if len(jobs) == 2 and jobs[0].result_ref else None

        made = await rig.until(app, second, within=60)
    assert made.state is JobState.SUCCEEDED and made.origin.message_id == message_id(later)
    assert len(rig.emulator.tasks) == 2
    # The user of the refused push sees exactly one card, and it shows the result.
    (card,) = rig.replies_to(message_id(later), "interactive")
    assert title(card.card) == TEXTS("success.title", "en") and card.message_id == made.result_ref
