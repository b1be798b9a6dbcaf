"""Chaos: 100 jobs while the bot process is SIGKILLed three times at random moments and restarted. Every
job ends with exactly one final message, and IMA never sees a second task for a job."""

from __future__ import annotations

import asyncio
import collections
import json
import random
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ima.emulator import Emulator, EmulatorConfig
from tests.bot.procs import read_until, start_bot, write_config

pytestmark = pytest.mark.slow

SEED = 20260607
JOBS = 100
KILLS = 3
FINAL_KINDS = {"success", "failure", "cancelled"}


class Transcript:
    """Reads the console transcript incrementally (the file grows by thousands of lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []
        self._offset = 0

    def refresh(self) -> list[dict[str, Any]]:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._offset += len(complete)
            self.records += [json.loads(x) for x in complete.decode("utf-8").splitlines() if x.strip()]
        return self.records


async def _kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL


async def test_three_random_sigkills_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    transcript = Transcript(tmp_path / "transcript.jsonl")
    async with Emulator(EmulatorConfig(speed=45.0)) as emu:  # a Fast task takes about 2 s
        config = write_config(tmp_path, emu)
        bot = await start_bot(config, transcript.path)
        try:
            assert bot.stdin is not None
            bot.stdin.write(
                "".join(f"/video fast 5s chaos clip {i} of a fox in snow\n" for i in range(JOBS)).encode()
            )
            await bot.stdin.drain()

            def prenotices() -> int:
                return sum(r["op"] == "send" and r["kind"] == "prenotice" for r in transcript.refresh())

            # Every line must be a stored job before the first kill (a line not yet read is no job).
            await read_until(bot, lambda _lines: prenotices() >= JOBS, within=30)
            kills: list[int] = []
            for round_no in range(KILLS):
                # A random moment: after a random number of further messages (sends and edits).
                target = len(transcript.refresh()) + rng.randint(10, 90)
                await read_until(bot, lambda _lines, t=target: len(transcript.refresh()) >= t, within=30)
                await _kill(bot)
                kills.append(len(transcript.records))
                if round_no < KILLS - 1:
                    bot = await start_bot(config, transcript.path)
                    assert bot.stdin is not None
                    bot.stdin.close()
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()

        last = await start_bot(config, transcript.path)
        assert last.stdin is not None
        last.stdin.close()
        _, err = await asyncio.wait_for(last.communicate(), 45)
        assert last.returncode == 0, err.decode()[-3000:]

        with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
            rows = db.execute("SELECT id, state, task_id, result_ref, spec FROM jobs").fetchall()
        tasks_by_prompt = collections.Counter(t.prompt for t in emu.tasks.values())
        emulator_task_ids = set(emu.tasks)

    finals = collections.Counter(
        r["job"] for r in transcript.refresh() if r["op"] == "send" and r["kind"] in FINAL_KINDS
    )
    assert len(rows) == JOBS
    states = collections.Counter(state for _, state, _, _, _ in rows)
    assert set(states) <= {"succeeded", "uncertain"}, states  # uncertain: a create cut off by a kill
    for job_id, state, task_id, result_ref, _ in rows:
        assert result_ref, f"job {job_id} ({state}) never got its final message"
        assert finals[job_id] == 1, f"job {job_id} got {finals[job_id]} final messages"
        assert state != "succeeded" or task_id in emulator_task_ids
    assert all(n == 1 for n in tasks_by_prompt.values()), tasks_by_prompt.most_common(3)
    assert len(tasks_by_prompt) <= JOBS
    assert states["succeeded"] >= JOBS - 50  # the kills cut off some creates, never most of them
    assert kills == sorted(kills) and len(kills) == KILLS
