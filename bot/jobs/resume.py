"""Restart recovery: every unfinished job continues where the store says it stood."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .model import JobState

if TYPE_CHECKING:
    from .runner import JobRunner

log = logging.getLogger("imabot.runner")


async def resume_all(runner: JobRunner) -> int:
    """Re-queues, re-watches or reports every unfinished job, and delivers finals a crash cut off.

    Returns how many jobs were picked up.
    """
    jobs = await runner.store.unfinished_jobs()
    for job in jobs:
        if job.state is JobState.CREATING:
            # The create may or may not have reached IMA: never send it again silently.
            await runner.fail(job, "create_unknown", state=JobState.UNCERTAIN)
            continue
        if job.state is JobState.PREPARING:
            job = await runner.transition(job, JobState.QUEUED)
        if job.state is JobState.RUNNING:
            # Its IMA task is already running: watch it again at once, whatever the caps say.
            job = await runner.store.update_job(job.id, extra={**job.extra, "resumed": True})
            runner.adopt(job)
            continue
        runner.admit(job, notice_ready=bool(job.notice_ref))
    for job in await runner.store.undelivered_jobs():
        await runner.deliver_final(job, runner.final_notice(job))
    if jobs:
        log.info("resumed %d unfinished jobs", len(jobs))
    return len(jobs)
