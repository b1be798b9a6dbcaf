"""Restart recovery: every unfinished job continues where the store says it stood."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .model import Job, JobState
from .store import InvalidTransition, LeaseLost

if TYPE_CHECKING:
    from .runner import JobRunner

log = logging.getLogger("imabot.runner")


async def resume_all(runner: JobRunner) -> int:
    """Re-queues, re-watches or reports every unfinished job, and hands the finals a crash cut off to
    the outbox (which delivers them in its own task: nothing here waits for a platform). With replicas
    (issue 13) only the jobs this replica can claim: the others belong to live replicas.

    Returns how many jobs were picked up.
    """
    if runner.leases is not None:
        await runner.leases.round()  # claims expired or released jobs and finals, then resumes them
        return runner.leases.adoptions
    await runner.outbox.load()  # before the jobs below finish and start their own deliveries
    jobs = await runner.durable(runner.store.unfinished_jobs)
    await resume_jobs(runner, jobs)
    if jobs:
        log.info("resumed %d unfinished jobs", len(jobs))
    return len(jobs)


async def resume_jobs(runner: JobRunner, jobs: list[Job]) -> None:
    """Picks each job up where the store says it stood: the restart path, and the adoption of jobs another
    replica stopped renewing (bot/jobs/leases.py)."""
    for job in jobs:
        if runner.knows(job.id):  # taken in by this process while the store was read
            continue
        try:
            await _resume_one(runner, job)
        except (LeaseLost, InvalidTransition) as exc:
            if runner.leases is None:
                raise
            # Replicas: another one took or finished it between the claim and this write.
            log.info("job=%s not resumed here: %s", job.id, exc)


async def _resume_one(runner: JobRunner, job: Job) -> None:
    if job.state is JobState.CREATING:
        # The create may or may not have reached IMA: never send it again silently. Its final
        # goes out in a task of its own, so one slow platform does not hold the resume up.
        runner.spawn_final(job, "create_interrupted", state=JobState.UNCERTAIN)
        return
    if job.state is JobState.PREPARING:
        job = await runner.transition(job, JobState.QUEUED)
    if job.state is JobState.RUNNING:
        # Its IMA task is already running: watch it again at once, whatever the caps say.
        job = await runner.update(job, extra={**job.extra, "resumed": True})
        runner.adopt(job)
        return
    runner.admit(job, notice_ready=bool(job.notice_ref))
