"""Chaos for delivery and money: `imabot run` on the fake Feishu (long connection) and the emulator, 200 jobs
from 10 users under a daily budget, three SIGKILLs at random moments, and the fake refusing patches and
posts in bursts during every run and after every restart.

Every message ends as exactly one visible final card or one budget refusal; no user is charged past the
budget; IMA never sees a second task for a job. The kill points are counted in the bot's requests to the
fake, never in time, and a kill also fires once every job has its final, so a slow machine changes where
the kills land, never whether the test can pass. The bot is killed in a `finally` (bot_process)."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import sqlite3
from collections.abc import AsyncIterator
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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SEED = 20261202
USERS = 10
PER_USER = 20
JOBS = USERS * PER_USER
KILLS = 3
PRICE = 15  # Fast, 5 s, 720p
BUDGET = 17 * PRICE  # per user and day: 17 of each user's 20 requests fit
WITHIN = 300.0  # a guard against a hang only
REFUSED = {"code": 230002, "msg": "The bot is not in the chat."}
FINISHED = {"succeeded", "failed", "cancelled", "timed_out", "uncertain"}


def write_config(tmp: Path, fake: FakeFeishu, emu: Emulator) -> Path:
    cfg = {
        "ima": {"api_key": DEFAULT_API_KEY, "base_url": emu.base_url, "upload_base_url": emu.upload_base_url},
        "store": {"path": str(tmp / "jobs.sqlite3")},
        "jobs": {
            "global_concurrency": 40,
            "per_user_concurrency": 20,
            "max_pending_per_user": 100,
            "poll_interval": 0.2,
            "progress_interval_pro": 0.5,
            "progress_interval_fast": 0.5,
            "daily_credit_budget": BUDGET,
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
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@asynccontextmanager
async def bot_run(config: Path, err_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`imabot run` as a child process; killed in a `finally` whatever happens."""
    proc = await start_run(config, err_path)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def rows(db_path: Path) -> list[tuple[Any, ...]]:
    if not db_path.exists():
        return []
    with sqlite3.connect(db_path, timeout=30) as db:
        return db.execute("SELECT id, user_key, state, task_id, result_ref, origin FROM jobs").fetchall()


def charged(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path, timeout=30) as db:
        found = db.execute(
            "SELECT user_key, SUM(credits) FROM credit_ledger WHERE status = 'charged' GROUP BY user_key"
        ).fetchall()
    return dict(found)


def inject(fake: FakeFeishu, rng: random.Random) -> dict[str, int]:
    """A burst of refusals of patches and posts (which messages they hit is up to the bot's timing)."""
    burst = {"patch": rng.randint(10, 60), "reply": rng.randint(5, 25)}
    fake.fail_next("PATCH", "/im/v1/messages/", status=400, body=REFUSED, times=burst["patch"])
    fake.fail_next("POST", "/reply$", status=400, body=REFUSED, times=burst["reply"])
    return burst


async def test_platform_faults_across_sigkills_lose_no_final_and_overrun_no_budget(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db_path = tmp_path / "jobs.sqlite3"
    events = [
        text_event(
            f"chaos clip {n} of a fox in snow, fast 5s 720p",
            mention_bot=BOT_OPEN_ID,
            sender=f"ou_chaos{n % USERS:04d}",
        )
        for n in range(JOBS)
    ]
    asked = {e["event"]["message"]["message_id"] for e in events}
    bursts: list[dict[str, int]] = []
    kills: list[int] = []

    def settled() -> bool:
        jobs = rows(db_path)
        done = {json.loads(o)["message_id"] for _i, _u, _s, _t, ref, o in jobs if ref}
        return len(done | refusals(fake, BUDGET)) >= JOBS

    with FakeFeishu() as fake:
        async with Emulator(EmulatorConfig(speed=8.0)) as emu:  # a Fast task takes about 10 s
            config = write_config(tmp_path, fake, emu)
            for round_no in range(KILLS + 1):
                connects = fake.ws.connects
                async with bot_run(config, tmp_path / f"bot-{round_no}.stderr") as proc:
                    await until(fake, lambda c=connects: fake.ws.connects > c, within=60)
                    if round_no:
                        bursts.append(inject(fake, rng))  # right after a restart: the resume meets it
                    else:
                        for event in events:
                            await fake.push_event(event)
                        # Every message a job or a refusal before the first kill (an acked event is not
                        # pushed again).
                        await until(
                            fake,
                            lambda: len(rows(db_path)) + len(refusals(fake, BUDGET)) >= JOBS,
                            within=WITHIN,
                        )
                        # Faults from here on (a refusal of a message that never became a job is not
                        # retried: it is no final, and this test counts those answers).
                        bursts.append(inject(fake, rng))
                    if round_no < KILLS:
                        target = len(fake.calls) + rng.randint(40, 400)
                        await until(fake, lambda t=target: len(fake.calls) >= t or settled(), within=WITHIN)
                        bursts.append(inject(fake, rng))
                        more = len(fake.calls) + rng.randint(10, 100)
                        await until(fake, lambda t=more: len(fake.calls) >= t or settled(), within=WITHIN)
                        proc.kill()
                        await proc.wait()
                        kills.append(sum(1 for _i, _u, st, *_ in rows(db_path) if st not in FINISHED))
                    else:
                        fake.clear_faults()
                        await until(fake, settled, within=WITHIN)
                        assert proc.returncode is None, (tmp_path / f"bot-{round_no}.stderr").read_text()[
                            -3000:
                        ]
            jobs = rows(db_path)
            spent = charged(db_path)
            tasks_by_prompt = collections.Counter(t.prompt for t in emu.tasks.values())
        finals = final_cards(fake)
        refused = refusals(fake, BUDGET)

    by_message = collections.Counter(json.loads(o)["message_id"] for *_rest, o in jobs)
    assert all(n == 1 for n in by_message.values())  # one job per message, whatever the restarts
    assert set(by_message) | refused == asked and not set(by_message) & refused
    states = collections.Counter(state for _i, _u, state, *_ in jobs)
    for job_id, _user, state, _task, result_ref, _o in jobs:
        assert result_ref, f"job {job_id} ({state}) never got its final"
        assert finals[job_id] == 1, f"job {job_id} ({state}) shows {finals[job_id]} finals"
    assert all(v <= BUDGET for v in spent.values()), spent
    assert all(n == 1 for n in tasks_by_prompt.values()), tasks_by_prompt.most_common(3)
    assert len(kills) == KILLS
    # The figures for the closing note.
    print(
        f"\nchaos-delivery: {JOBS} messages, {len(jobs)} jobs, {len(refused)} budget refusals, states "
        f"{dict(states)}, charged per user max {max(spent.values(), default=0)}/{BUDGET}, "
        f"IMA tasks {sum(tasks_by_prompt.values())}, unfinished jobs at each kill {kills}, fault bursts {bursts}"
    )
