"""/cancel on a job that waits in the queue with its pre-notice shown: it ends at once, with one final.

Real pipeline (emulator over HTTP, SQLite store, console transcript, virtual clock).
"""

from __future__ import annotations

from pathlib import Path

from bot.jobs.model import Job, JobState

from .harness import pipeline


async def test_a_queued_job_cancelled_after_its_prenotice_ends_with_one_cancelled_final(
    tmp_path: Path,
) -> None:
    async with pipeline(tmp_path, global_limit=1, per_user_limit=1) as p:
        p.emulator.faults.add("media_never")  # the first job holds the only slot
        first = await p.submit(p.job("first"))
        second = await p.submit(p.job("second"))

        async def both_shown() -> Job | None:
            running = await p.store.get_job(first.id)
            waiting = await p.store.get_job(second.id)
            if running is None or waiting is None or running.state is not JobState.RUNNING:
                return None
            return waiting if waiting.notice_ref else None

        waiting = await p.wait_for(both_shown)
        assert waiting.state is JobState.QUEUED
        cancelled = await p.runner.cancel(second.id)
        assert cancelled is not None and cancelled.state is JobState.CANCELLED
        done = await p.wait_finished(second.id)
        still = await p.store.get_job(first.id)
    sends = [r["kind"] for r in p.records(second.id) if r["op"] == "send"]
    assert sends == ["prenotice", "cancelled"]  # the pre-notice, then one final saying so
    assert done.result_ref and still is not None and still.state is JobState.RUNNING
    assert [t.prompt for t in p.emulator.tasks.values()] == ["first"]
