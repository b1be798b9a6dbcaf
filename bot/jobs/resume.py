"""Restart recovery: every unfinished job continues where the store says it stood."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .model import JobState

if TYPE_CHECKING:
    from .runner import JobRunner

log = logging.getLogger("imabot.runner")


async def resume_all(runner: JobRunner) -> int:
    """Re-queues, re-watches or reports every unfinished job, and hands the finals a crash cut off to
    the outbox (which delivers them in its own task: nothing here waits for a platform).

    Returns how many jobs were picked up.
    """
    await runner.outbox.load()  # before the jobs below finish and start their own deliveries
    jobs = await runner.durable(runner.store.unfinished_jobs)
    for job in jobs:
        if runner.knows(job.id):  # taken in by this process while the store was read
            continue
        if job.state is JobState.CREATING:
            # The create may or may not have reached IMA: never send it again silently. Its final
            # goes out in a task of its own, so one slow platform does not hold the resume up.
            runner.spawn_final(job, "create_interrupted", state=JobState.UNCERTAIN)
            continue
        if job.state is JobState.PREPARING:
            job = await runner.transition(job, JobState.QUEUED)
        if job.state is JobState.RUNNING:
            # Its IMA task is already running: watch it again at once, whatever the caps say.
            job = await runner.update(job, extra={**job.extra, "resumed": True})
            runner.adopt(job)
            continue
        runner.admit(job, notice_ready=bool(job.notice_ref))
    if jobs:
        log.info("resumed %d unfinished jobs", len(jobs))
    return len(jobs)
