"""The finals outbox: a final message the platform did not confirm is retried until it is confirmed.

A finished job whose `result_ref` is empty is in the outbox. Its retry schedule lives in
`job.extra["outbox"]` ({"attempts", "next_at", "undeliverable"}), so a restart continues it (and tries
once at start-up: a restart often is what heals a platform connection). Retries back off exponentially
with jitter, capped, until `give_up_after` seconds passed since the job finished; then the job is marked
undeliverable, logged and counted, and left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .model import Job

if TYPE_CHECKING:
    from .runner import JobRunner

log = logging.getLogger("imabot.outbox")


@dataclass(frozen=True)
class OutboxSettings:
    first_delay: float = 5.0  # seconds before the first retry
    max_delay: float = 900.0  # the backoff's cap
    give_up_after: float = 12 * 3600.0  # since the job finished


def retry_delay(attempts: int, settings: OutboxSettings, rand: Callable[[], float] = random.random) -> float:
    """The wait after `attempts` failed deliveries (1-based): first × 2^(attempts-1), capped, then
    jittered down by up to half, so finals refused together do not come back together."""
    base = min(settings.max_delay, settings.first_delay * 2 ** max(0, attempts - 1))
    return base * (0.5 + rand() / 2)


class FinalsOutbox:
    """Retries unconfirmed finals in one background task owned by the runner (`run`, cancelled by it)."""

    def __init__(
        self,
        runner: JobRunner,
        settings: OutboxSettings | None = None,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._runner = runner
        self.settings = settings or OutboxSettings()
        self._rand = rand
        self._due: dict[str, float] = {}  # job id -> clock time of its next attempt
        self._catching_up: set[str] = set()  # loaded at start-up, first attempt not yet made
        self._wake = asyncio.Event()
        # Called with the job once it is given up on (the metrics hook); never raises into the outbox.
        self.on_undeliverable: Callable[[Job], None] | None = None

    @property
    def pending(self) -> int:
        """How many finals wait for a retry."""
        return len(self._due)

    @property
    def catching_up(self) -> bool:
        """True while finals loaded from the store wait for their first attempt (/healthz: resuming)."""
        return bool(self._catching_up)

    def queued(self, job_id: str) -> bool:
        """Whether a retry of job_id's final is queued here."""
        return job_id in self._due

    def schedule(self, job_id: str, at: float) -> None:
        """Queues a retry of job_id's final at clock time `at`."""
        self._due[job_id] = at
        self._wake.set()

    async def load(self) -> int:
        """Queues every undelivered final the store holds, due now; returns how many."""
        now = self._runner.now()
        jobs = await self._runner.durable(self._runner.store.undelivered_jobs)
        for job in jobs:
            self._due.setdefault(job.id, now)
            self._catching_up.add(job.id)
        self._wake.set()
        return len(jobs)

    async def failed(self, job: Job) -> Job:
        """Records one more failed delivery of job's final and queues the next attempt (or gives up)."""
        state = dict(job.extra.get("outbox") or {})
        attempts = int(state.get("attempts", 0)) + 1
        now = self._runner.now()
        finished = job.finished_at or now
        if now - finished >= self.settings.give_up_after:
            state.update(attempts=attempts, undeliverable=True)
            job = await self._runner.update(job, extra={**job.extra, "outbox": state})
            self._due.pop(job.id, None)
            log.error(
                "job=%s final undeliverable after %d attempts over %.0f s (platform %s); giving up",
                job.id,
                attempts,
                now - finished,
                job.origin.platform,
            )
            self._report(job)
            return job
        at = now + retry_delay(attempts, self.settings, self._rand)
        state.update(attempts=attempts, next_at=at)
        job = await self._runner.update(job, extra={**job.extra, "outbox": state})
        log.warning("job=%s final not confirmed (attempt %d); retrying in %.0f s", job.id, attempts, at - now)
        self.schedule(job.id, at)
        return job

    def _report(self, job: Job) -> None:
        if self.on_undeliverable is not None:
            try:
                self.on_undeliverable(job)
            except Exception:  # a metrics hook must never break the outbox
                log.exception("undeliverable hook failed")

    async def run(self, sleep: Callable[[float], Awaitable[Any]]) -> None:
        """Delivers due finals forever (cancel it). Each attempt goes through runner.deliver_final,
        which confirms it or calls `failed` again."""
        while True:
            now = self._runner.now()
            for job_id in [j for j, at in self._due.items() if at <= now]:
                self._due.pop(job_id, None)
                await self._attempt(job_id)
            self._wake.clear()
            if not self._due:
                await self._wake.wait()
                continue
            wait = max(0.0, min(self._due.values()) - self._runner.now())
            await self._sleep_or_wake(sleep, wait)

    async def _sleep_or_wake(self, sleep: Callable[[float], Awaitable[Any]], wait: float) -> None:
        sleeper = asyncio.ensure_future(sleep(wait))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (sleeper, woken):
                t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(sleeper, woken, return_exceptions=True)

    async def _attempt(self, job_id: str) -> None:
        try:
            await self._try(job_id)
        finally:
            self._catching_up.discard(job_id)

    async def _try(self, job_id: str) -> None:
        runner = self._runner
        job = await runner.durable(lambda: runner.store.get_job(job_id))
        if (
            job is None
            or not job.finished
            or job.result_ref
            or job.extra.get("outbox", {}).get("undeliverable")
        ):
            return
        leases = runner.leases
        if leases is not None and not await runner.durable(lambda: leases.may_deliver(job_id)):
            return  # issue 13: another replica claimed this final; it posts it
        try:
            await runner.deliver_final(job, runner.final_notice(job))
        except Exception:  # one job's bad final must not stop the others
            log.exception("job=%s final delivery crashed; retrying later", job_id)
            self.schedule(job_id, runner.now() + retry_delay(1, self.settings, self._rand))
