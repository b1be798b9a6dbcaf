"""Leases (issue 13): which replica works on which job, kept alive while it works, handed on when it dies.

With several replicas on one store (PostgreSQL), every unfinished job has an owner and a lease expiry. The
owner renews its leases every lease/3; a job whose lease expired (its replica died or hung) is claimed by
another replica and goes through the restart path (bot/jobs/resume.py): a RUNNING job is watched again and
keeps editing the same message, a job left in CREATING becomes UNCERTAIN. Every state write of the runner
names its owner, so a replica that lost a job cannot write it any more (the store raises LeaseLost); the
runner then stops the job's local task without sending anything. Finals a crash left undelivered are
claimed the same way, so exactly one replica posts each. On a graceful stop the replica releases what it
holds and another replica takes it at once.

`Leases.run` is the one background task (owned by the runner: started in `start`, cancelled in `close`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .model import Job, JobState
from .store import InvalidTransition, LeaseLost, StoreError

if TYPE_CHECKING:
    from .runner import JobRunner

log = logging.getLogger("imabot.leases")

# Set inside cancel_elsewhere: its writes touch a job another replica holds, on purpose.
_UNFENCED: contextvars.ContextVar[bool] = contextvars.ContextVar("imabot_unfenced", default=False)
CLAIM_LIMIT = 100  # jobs claimed per round: a dead replica's backlog is adopted over a few rounds


def default_replica_id() -> str:
    """host:pid:random — unique per process, so a restarted replica never mistakes a dead one's leases
    for its own (it adopts them once they expire, as any replica would)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True)
class LeaseSettings:
    replica_id: str
    lease_seconds: float = 30.0
    claim_limit: int = CLAIM_LIMIT

    @property
    def every(self) -> float:
        """Seconds between rounds (renew, then claim): three renewals fit in one lease, so one slow round
        loses nothing, and an expired lease is adopted within lease + every."""
        return self.lease_seconds / 3


class Leases:
    """This replica's hold on its jobs. Counters (renewals, adoptions, lost) and the owned gauge feed
    /metrics; they are plain numbers read at scrape time."""

    def __init__(self, runner: JobRunner, settings: LeaseSettings) -> None:
        self._runner = runner
        self.settings = settings
        runner.store.set_replica(settings.replica_id, settings.lease_seconds)  # add_job's default owner
        self.renewals = 0  # rounds whose renewal the store confirmed
        self.adoptions = 0  # jobs (and undelivered finals) taken over from another or a dead replica
        self.lost = 0  # jobs this replica worked on that another replica holds now
        self.owned = 0  # jobs held after the last renewal
        self._round = asyncio.Lock()  # a round at start-up and the loop's rounds never overlap

    @property
    def owner(self) -> str:
        return self.settings.replica_id

    def fence(self) -> dict[str, Any]:
        """The keyword every state write of the runner carries: the store refuses it (LeaseLost) when
        the job is no longer ours (none inside cancel_elsewhere, which writes another replica's job)."""
        return {} if _UNFENCED.get() else {"owner": self.owner}

    async def run(self, sleep: Callable[[float], Awaitable[Any]]) -> None:
        """Renews and claims every `settings.every` seconds, forever (cancel it). A store failure costs
        one round, never the loop: the next round tries again, well within the lease."""
        while True:
            await sleep(self.settings.every)
            await self.round()

    async def round(self) -> None:
        """One renewal, then one claim of expired jobs and undelivered finals."""
        async with self._round:
            # A stopping replica keeps its leases while its work settles, but takes nothing new.
            for step in (self.renew,) if self._runner.closing else (self.renew, self.adopt):
                try:
                    await step()
                except StoreError as exc:
                    log.warning("lease %s failed: %s", step.__name__, exc)

    async def renew(self) -> set[str]:
        """Extends the lease of every job this replica holds; stops (silently) the local work on any job
        another replica holds now. Returns the ids still held."""
        store, s = self._runner.store, self.settings
        kept = set(await store.renew_leases(self.owner, s.lease_seconds))
        self.renewals += 1
        self.owned = len(kept)
        local = self._runner.local_jobs()
        for job_id in local - kept:
            job = await store.get_job(job_id)
            if job is None or job.finished:
                # Its final is out (recorded): ours ending, or a cancel another replica carried out.
                self._runner.drop(job_id)
            elif not await store.owns(job_id, self.owner):
                self.lose(job_id)
        await self._pick_up_strays(kept - local)
        return kept

    async def _pick_up_strays(self, ids: set[str]) -> None:
        """Jobs held here that nothing here works on (a resume cut short by a refused write, an admission
        between two awaits) would be renewed forever and never finish: resume them, and queue their finals.
        Drafts wait for their Generate press and stay as they are."""
        from .resume import resume_jobs  # local import: resume depends on the runner module

        runner = self._runner
        if runner.closing:
            return
        for job_id in sorted(ids):
            if runner.knows(job_id) or runner.outbox.queued(job_id):
                continue
            job = await runner.store.get_job(job_id)
            if job is None or job.state is JobState.DRAFT:
                continue
            if job.finished:
                if not job.result_ref and not job.extra.get("outbox", {}).get("undeliverable"):
                    runner.outbox.schedule(job_id, runner.now())
                continue
            log.info("job=%s held here but idle; resuming it", job_id)
            await resume_jobs(runner, [job])

    def refused(self, job_id: str, exc: Exception) -> bool:
        """A write of the job was refused. When that means another replica holds it (LeaseLost) or
        finished it (a cancel pressed there), stops the local work on it silently and returns True;
        False for any other refusal (the caller raises it)."""
        if isinstance(exc, LeaseLost):
            self.lose(job_id)
            return True
        if isinstance(exc, InvalidTransition) and exc.current.finished:
            log.info("job=%s finished elsewhere (%s); stopping here", job_id, exc)
            self._runner.drop(job_id)
            return True
        return False

    def lose(self, job_id: str) -> None:
        """Stops this replica's work on a job another replica holds now: nothing is sent or written."""
        self.lost += 1
        log.warning("job=%s lease lost to another replica; stopping here without a word", job_id)
        self._runner.drop(job_id)

    async def adopt(self) -> int:
        """Claims jobs whose lease expired (or that were released) and resumes them through the restart
        path; claims undelivered finals for the outbox. Returns how many were taken over."""
        from .resume import resume_jobs  # local import: resume depends on the runner module

        runner, s = self._runner, self.settings
        jobs = await runner.store.claim_jobs(self.owner, s.lease_seconds, limit=s.claim_limit)
        fresh = [j for j in jobs if not runner.knows(j.id)]
        if fresh:
            log.info("adopting %d jobs another replica held", len(fresh))
            await resume_jobs(runner, fresh)
        finals: list[Job] = await runner.store.claim_undelivered(
            self.owner, s.lease_seconds, limit=s.claim_limit
        )
        now = runner.now()
        for job in finals:
            if not runner.outbox.queued(job.id):
                runner.outbox.schedule(job.id, now)
        self.adoptions += len(fresh) + len(finals)
        return len(fresh) + len(finals)

    async def claim(self, job_id: str) -> bool:
        """Takes one job for this replica (admission: the job may have been stored without an owner);
        False when another replica holds it."""
        return await self._runner.store.claim_job(job_id, self.owner, self.settings.lease_seconds) is not None

    async def may_deliver(self, job_id: str) -> bool:
        """Whether this replica may post the job's final (it holds the job): the outbox asks before each
        retry, so a final another replica claimed is posted by that one only."""
        return await self._runner.store.owns(job_id, self.owner)

    async def take_slot(self, job: Job) -> None:
        """Waits until the store grants the job one of the shared slots (the global and per-user caps
        hold across replicas; the local scheduler only orders this replica's queue fairly), asking again
        every poll interval."""
        runner = self._runner
        limits = {
            "global_limit": runner.scheduler.global_limit,
            "per_user_limit": runner.scheduler.per_user_limit,
        }
        while not await runner.durable(lambda: runner.store.try_start(job.id, self.owner, **limits)):
            await runner.sleep(runner.settings.poll_interval)

    async def cancel_elsewhere(self, job: Job) -> Job:
        """A cancel pressed on this replica for a job this replica does not run. A job nobody holds (or
        whose holder died) is claimed, resumed here and cancelled as usual. A job another live replica
        runs is cancelled here in the store and its final sent from here; that replica finds it finished
        at its next renewal and stops its own work on it without a word."""
        from .resume import resume_jobs  # local import: resume depends on the runner module

        runner = self._runner
        claimed = await runner.durable(
            lambda: runner.store.claim_job(job.id, self.owner, self.settings.lease_seconds)
        )
        if claimed is not None:
            await resume_jobs(runner, [claimed])
            return await runner.cancel(job.id) or claimed
        token = _UNFENCED.set(True)
        try:
            # A job that replica is creating may reach IMA all the same: the final says so, as for a
            # running one (its replica finds it finished when the create answers, and stops there).
            started = job.state in (JobState.CREATING, JobState.RUNNING)
            return await runner.finish_cancelled(job, was_running=started)
        except InvalidTransition as exc:  # it finished meanwhile: nothing to cancel
            log.info("job=%s not cancelled: %s", job.id, exc)
            return await runner.store.get_job(job.id) or job
        finally:
            _UNFENCED.reset(token)

    async def release(self) -> int:
        """Gives up every job this replica holds (graceful stop), so another takes them at once."""
        try:
            released = await self._runner.store.release_jobs(self.owner)
        except StoreError as exc:  # they are adopted when the leases expire instead
            log.warning("releasing this replica's jobs failed (%s); they move on at lease expiry", exc)
            return 0
        log.info("released %d jobs for the other replicas", released)
        self.owned = 0
        return released
