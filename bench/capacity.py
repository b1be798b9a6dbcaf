"""Bench 1, in-flight capacity: N jobs polling at once in one bot process (the real App: store, runner,
ImaClient over loopback HTTP) against the emulator in another process, then, in the same run and against
the same emulator and tasks, a bare aiohttp loop polling at the same rate (the floor of any aiohttp design).
Prints RSS per job, CPU per poll beside the floor, and what that means for 10,000 jobs at the real cadence
with the poll plan (bot/jobs/poll_plan.py: the first poll waits until the task can have ended).

    python bench/capacity.py --jobs 2000 --poll-interval 1   # time-scaled: 8x the polls per job
    python bench/capacity.py --jobs 10000                    # the real 8 s cadence (several minutes)
    python bench/capacity.py --loop asyncio                  # without uvloop, to compare
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import NullChat, bench_config, cpu_s, emulator_process, machine, rss_kb
from bot.app import App
from bot.core import GenerationIntent, Origin
from bot.jobs.model import JobState
from bot.jobs.poll_plan import first_poll_delay
from bot.jobs.progress import Estimate
from ima.emulator import DEFAULT_API_KEY
from ima.models import ESTIMATED_SECONDS, ModelId

REAL_CADENCE_S = 8.0
DETAIL = {"endpoint": "/open/v1/tasks/detail", "status": "200"}
DETAIL_PATH = "/open/v1/tasks/detail"
# How long tasks take for the projection: the emulator's defaults (close to the seed's typical times).
RUN_S = {ModelId.FAST: 90.0, ModelId.PRO: 200.0}


def polls(app: App) -> float:
    name = "imabot_ima_request_duration_seconds_count"
    return app.metrics.registry.get_sample_value(name, DETAIL) or 0.0


async def bot_phase(base_url: str, jobs: int, interval: float, window: float, store_dir: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="imabot-bench-", dir=store_dir) as tmp:
        chat = NullChat()
        config = bench_config(base_url, Path(tmp) / "bench.sqlite3", n=jobs, jobs={"poll_interval": interval})
        app = App(config, adapters=[chat])
        running: set[str] = set()
        all_running = asyncio.Event()

        def watch(job) -> None:  # type: ignore[no-untyped-def]
            if job.state is JobState.RUNNING:
                running.add(job.id)
                if len(running) >= jobs:
                    all_running.set()

        await app.start()
        try:
            app.runner.listeners.append(watch)
            await _warm_up(app)
            gc.collect()
            base_rss, base_cpu = rss_kb(), cpu_s()
            started = time.perf_counter()
            for i in range(jobs):
                origin = Origin("bench", chat_id=f"c{i % 50}", user_id=f"u{i % 500}", message_id=f"m{i}")
                await app.dispatcher(
                    GenerationIntent(origin, f"/video 5s bench clip {i}: a fox running in snow")
                )
            accepted = time.perf_counter() - started
            await asyncio.wait_for(all_running.wait(), timeout=max(120.0, jobs / 20))
            ramp = time.perf_counter() - started
            ramp_cpu = cpu_s() - base_cpu
            # Every job past its first poll (the plan's delay), then in its steady polling rhythm.
            first = first_poll_delay(
                ModelId.FAST, Estimate(*ESTIMATED_SECONDS[ModelId.FAST]), interval=interval
            )
            await asyncio.sleep(first + interval * 1.5)
            gc.collect()
            p0, c0, t0 = polls(app), cpu_s(), time.perf_counter()
            await asyncio.sleep(window)
            p1, c1, t1 = polls(app), cpu_s(), time.perf_counter()
            gc.collect()
            rss = rss_kb()
            assert len(running) == jobs and app.scheduler.running_count == jobs
            task_ids = [j.task_id for j in await app.store.unfinished_jobs() if j.task_id]
        finally:
            await app.close()
    return {
        "accepted": accepted,
        "ramp": ramp,
        "ramp_cpu": ramp_cpu,
        "base_rss": base_rss,
        "rss": rss,
        "polls": p1 - p0,
        "cpu": c1 - c0,
        "elapsed": t1 - t0,
        "task_ids": task_ids,
    }


async def bare_phase(base_url: str, task_ids: list[str], interval: float, window: float) -> dict:
    """The floor: one session, one coroutine per task posting the same detail request every interval."""
    import json

    headers = {
        "Authorization": f"Bearer {DEFAULT_API_KEY}",
        "Content-Type": "application/json",
        "x-app-source": "ima_skills",
        "x_app_language": "en",
    }
    count = [0]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def poll(task_id: str, offset: float) -> None:
            await asyncio.sleep(offset)
            body = json.dumps({"task_id": task_id}).encode()
            while True:
                async with session.post(base_url + DETAIL_PATH, data=body, headers=headers) as resp:
                    data = json.loads(await resp.read())
                assert data["code"] in (0, 200)
                count[0] += 1
                await asyncio.sleep(interval)

        n = len(task_ids)
        tasks = [asyncio.create_task(poll(t, interval * i / n)) for i, t in enumerate(task_ids)]
        try:
            await asyncio.sleep(interval * 2.5)
            gc.collect()
            p0, c0, t0 = count[0], cpu_s(), time.perf_counter()
            await asyncio.sleep(window)
            p1, c1, t1 = count[0], cpu_s(), time.perf_counter()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return {"polls": p1 - p0, "cpu": c1 - c0, "elapsed": t1 - t0}


def polls_per_job(model: ModelId, *, learned: bool) -> tuple[float, float]:
    """(polls in a task's life, its run time) at the real cadence, for the projection."""
    run = RUN_S[model]
    low = ESTIMATED_SECONDS[model][0]
    # Learned: the store's 20th percentile of past run times (these tasks all take `run`, found one poll later).
    est = (
        Estimate(int(run + REAL_CADENCE_S), int(run) + 60, from_history=True) if learned else Estimate(low, 0)
    )
    first = first_poll_delay(model, est, interval=REAL_CADENCE_S)
    return math.ceil(max(0.0, run - first) / REAL_CADENCE_S) + 1, run


async def run(jobs: int, interval: float, window: float, store_dir: str | None) -> None:
    from bot.speed import loop_name

    async with emulator_process() as base_url:
        bot = await bot_phase(base_url, jobs, interval, window, store_dir)
        bare = await bare_phase(base_url, bot["task_ids"], interval, window)
    bot_ms = bot["cpu"] / bot["polls"] * 1000 if bot["polls"] else float("nan")
    bare_ms = bare["cpu"] / bare["polls"] * 1000 if bare["polls"] else float("nan")
    per_job_kb = (bot["rss"] - bot["base_rss"]) / jobs
    print(
        f"capacity: {jobs} jobs in flight, poll interval {interval:g} s, window {bot['elapsed']:.1f} s, "
        f"loop {loop_name()}"
    )
    print(f"  machine            {machine()}")
    print(
        f"  admission          {jobs} messages accepted in {bot['accepted']:.1f} s, all polling after "
        f"{bot['ramp']:.1f} s ({jobs / bot['ramp']:.0f} jobs/s, {bot['ramp_cpu'] / jobs * 1000:.2f} ms CPU per job)"
    )
    print(
        f"  memory             RSS {bot['base_rss'] / 1024:.1f} MiB before, {bot['rss'] / 1024:.1f} MiB with "
        f"{jobs} jobs: {per_job_kb:.1f} KiB per job (target <= 50)"
    )
    print(
        f"  polls              bot {bot['polls']:.0f} in {bot['elapsed']:.1f} s = {bot['polls'] / bot['elapsed']:.0f}/s;"
        f" bare {bare['polls']:.0f} in {bare['elapsed']:.1f} s = {bare['polls'] / bare['elapsed']:.0f}/s"
        f" (expected {jobs / interval:.0f}/s)"
    )
    print(
        f"  CPU per poll       bot {bot_ms:.3f} ms, bare aiohttp loop {bare_ms:.3f} ms: "
        f"{bot_ms / bare_ms:.2f}x the floor (target <= 1.2)"
    )
    print(
        "  10,000 jobs at the real 8 s cadence (CPU per poll as measured; emulator run times Fast 90 s, Pro 200 s):"
    )
    for model in (ModelId.FAST, ModelId.PRO):
        old = math.ceil(RUN_S[model] / REAL_CADENCE_S) + 1
        rows = [("every 8 s from the start", old)]
        for learned in (False, True):
            rows.append(
                (
                    f"poll plan, {'learned' if learned else 'nothing learned'}",
                    polls_per_job(model, learned=learned)[0],
                )
            )
        for label, n in rows:
            rate = 10000 * n / RUN_S[model]  # polls per second across 10,000 jobs in flight
            print(
                f"    {model.value:<13} {label:<30} {n:4.0f} polls/job  {rate:6.0f} polls/s  "
                f"{rate * bot_ms / 10:5.1f} % of a core (bare loop: {rate * bare_ms / 10:5.1f} %)"
            )


async def _warm_up(app: App) -> None:
    """The catalog is fetched and cached before the baseline is read."""
    from ima.models import TaskType

    await app.client.fetch_product(TaskType.TEXT_TO_VIDEO, ModelId.FAST)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--poll-interval", type=float, default=1.0)
    p.add_argument(
        "--window", type=float, default=10.0, help="seconds of steady state to measure, each phase"
    )
    p.add_argument("--store-dir", help="where the SQLite file goes (default: the system temp dir)")
    p.add_argument("--loop", choices=["auto", "asyncio"], default="auto", help="asyncio: never uvloop")
    a = p.parse_args()
    if a.loop == "asyncio":
        os.environ["IMABOT_LOOP"] = "asyncio"
    from bot.speed import run as run_on_loop

    run_on_loop(run(a.jobs, a.poll_interval, a.window, a.store_dir))


if __name__ == "__main__":
    main()
