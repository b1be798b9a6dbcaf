"""Benches 2 and 3 on the Feishu long connection (lark-oapi's real ws client against the fake Feishu in a
process of its own, the emulator in another): the ack latency of a burst of platform events while jobs
run, and message → pre-notice latency with the catalog cached.

    python bench/ingress.py                 # 1000 running jobs, then a burst of 1000 events
    python bench/ingress.py --load 200 --burst 200 --samples 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, NullChat, bench_config, cpu_s, describe_ms, emulator_process, machine
from bot.app import App
from bot.core import GenerationIntent, Origin
from bot.jobs.model import JobState


@contextlib.asynccontextmanager
async def fake_feishu() -> AsyncIterator[tuple[str, str]]:
    """Runs bench/_fake_feishu.py in a child process; yields (fake URL, control URL)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "_fake_feishu.py"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=str(ROOT),
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        m = re.search(r"fake (\S+) control (\S+)", line)
        if not m:
            raise RuntimeError(f"the fake Feishu did not start: {line!r}")
        yield m.group(1), m.group(2)
    finally:
        proc.terminate()
        await proc.wait()


async def run(load: int, burst: int, samples: int) -> None:
    async with (
        emulator_process() as base_url,
        fake_feishu() as (fake_url, control),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http,
    ):
        with tempfile.TemporaryDirectory(prefix="imabot-bench-") as tmp:
            feishu = {
                "enabled": True,
                "app_id": "cli_test_app",
                "app_secret": "test-secret",
                "domain": fake_url,
                "transport": "ws",
            }
            config = bench_config(
                base_url,
                Path(tmp) / "bench.sqlite3",
                n=load + burst + 2 * samples + 10,
                feishu=feishu,
                jobs={"per_user_concurrency": 2, "max_pending_per_user": 5},
            )
            app = App(config, adapters=[NullChat()])
            past_create: set[str] = set()  # jobs running, or already finished
            changed = asyncio.Event()

            def watch(job: Any) -> None:
                if job.state is JobState.RUNNING or job.finished:
                    past_create.add(job.id)
                    changed.set()

            async def post(path: str, body: dict[str, Any]) -> Any:
                async with http.post(control + path, json=body) as resp:
                    resp.raise_for_status()
                    return await resp.json()

            async def until_past_create(count: int, within: float) -> float:
                started = time.perf_counter()
                async with asyncio.timeout(within):
                    while len(past_create) < count:
                        changed.clear()
                        await changed.wait()
                return time.perf_counter() - started

            await app.start()
            try:
                app.runner.listeners.append(watch)
                adapter = next(a for a in app.adapters if a.platform == "feishu")
                await asyncio.wait_for(adapter.wait_started(), 60)  # type: ignore[attr-defined]
                while not adapter.connected:  # noqa: ASYNC110 - the SDK signals no connect event
                    await asyncio.sleep(0.05)
                await post("/one", {"tag": "warm"})  # the catalog is fetched and cached here
                idle = [(await post("/one", {"tag": "idle"}))["prenotice"] for _ in range(samples)]

                # The background jobs talk to a null chat: they poll IMA and edit progress like any job,
                # while lark-oapi's per-call HTTP client (see README) stays out of the ingress figures.
                gate = asyncio.Semaphore(16)

                async def background(i: int) -> None:
                    origin = Origin("bench", chat_id=f"c{i % 50}", user_id=f"u{i}", message_id=f"m{i}")
                    async with gate:
                        await app.dispatcher(
                            GenerationIntent(origin, f"/video 5s load clip {i}: a fox in snow")
                        )

                sent = time.perf_counter()
                await asyncio.gather(*(background(i) for i in range(load)))
                await until_past_create(load + samples + 1, within=max(300.0, load / 5))
                ramp = time.perf_counter() - sent
                cpu0, t0 = cpu_s(), time.perf_counter()
                await asyncio.sleep(16)  # two poll cycles of the running jobs, for their CPU figure
                background_cpu = (cpu_s() - cpu0) / (time.perf_counter() - t0)
                busy = [(await post("/one", {"tag": "busy"}))["prenotice"] for _ in range(samples)]

                got = await post("/burst", {"count": burst, "tag": "burst"})
                drained = await until_past_create(load + burst + 2 * samples + 1, within=max(600.0, burst))
            finally:
                await app.close()

    acks = got["acks"]
    print(
        "ingress: Feishu long connection (lark-oapi ws client), fake Feishu and emulator in their own processes"
    )
    print(f"  machine              {machine()}")
    print(
        f"  background           {load} jobs running (8 s polls, 30 s progress edits, null chat): "
        f"{background_cpu * 100:.1f} % of one core (all running {ramp:.1f} s after their messages)"
    )
    print(
        f"  burst ack latency    {burst} events at once while {load} jobs run: {describe_ms(acks)} "
        f"(target p99 <= 100 ms); codes {sorted(set(got['codes']))}"
    )
    print(
        f"  burst to running     all {burst} burst jobs past their create {drained:.1f} s after the burst "
        f"({burst / drained:.0f} jobs/s: parse, store, pre-notice card, IMA create)"
    )
    print(f"  pre-notice, idle     {describe_ms(idle)} (target p50 <= 150 ms)")
    print(f"  pre-notice, loaded   {describe_ms(busy)} ({load} jobs running)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log", help="write the bot's INFO log to this file")
    p.add_argument("--load", type=int, default=1000, help="jobs running in the background")
    p.add_argument("--burst", type=int, default=1000, help="events pushed at once")
    p.add_argument("--samples", type=int, default=30, help="sequential messages timed to their pre-notice")
    a = p.parse_args()
    if a.log:
        from bot.logs import setup_logging

        setup_logging(level="INFO", file=a.log, stream=open(os.devnull, "w"))
    asyncio.run(run(a.load, a.burst, a.samples))


if __name__ == "__main__":
    main()
