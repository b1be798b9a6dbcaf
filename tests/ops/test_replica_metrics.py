"""Issue 13: /metrics per replica. Two real Apps (replicas "a" and "b", each with its console and web
server) over one PostgreSQL, one emulator whose tasks never end. Each replica's job gauges count the jobs
that replica works on, not every job in the shared store; a graceful stop hands A's jobs to B, and B's
gauges then count them; a job cancelled from B leaves A's gauges. Real time, scaled down (lease 1.5 s); every wait is on a condition with a timeout."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from bot.adapters.console import ConsoleAdapter
from bot.app import App
from bot.jobs.model import JobState
from ima.emulator import Emulator, EmulatorConfig
from ima.emulator.faults import FaultKind
from tests.ops.apps import LineFeed, _Sink, config_for
from tests.waiting import until_job_change

pytest.importorskip("asyncpg")
pytestmark = pytest.mark.timeout(120)

LEASE_S = 1.5
WITHIN = 30.0


@asynccontextmanager
async def replica(tmp: Path, name: str, emu: Emulator, url: str) -> AsyncIterator[tuple[App, LineFeed]]:
    folder = tmp / name
    folder.mkdir()
    feed = LineFeed()
    console = ConsoleAdapter(
        stdout=_Sink(), transcript=folder / "t.jsonl", user="tester", cwd=folder, read_line=feed.read_line
    )
    config = config_for(
        folder,
        emu,
        store={"url": url},
        jobs={"lease_seconds": LEASE_S, "replica_id": name, "poll_interval": 0.2},
    )
    app = App(config, adapters=[console])
    try:
        await app.start()
        yield app, feed
    finally:
        feed.end()
        await app.close()


async def gauge(app: App, state: str) -> float:
    assert app.web is not None
    async with aiohttp.ClientSession() as http, http.get(app.web.url + "/metrics") as resp:
        text = await resp.text()
    found = re.search(rf'^imabot_jobs{{state="{state}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_each_replica_s_job_gauges_count_the_jobs_it_works_on(tmp_path: Path, pg_url: str) -> None:
    async with Emulator(EmulatorConfig(speed=60.0)) as emu:
        emu.faults.add(FaultKind.MEDIA_NEVER)  # every task stays processing: the jobs stay RUNNING
        async with replica(tmp_path, "a", emu, pg_url) as (a, feed_a):
            for n in range(3):
                feed_a.say(f"/video fast 5s a red kite over the sea, take {n}")
            store = a.store
            assert store is not None

            async def running_in(app: App, count: int) -> bool:
                jobs = await store.recent_jobs("console:tester", limit=10)
                return len(jobs) == count and all(j.state is JobState.RUNNING for j in jobs)

            await until_job_change(a.runner.listeners, lambda: running_in(a, 3), WITHIN)
            async with replica(tmp_path, "b", emu, pg_url) as (b, _feed_b):
                await b.runner.wait_resumed()
                # Three jobs in the store, all A's: A counts them, B none.
                assert (await gauge(a, "running"), await gauge(b, "running")) == (3.0, 0.0)
                # Cancelled from B (a press on B's side): A stops it at its next renewal and counts it no
                # more; B counts it in no state either (it only ended it).
                first = (await store.recent_jobs("console:tester", limit=10))[-1]
                cancelled = await b.runner.cancel(first.id)
                assert cancelled is not None and cancelled.state is JobState.CANCELLED

                async def a_counts(n: float) -> bool:
                    return await gauge(a, "running") == n

                await until_job_change(a.runner.drop_listeners, lambda: a_counts(2.0), WITHIN)
                assert await gauge(b, "running") == 0.0
                await a.close()  # graceful: A's jobs are released, and B adopts them at its next round

                async def b_counts(n: float) -> bool:
                    return await gauge(b, "running") == n

                await until_job_change(b.runner.listeners, lambda: b_counts(2.0), WITHIN)
                assert len(emu.tasks) == 3  # adopted, watched again: no task created twice
