"""A store that refuses writes for a while: jobs wait for it instead of dying, and /healthz says so.

The fault is real: another process holds the SQLite file's write lock (as a backup tool or a stuck
second bot would), so every write of the bot fails after its 5 s busy timeout until the lock goes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.jobs.model import JobState
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event
from tests.waiting import until_job_change

from .feishu_app import USER, FeishuRig, open_rig


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


async def healthz(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as s, s.get(f"{url}/healthz") as resp:
        return resp.status, await resp.json()


async def test_a_job_outlasts_a_store_that_refuses_writes_and_healthz_names_the_store(rig: FeishuRig) -> None:
    async with rig.app(transport="webhook") as app, rig.poster(app) as poster:
        assert app.store is not None and app.web is not None
        store = app.store
        event = rig.fake.register(text_event("a glider over dunes, fast 5s 720p", mention_bot=BOT_OPEN_ID))
        reply = await poster.post(event)
        assert reply.status == 200

        async def running():  # type: ignore[no-untyped-def]
            jobs = await store.recent_jobs(f"feishu:{USER}", limit=1)
            return jobs[0] if jobs and jobs[0].state is JobState.RUNNING else None

        job = await rig.until(app, running)
        holder = sqlite3.connect(rig.store_path, isolation_level=None, timeout=0)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # the write lock, taken from outside the bot
            await until_job_change(app.runner.store_listeners, lambda: store.write_error, within=30)
            status, body = await healthz(app.web.url)
            assert status == 503 and body["store"] is False and "locked" in body["store_error"]
            assert (await store.get_job(job.id)).state is JobState.RUNNING  # reads still work
            # A message the store cannot record now is not acked: Feishu pushes it again later.
            later = rig.fake.register(text_event("a second glider, fast 5s 720p", mention_bot=BOT_OPEN_ID))
            refused = await poster.post(later)
            assert refused.status == 503
        finally:
            holder.rollback()
            holder.close()
        done = await rig.until(app, lambda: _delivered(store, job.id), within=60)
        status, body = await healthz(app.web.url)
        assert status == 200 and body["store"] is True and "store_error" not in body
        assert (await poster.post(later)).status == 200  # Feishu's push again, once the store heals
        second = await rig.until(app, lambda: _second(store), within=60)
        metrics = app.metrics.render().decode()
    assert done.state is JobState.SUCCEEDED and done.result_ref
    assert (
        second.state is JobState.SUCCEEDED
        and second.origin.message_id == later["event"]["message"]["message_id"]
    )
    assert len(rig.emulator.tasks) == 2
    failures = [ln for ln in metrics.splitlines() if ln.startswith("imabot_store_write_failures_total")]
    assert failures and float(failures[0].split()[-1]) >= 1


async def _delivered(store, job_id: str):  # type: ignore[no-untyped-def]
    job = await store.get_job(job_id)
    return job if job is not None and job.finished and job.result_ref else None


async def _second(store):  # type: ignore[no-untyped-def]
    jobs = await store.recent_jobs(f"feishu:{USER}", limit=5)
    return jobs[0] if len(jobs) == 2 and jobs[0].finished and jobs[0].result_ref else None
