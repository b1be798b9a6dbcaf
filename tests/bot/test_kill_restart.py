"""A real `imabot` process is SIGKILLed while jobs run, then restarted: every job ends exactly once and the
emulator never sees a second task for a job."""

from __future__ import annotations

import asyncio
import collections
import signal
import sqlite3
from pathlib import Path

import pytest

from ima.emulator import Emulator, EmulatorConfig

from .procs import read_until, start_bot, transcript_records, write_config

pytestmark = pytest.mark.slow

FINAL_KINDS = {"success", "failure", "cancelled"}


async def test_sigkill_mid_run_then_restart_finishes_every_job_once(tmp_path: Path) -> None:
    jobs = 8
    async with Emulator(EmulatorConfig(speed=45.0)) as emu:  # a Fast task takes about 2 s
        config = write_config(tmp_path, emu)
        transcript = tmp_path / "transcript.jsonl"
        bot = await start_bot(config, transcript)
        try:
            assert bot.stdin is not None
            for i in range(jobs):
                bot.stdin.write(f"/video fast 5s clip number {i} of a dog running\n".encode())
            await bot.stdin.drain()
            # Kill once every job is recorded (its pre-notice printed) and several are generating (progress
            # edits printed), before they can all finish.
            await read_until(
                bot,
                lambda lines: (
                    sum("Got it!" in ln for ln in lines) >= jobs and sum("↻ ⏳" in ln for ln in lines) >= 3
                ),
            )
            bot.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(bot.wait(), 10) == -signal.SIGKILL
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()
        created_before_restart = len(emu.tasks)

        # Restart with no new input: it resumes every unfinished job, waits for them, and exits.
        again = await start_bot(config, transcript)
        assert again.stdin is not None
        again.stdin.close()
        _out, err = await asyncio.wait_for(again.communicate(), 60)
        assert again.returncode == 0, err.decode()[-3000:]

        records = transcript_records(transcript)
        finals = collections.Counter(
            r["job"] for r in records if r["op"] == "send" and r["kind"] in FINAL_KINDS
        )
        with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
            rows = db.execute("SELECT id, state, task_id, result_ref FROM jobs").fetchall()
        assert len(rows) == jobs
        for job_id, state, _task, result_ref in rows:
            assert state in ("succeeded", "uncertain", "failed"), (job_id, state)
            assert result_ref, f"job {job_id} never got its final message"
            assert finals[job_id] == 1, f"job {job_id} got {finals[job_id]} final messages"
        # No job ever created a second task: one emulator task per job at most, each task a distinct job.
        prompts = collections.Counter(t.prompt for t in emu.tasks.values())
        assert all(n == 1 for n in prompts.values()), prompts
        assert len(emu.tasks) <= jobs
        assert created_before_restart >= 1
        succeeded = [r for r in rows if r[1] == "succeeded"]
        assert len(succeeded) >= created_before_restart - 1  # at most one create can be in flight at the kill
