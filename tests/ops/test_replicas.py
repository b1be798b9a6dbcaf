"""Issue 13: two `imabot run` replicas on one PostgreSQL, with the emulator and the fake Feishu (each replica
holds a long connection; the fake hands events to each in turn).

Failover: 200 jobs from 20 users under a daily budget, one replica SIGKILLed at a random moment and started
again later. Every message ends as exactly one visible final card or one budget refusal; IMA never sees a
second task for a job; the survivor adopts the dead replica's jobs within lease + one renewal round (plus a
slack for a loaded machine, the measured figure is printed); the global and per-user caps hold at IMA and no
user is charged past the budget. Rolling restart: SIGTERM A, start A, SIGTERM B, start B with jobs in
flight: the same, and no job ends uncertain (a graceful stop lets its creates come back first).

Kill points are counted in the replicas' requests to the fake, never in time; waits re-check after every
request to the fake (and at least every RECHECK_S, the replicas write the store after their last request).
Replicas are killed in a `finally` whatever happens."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from ima.emulator import DEFAULT_API_KEY, Emulator, EmulatorConfig
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event
from tests.fakes.feishu_server import FakeFeishu
from tests.ops.outcome import final_cards, refusals, until
from tests.ops.procs import start_run

asyncpg = pytest.importorskip("asyncpg")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SEED = int(os.environ.get("IMABOT_REPLICAS_SEED", "20261213"))
PRICE = 15  # Fast, 5 s, 720p
BUDGET = 9 * PRICE  # per user and day
GLOBAL_CAP = 24
PER_USER_CAP = 3
LEASE_S = 2.0
ROLLING_LEASE_S = 10.0
ROUND_S = LEASE_S / 3  # bot/jobs/leases.py: renew and claim every lease/3
ADOPT_SLACK_S = 6.0  # a loaded 2-core machine: the process and the database take turns
WITHIN = 420.0  # a guard against a hang only
COLUMNS = "id, user_key, state, task_id, result_ref, origin, owner, error_key"
FINISHED = {"succeeded", "failed", "cancelled", "timed_out", "uncertain"}


def write_config(
    tmp: Path, name: str, url: str, fake: FakeFeishu, emu: Emulator, *, lease: float = LEASE_S
) -> Path:
    cfg = {
        "ima": {"api_key": DEFAULT_API_KEY, "base_url": emu.base_url, "upload_base_url": emu.upload_base_url},
        "store": {"url": url},
        "jobs": {
            "global_concurrency": GLOBAL_CAP,
            "per_user_concurrency": PER_USER_CAP,
            "max_pending_per_user": 100,
            "poll_interval": 0.2,
            "progress_interval_pro": 0.5,
            "progress_interval_fast": 0.5,
            "daily_credit_budget": BUDGET,
            "lease_seconds": lease,
            "replica_id": name,
        },
        "feishu": {
            "enabled": True,
            "app_id": fake.app_id,
            "app_secret": fake.app_secret,
            "domain": fake.url,
            "transport": "ws",
        },
        "web": {"enabled": False},
        "logging": {"level": "WARNING"},
    }
    path = tmp / f"config-{name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


class Replica:
    """One `imabot run` child process."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, err: Path) -> None:
        self.name, self.proc, self.err = name, proc, err

    def tail(self) -> str:
        return self.err.read_text(errors="replace")[-3000:] if self.err.exists() else ""


@asynccontextmanager
async def replicas(tmp: Path) -> AsyncIterator[Callable[[str, Path], Awaitable[Replica]]]:
    """Yields start(name, config); every replica started is killed at the end whatever happens."""
    started: list[Replica] = []

    async def start(name: str, config: Path) -> Replica:
        err = tmp / f"{name}.stderr"
        started.append(Replica(name, await start_run(config, err), err))
        return started[-1]

    try:
        yield start
    finally:
        for r in started:
            if r.proc.returncode is None:
                r.proc.kill()
                await r.proc.wait()


async def rows(url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(r) for r in await conn.fetch(f"SELECT {COLUMNS} FROM jobs")]
    finally:
        await conn.close()


async def charged(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetch(
            "SELECT user_key, SUM(credits) AS c FROM credit_ledger WHERE status = 'charged' GROUP BY user_key"
        )
    finally:
        await conn.close()
    return {r["user_key"]: int(r["c"]) for r in found}


async def calls_past(fake: FakeFeishu, n: int, settled: Callable[[], Awaitable[bool]]) -> None:
    """Waits until the replicas made n more requests to the fake, or everything settled."""
    target = len(fake.calls) + n

    async def check() -> bool:
        return len(fake.calls) >= target or await settled()

    await until(fake, check, WITHIN)


async def push_all(fake: FakeFeishu, evs: list[dict[str, Any]], url: str) -> None:
    """Pushes every event, then waits until each became a job or a budget refusal: the adapter acks an
    event as it hands it on (bot/adapters/feishu/ws.py), so one still in a replica's backlog when that
    replica stops is not pushed again; the kills and stops here are about jobs, not that backlog."""
    for e in evs:
        await fake.push_event(e)

    async def taken_in() -> bool:
        return len(await rows(url)) + len(refusals(fake, BUDGET)) >= len(evs)

    await until(fake, taken_in, WITHIN)


def all_answered(fake: FakeFeishu, url: str, asked: set[str]) -> Callable[[], Awaitable[bool]]:
    """A check: every message asked has its final delivered, or was refused by the budget."""

    async def check() -> bool:
        jobs = await rows(url)
        done = {json.loads(j["origin"])["message_id"] for j in jobs if j["result_ref"]}
        return len(done | refusals(fake, BUDGET)) >= len(asked)

    return check


def events(users: int, per_user: int, tag: str) -> list[dict[str, Any]]:
    return [
        text_event(
            f"{tag} clip {n} of a fox in snow, fast 5s 720p",
            mention_bot=BOT_OPEN_ID,
            sender=f"ou_{tag}{n % users:04d}",
        )
        for n in range(users * per_user)
    ]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


def check_outcome(
    jobs: list[dict[str, Any]], fake: FakeFeishu, emu: Emulator, spent: dict[str, int], asked: set[str]
) -> dict[str, Any]:
    """The assertions both tests share; returns figures for the closing note."""
    refused = refusals(fake, BUDGET)
    finals = final_cards(fake)
    by_message = collections.Counter(json.loads(j["origin"])["message_id"] for j in jobs)
    assert all(n == 1 for n in by_message.values())  # one job per message
    assert set(by_message) | refused == asked and not set(by_message) & refused
    for j in jobs:
        assert j["result_ref"], f"job {j['id']} ({j['state']}) never got its final"
        assert finals[j["id"]] == 1, f"job {j['id']} ({j['state']}) shows {finals[j['id']]} finals"
    assert all(v <= BUDGET for v in spent.values()), spent
    tasks = list(emu.tasks.values())
    by_prompt = collections.Counter(t.prompt for t in tasks)
    assert all(n == 1 for n in by_prompt.values()), by_prompt.most_common(3)
    # The caps, at IMA: tasks of jobs that hold a slot (a task whose job ended uncertain holds none).
    owned = {j["task_id"]: j["user_key"] for j in jobs if j["task_id"]}
    spans: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for t in tasks:
        if t.id in owned:
            spans[owned[t.id]].append((t.created, t.created + t.seconds))
    overall = max_overlap([s for v in spans.values() for s in v])
    per_user = max((max_overlap(v) for v in spans.values()), default=0)
    assert overall <= GLOBAL_CAP and per_user <= PER_USER_CAP, (overall, per_user)
    states = collections.Counter(j["state"] for j in jobs)
    # A job fails only by the budget (refused at admission); a kill may leave one uncertain, nothing else.
    reasons = collections.Counter(j["error_key"] for j in jobs if j["state"] in ("failed", "uncertain"))
    assert set(reasons) <= {"budget_exceeded", "create_interrupted"}, reasons
    return {
        "jobs": len(jobs),
        "refused": len(refused),
        "states": dict(states),
        "failures": dict(reasons),
        "ima_tasks": len(tasks),
        "max_at_ima": overall,
        "max_per_user_at_ima": per_user,
        "charged_max": max(spent.values(), default=0),
    }


async def test_a_sigkilled_replica_s_jobs_are_adopted_and_end_once(tmp_path: Path, pg_url: str) -> None:
    rng = random.Random(SEED)
    evs = events(20, 10, "fo")
    asked = {e["event"]["message"]["message_id"] for e in evs}
    with FakeFeishu() as fake:
        async with Emulator(EmulatorConfig(speed=16.0)) as emu, replicas(tmp_path) as start:
            settled = all_answered(fake, pg_url, asked)

            cfg = {n: write_config(tmp_path, n, pg_url, fake, emu) for n in ("a1", "b1", "a2")}
            a = await start("a1", cfg["a1"])
            b = await start("b1", cfg["b1"])
            await until(fake, _connected(fake, 2), within=60)
            await push_all(fake, evs, pg_url)
            # The kill: a random number of requests to the fake after every message was taken in.
            await calls_past(fake, rng.randint(60, 400), settled)
            a.proc.kill()
            await a.proc.wait()
            killed_at = time.monotonic()
            dead = [j["id"] for j in await rows(pg_url) if _held(j, "a1")]

            async def adopted() -> bool:
                return not any(_held(j, "a1") for j in await rows(pg_url))

            await until(fake, adopted, within=60)
            adoption_s = time.monotonic() - killed_at
            # A's jobs may all have been adopted by now; it comes back later and takes its share again.
            await calls_past(fake, rng.randint(20, 200), settled)
            a2 = await start("a2", cfg["a2"])
            await until(fake, settled, WITHIN)
            for r in (a2, b):
                assert r.proc.returncode is None, r.tail()
            jobs = await rows(pg_url)
            spent = await charged(pg_url)
            figures = check_outcome(jobs, fake, emu, spent, asked)
    assert adoption_s <= LEASE_S + ROUND_S + ADOPT_SLACK_S, adoption_s
    print(
        f"\nreplicas-failover: {figures}, held by the killed replica {len(dead)}, adopted within "
        f"{adoption_s:.2f} s (lease {LEASE_S} s + round {ROUND_S:.2f} s)"
    )


async def test_a_rolling_restart_loses_and_repeats_nothing(tmp_path: Path, pg_url: str) -> None:
    rng = random.Random(SEED + 1)
    evs = events(10, 12, "ro")
    asked = {e["event"]["message"]["message_id"] for e in evs}
    with FakeFeishu() as fake:
        # Slower tasks than the failover's (about 11 s each): jobs are still in flight at the second stop.
        async with Emulator(EmulatorConfig(speed=8.0)) as emu, replicas(tmp_path) as start:
            settled = all_answered(fake, pg_url, asked)

            # A graceful stop hands its jobs over at once, whatever the lease: a longer one here keeps a
            # replica the loaded machine stalls for a moment from losing a job in the middle of its create.
            cfg = {
                n: write_config(tmp_path, n, pg_url, fake, emu, lease=ROLLING_LEASE_S)
                for n in ("a1", "b1", "a2", "b2")
            }
            live = {"a": await start("a1", cfg["a1"]), "b": await start("b1", cfg["b1"])}
            await until(fake, _connected(fake, 2), within=60)
            await push_all(fake, evs, pg_url)
            stops = []
            for side, new, calls in (("a", "a2", (40, 150)), ("b", "b2", (10, 60))):
                await calls_past(fake, rng.randint(*calls), settled)
                in_flight = sum(1 for j in await rows(pg_url) if j["state"] not in FINISHED)
                old = live[side]
                old.proc.send_signal(signal.SIGTERM)
                async with asyncio.timeout(60):
                    code = await old.proc.wait()
                assert code == 0, old.tail()
                stops.append(in_flight)
                live[side] = await start(new, cfg[new])
                await until(fake, _connected(fake, 2), within=60)
            await until(fake, settled, WITHIN)
            for r in live.values():
                assert r.proc.returncode is None, r.tail()
            jobs = await rows(pg_url)
            spent = await charged(pg_url)
            figures = check_outcome(jobs, fake, emu, spent, asked)
    # A graceful stop lets its creates come back before it hands its jobs over: none ends uncertain.
    # (It once did, in 3 runs of 10: the Feishu session closed before the runner settled, and a job whose
    # "creating" notice failed on it stayed CREATING. App.close now stops intake, settles, then closes.)
    assert "uncertain" not in figures["states"], figures
    assert all(n > 0 for n in stops), stops  # each stop really had jobs in flight
    print(f"\nreplicas-rolling: {figures}, jobs in flight at each SIGTERM {stops}")


def _held(job: dict[str, Any], owner: str) -> bool:
    """Whether owner holds the job and still has work on it (unfinished, or its final not delivered)."""
    return job["owner"] == owner and (job["state"] not in FINISHED or not job["result_ref"])


def _connected(fake: FakeFeishu, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return fake.ws.connected_clients >= n

    return check
