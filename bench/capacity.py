"""Bench 1, in-flight capacity: N jobs polling at once in one bot process (the real App: store, runner,
ImaClient over loopback HTTP) against the emulator in another process. Prints RSS per job above the
baseline, CPU, polls per second, and CPU at the real 8 s cadence computed from the CPU cost of one poll.

    python bench/capacity.py --jobs 10000                    # the real 8 s cadence
    python bench/capacity.py --jobs 2000 --poll-interval 1   # time-scaled: 8x the polls, same CPU per poll
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import NullChat, bench_config, cpu_s, emulator_process, machine, rss_kb
from bot.app import App
from bot.core import GenerationIntent, Origin
from bot.jobs.model import JobState

REAL_CADENCE_S = 8.0
ADMISSION_CONCURRENCY = 16  # as many messages at once as the Feishu adapter handles
DETAIL = {"endpoint": "/open/v1/tasks/detail", "status": "200"}


def polls(app: App) -> float:
    name = "imabot_ima_request_duration_seconds_count"
    return app.metrics.registry.get_sample_value(name, DETAIL) or 0.0


async def run(jobs: int, poll_interval: float, window: float, store_dir: str | None) -> None:
    async with emulator_process() as base_url:
        with tempfile.TemporaryDirectory(prefix="imabot-bench-", dir=store_dir) as tmp:
            chat = NullChat()
            config = bench_config(base_url, Path(tmp) / "bench.sqlite3", n=jobs,
                                  jobs={"poll_interval": poll_interval})  # fmt: skip
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
                await asyncio.sleep(poll_interval * 1.5)  # every job is in its steady polling rhythm
                gc.collect()
                p0, c0, t0 = polls(app), cpu_s(), time.perf_counter()
                await asyncio.sleep(window)
                p1, c1, t1 = polls(app), cpu_s(), time.perf_counter()
                gc.collect()
                rss = rss_kb()
                assert len(running) == jobs and app.scheduler.running_count == jobs
            finally:
                await app.close()

    n_polls, elapsed, cpu = p1 - p0, t1 - t0, c1 - c0
    per_poll_ms = cpu / n_polls * 1000 if n_polls else float("nan")
    per_job_kb = (rss - base_rss) / jobs
    at_real = jobs / REAL_CADENCE_S * per_poll_ms / 1000
    print(f"capacity: {jobs} jobs in flight, poll interval {poll_interval:g} s, window {elapsed:.1f} s")
    print(f"  machine            {machine()}")
    print(
        f"  admission          {jobs} messages accepted in {accepted:.1f} s, all polling after {ramp:.1f} s "
        f"({jobs / ramp:.0f} jobs/s, {ramp_cpu / jobs * 1000:.2f} ms CPU per job)"
    )
    print(
        f"  memory             RSS {base_rss / 1024:.1f} MiB before, {rss / 1024:.1f} MiB with {jobs} jobs: "
        f"{per_job_kb:.1f} KiB per job (target <= 50)"
    )
    print(
        f"  polls              {n_polls:.0f} in {elapsed:.1f} s = {n_polls / elapsed:.0f} polls/s "
        f"(expected {jobs / poll_interval:.0f}/s)"
    )
    print(f"  CPU                {cpu / elapsed * 100:.1f} % of one core = {per_poll_ms:.3f} ms per poll")
    scaled = "" if jobs == 10000 else f"; 10000 jobs: {10000 / REAL_CADENCE_S * per_poll_ms / 10:.1f} %"
    print(
        f"  at the real 8 s    {jobs} jobs: {at_real * 100:.1f} % of one core (target <= 20){scaled}; "
        f"20 % of a core carries {0.2 * REAL_CADENCE_S / (per_poll_ms / 1000):.0f} jobs"
    )


async def _warm_up(app: App) -> None:
    """The catalog is fetched and cached before the baseline is read."""
    from ima.models import ModelId, TaskType

    await app.client.fetch_product(TaskType.TEXT_TO_VIDEO, ModelId.FAST)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=10000)
    p.add_argument("--poll-interval", type=float, default=REAL_CADENCE_S)
    p.add_argument("--window", type=float, default=24.0, help="seconds of steady state to measure")
    p.add_argument("--store-dir", help="where the SQLite file goes (default: the system temp dir)")
    a = p.parse_args()
    asyncio.run(run(a.jobs, a.poll_interval, a.window, a.store_dir))


if __name__ == "__main__":
    main()
