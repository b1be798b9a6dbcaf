"""/healthz while a restart picks up the previous run: 200 "resuming", serving, never blocked by it.

The real App (Feishu webhook transport, so the web server runs) on the fake Feishu and the emulator. The
previous run left a failure final undelivered; the fake holds the reply that delivers it, so the test
looks at /healthz while the outbox's first pass is known to be under way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.core import Origin
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.store import JobStore
from ima.models import ModelId, TaskType
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event

from .feishu_app import GROUP, TEXTS, USER, FeishuRig, message_id, open_rig, title


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


async def healthz(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/healthz") as resp:
        return resp.status, await resp.json()


async def left_undelivered(rig: FeishuRig, origin_msg: str) -> Job:
    """A job of the previous run that failed before any task, its final never confirmed."""
    store = await JobStore.open(rig.store_path, clock=rig.clock)
    job = Job(
        id="left0001",
        user_key=f"feishu:{USER}",
        origin=Origin("feishu", GROUP, USER, origin_msg),
        spec=JobSpec(task_type=TaskType.TEXT_TO_VIDEO, model_id=ModelId.FAST, prompt="a boat in a storm"),
        locale="en",
        created_at=rig.clock(),
    )
    try:
        assert await store.add_job(job)
        await store.transition(job.id, JobState.PREPARING)
        return await store.transition(job.id, JobState.FAILED, error_key="transport", finished_at=rig.clock())
    finally:
        await store.close()


async def test_healthz_says_resuming_while_the_previous_runs_finals_go_out(rig: FeishuRig) -> None:
    origin_msg = message_id(rig.fake.register(text_event("a boat in a storm", mention_bot=BOT_OPEN_ID)))
    left = await left_undelivered(rig, origin_msg)
    held = rig.fake.hold_requests("POST", f"/{origin_msg}/reply$")  # Feishu takes its time with it
    try:
        async with rig.app(transport="webhook") as app, rig.poster(app) as poster:
            assert app.web is not None and app.store is not None
            store = app.store
            await rig.fake.wait_until(lambda: held.waiting == 1)
            status, body = await healthz(app.web.url)
            # Up and serving (store and platform fine), while the previous run is still being picked up.
            assert status == 200 and body["status"] == "resuming"
            assert body["store"] is True and body["adapters"] == {"feishu": True}
            # Resuming blocks nothing: a new message is taken and answered meanwhile.
            fresh = rig.fake.register(text_event("a kite over the sea", mention_bot=BOT_OPEN_ID))
            assert (await poster.post(fresh)).status == 200

            async def answered() -> list[Job] | None:
                jobs = await store.recent_jobs(f"feishu:{USER}", limit=5)
                new = [j for j in jobs if j.id != left.id and j.notice_ref]
                return new or None

            await rig.until(app, answered)
            assert (await healthz(app.web.url))[1]["status"] == "resuming"
            held.release()

            async def delivered() -> Job | None:
                job = await store.get_job(left.id)
                return job if job is not None and job.result_ref else None

            done = await rig.until(app, delivered)
            status, body = await healthz(app.web.url)
            assert (status, body["status"]) == (200, "ok")
    finally:
        held.release()
    (final,) = rig.replies_to(origin_msg, "interactive")
    assert final.message_id == done.result_ref and title(final.card) == TEXTS("failure.title", "en")
