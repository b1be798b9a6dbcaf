"""Chaos: 100 jobs while the bot process is SIGKILLed three times at random moments and restarted. Every
job ends with exactly one final message, and IMA never sees a second task for a job."""

from __future__ import annotations

import collections
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ima.emulator import Emulator, EmulatorConfig
from tests.bot.procs import bot_process, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SEED = 20260607
JOBS = 100
KILLS = 3
FINAL_KINDS = {"success", "failure", "cancelled"}
BUSY_WITHIN = 240.0  # seconds: a guard against a hang only; on a loaded 2-core machine 100 jobs take a while


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


def _in_state(db_path: Path, state: str) -> set[str]:
    with sqlite3.connect(db_path) as db:
        return {job_id for (job_id,) in db.execute("SELECT id FROM jobs WHERE state = ?", (state,))}


async def test_three_random_sigkills_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    """The kill points are counted in messages, never in time, and every one of them is reachable: a bot
    keeps its input open (so it never exits on its own), and a kill also fires once every job has its final
    message. So a slow or busy machine changes where the kills land, never whether the test can pass."""
    rng = random.Random(SEED)
    transcript = Transcript(tmp_path / "transcript.jsonl")
    db_path = tmp_path / "jobs.sqlite3"
    creating_at_a_kill: set[str] = set()
    kills: list[int] = []

    def finished_jobs() -> int:
        return len({r["job"] for r in transcript.refresh() if r["op"] == "send" and r["kind"] in FINAL_KINDS})

    async with Emulator(EmulatorConfig(speed=45.0)) as emu:  # a Fast task takes about 2 s
        config = write_config(tmp_path, emu)
        for round_no in range(KILLS):
            async with bot_process(config, transcript.path) as bot:
                if round_no == 0:
                    await bot.say(*(f"/video fast 5s chaos clip {i} of a fox in snow" for i in range(JOBS)))

                    def prenotices() -> int:
                        return sum(
                            r["op"] == "send" and r["kind"] == "prenotice" for r in transcript.refresh()
                        )

                    # Every line must be a stored job before the first kill (a line not yet read is no job).
                    await bot.read_until(lambda _lines: prenotices() >= JOBS, within=BUSY_WITHIN)
                # A random moment: after a random number of further messages (sends and edits).
                target = len(transcript.refresh()) + rng.randint(10, 90)
                await bot.read_until(
                    lambda _lines, t=target: len(transcript.refresh()) >= t or finished_jobs() >= JOBS,
                    within=BUSY_WITHIN,
                )
                await bot.kill()
            kills.append(len(transcript.refresh()))
            # A create cut off by this kill is what, and all that, the restart may call uncertain.
            creating_at_a_kill |= _in_state(db_path, "creating")

        async with bot_process(config, transcript.path) as last:
            code, _out, err = await last.finish(within=BUSY_WITHIN)
        assert code == 0, err[-3000:]

        with sqlite3.connect(db_path) as db:
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
    assert {job_id for job_id, state, *_ in rows if state == "uncertain"} == creating_at_a_kill
    assert all(n == 1 for n in tasks_by_prompt.values()), tasks_by_prompt.most_common(3)
    assert len(tasks_by_prompt) <= JOBS
    assert len(kills) == KILLS
