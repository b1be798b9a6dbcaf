"""A real `imabot` process is SIGKILLed while jobs run, then restarted: every job ends exactly once and the
emulator never sees a second task for a job."""

from __future__ import annotations

import collections
import sqlite3
from pathlib import Path

import pytest

from ima.emulator import Emulator, EmulatorConfig

from .procs import bot_process, transcript_records, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FINAL_KINDS = {"success", "failure", "cancelled"}
BUSY_WITHIN = 180.0  # seconds: a guard against a hang only, generous for a loaded machine


async def test_sigkill_mid_run_then_restart_finishes_every_job_once(tmp_path: Path) -> None:
    jobs = 8
    async with Emulator(EmulatorConfig(speed=45.0)) as emu:  # a Fast task takes about 2 s
        config = write_config(tmp_path, emu)
        transcript = tmp_path / "transcript.jsonl"
        db_path = tmp_path / "jobs.sqlite3"
        async with bot_process(config, transcript) as bot:
            await bot.say(*(f"/video fast 5s clip number {i} of a dog running" for i in range(jobs)))
            # Kill once every job is recorded (its pre-notice printed) and several are generating (progress
            # edits printed). Stdin stays open, so the bot is still running whenever this holds.
            await bot.read_until(
                lambda lines: (
                    sum("Got it!" in ln for ln in lines) >= jobs and sum("↻ ⏳" in ln for ln in lines) >= 3
                ),
                within=BUSY_WITHIN,
            )
            await bot.kill()
        created_before_restart = len(emu.tasks)
        with sqlite3.connect(db_path) as db:
            at_kill = dict(db.execute("SELECT id, state FROM jobs").fetchall())

        # Restart with no new input: it resumes every unfinished job, waits for them, and exits.
        async with bot_process(config, transcript) as again:
            code, _out, err = await again.finish(within=BUSY_WITHIN)
        assert code == 0, err[-3000:]

        records = transcript_records(transcript)
        finals = collections.Counter(
            r["job"] for r in records if r["op"] == "send" and r["kind"] in FINAL_KINDS
        )
        with sqlite3.connect(db_path) as db:
            rows = db.execute("SELECT id, state, task_id, result_ref FROM jobs").fetchall()
        assert len(rows) == jobs
        for job_id, state, _task, result_ref in rows:
            assert state in ("succeeded", "uncertain", "failed"), (job_id, state)
            assert result_ref, f"job {job_id} never got its final message"
            assert finals[job_id] == 1, f"job {job_id} got {finals[job_id]} final messages"
            # However many creates were in flight at the kill (up to global_concurrency), each of them, and
            # only they, end uncertain; a job whose task was recorded is watched again to success.
            assert (state == "uncertain") == (at_kill[job_id] == "creating"), (job_id, at_kill[job_id], state)
            if at_kill[job_id] == "running":
                assert state == "succeeded", (job_id, state)
        # No job ever created a second task: one emulator task per job at most, each task a distinct job.
        prompts = collections.Counter(t.prompt for t in emu.tasks.values())
        assert all(n == 1 for n in prompts.values()), prompts
        assert len(emu.tasks) <= jobs
        assert created_before_restart >= 1
