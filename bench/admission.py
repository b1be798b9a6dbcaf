"""Bench 4, admission: N messages through the real App (console-like null chat, SQLite store, the emulator
in its own process), C at a time; prints accepted jobs/s, time until every job is RUNNING at IMA, CPU per
job, and the store's statements and commits per job (SQLite trace), beside an empty-loop floor.

    python bench/admission.py --jobs 1000 --concurrency 1    # the console adapter: one message at a time
    python bench/admission.py --jobs 1000 --concurrency 16   # the Feishu adapter's 16 at once
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import NullChat, bench_config, cpu_s, emulator_process, machine
from bot.app import App
from bot.core import GenerationIntent, Origin
from bot.jobs.model import JobState


async def run(jobs: int, concurrency: int, users: int, group_limit: int) -> None:
    from bot.speed import loop_name

    async with emulator_process() as base_url:
        with tempfile.TemporaryDirectory(prefix="imabot-bench-") as tmp:
            chat = NullChat()
            config = bench_config(base_url, Path(tmp) / "bench.sqlite3", n=jobs)
            app = App(config, adapters=[chat])
            running: set[str] = set()
            all_running = asyncio.Event()

            def watch(job) -> None:  # type: ignore[no-untyped-def]
                if job.state is JobState.RUNNING:
                    running.add(job.id)
                    if len(running) >= jobs:
                        all_running.set()

            await app.start()
            statements = [0, 0]  # all statements, commits

            def trace(sql: str) -> None:
                statements[0] += 1
                statements[1] += sql.lstrip().upper().startswith("COMMIT")

            try:
                app.runner.listeners.append(watch)
                from ima.models import ModelId, TaskType

                await app.client.fetch_product(TaskType.TEXT_TO_VIDEO, ModelId.FAST)  # catalog cached first
                db = app.store._db  # bench only: count what the store sends to SQLite
                await db._live().set_trace_callback(trace)
                if group_limit:
                    db.group_limit = group_limit  # bench only: try group commit (see bot/jobs/_sqlite.py)
                gate = asyncio.Semaphore(concurrency)
                c0, t0 = cpu_s(), time.perf_counter()

                async def one(i: int) -> None:
                    origin = Origin(
                        "bench", chat_id=f"c{i % 50}", user_id=f"u{i % users}", message_id=f"m{i}"
                    )
                    async with gate:
                        await app.dispatcher(
                            GenerationIntent(origin, f"/video 5s clip {i}: a fox running in snow")
                        )

                await asyncio.gather(*(one(i) for i in range(jobs)))
                accepted = time.perf_counter() - t0
                await asyncio.wait_for(all_running.wait(), timeout=max(300.0, jobs))
                ramp, cpu = time.perf_counter() - t0, cpu_s() - c0
                n_statements, n_commits = statements
            finally:
                await app.close()
    print(
        f"admission: {jobs} messages, {concurrency} at a time, {users} users, loop {loop_name()}, "
        f"store group limit {group_limit or 'default'}"
    )
    print(f"  machine            {machine()}")
    print(f"  accepted           {accepted:.1f} s = {jobs / accepted:.0f} jobs/s (target >= 100)")
    print(f"  all at IMA         {ramp:.1f} s = {jobs / ramp:.0f} jobs/s (RUNNING: created at the emulator)")
    print(
        f"  CPU per job        {cpu / jobs * 1000:.2f} ms (dispatch, store, pre-notice, create, first states)"
    )
    print(
        f"  store per job      {n_statements / jobs:.1f} statements, {n_commits / jobs:.2f} commits (each an fsync)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--loop", choices=["auto", "asyncio"], default="auto")
    p.add_argument("--group-limit", type=int, default=0, help="writers per store commit (0: the default)")
    a = p.parse_args()
    if a.loop == "asyncio":
        os.environ["IMABOT_LOOP"] = "asyncio"
    from bot.speed import run as run_on_loop

    run_on_loop(run(a.jobs, a.concurrency, a.users, a.group_limit))


if __name__ == "__main__":
    main()
