"""Talking to a job's chat: sends and edits that survive rate limits, deleted messages and outages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from bot.core import MessageGone, Messenger, Notice, PlatformError

from .model import Job
from .store import JobStore

log = logging.getLogger("imabot.delivery")

Sleep = Callable[[float], Awaitable[None]]


class Delivery:
    """Posts and edits a job's messages through its platform's Messenger, recording refs in the store."""

    def __init__(
        self,
        store: JobStore,
        messengers: Mapping[str, Messenger],
        *,
        sleep: Sleep = asyncio.sleep,
        attempts: int = 3,
    ) -> None:
        self._store = store
        self._messengers = messengers
        self._sleep = sleep
        self._attempts = attempts
        # How refs are stored: the runner passes a writer that outlasts store faults.
        self.write: Callable[..., Awaitable[Job]] = store.update_job
        # Called with (platform, error) for every refused send or edit (the metrics hook); never raises.
        self.on_platform_error: Callable[[str, PlatformError], None] | None = None

    def _report(self, job: Job, exc: PlatformError) -> None:
        if self.on_platform_error is not None:
            try:
                self.on_platform_error(job.origin.platform, exc)
            except Exception:  # a metrics hook must never break a delivery
                log.exception("platform error hook failed")

    def messenger(self, job: Job) -> Messenger:
        return self._messengers[job.origin.platform]

    def final_in_place(self, job: Job) -> bool:
        """Platforms whose final result replaces the progress message instead of a new post (Feishu cards)."""
        return bool(getattr(self.messenger(job), "final_in_place", False))

    async def send(self, job: Job, notice: Notice, *, stage: str) -> str:
        """Posts notice as a new message (idempotent per job and stage); returns its ref, "" when it failed."""
        key = f"{job.id}:{stage}"
        delay = 1.0
        for attempt in range(1, self._attempts + 1):
            try:
                return await self.messenger(job).send(job.origin, notice, key=key)
            except PlatformError as exc:
                self._report(job, exc)
                if exc.status in (401, 403) or attempt == self._attempts:
                    # Never hammer a platform that refuses us: 401/403 count towards its ban limits.
                    log.warning("job=%s send %s failed for good: %s", job.id, stage, exc.key)
                    return ""
                await self._sleep(exc.retry_after or delay)
                delay *= 2
        return ""

    async def show(self, job: Job, notice: Notice, *, stage: str) -> Job:
        """Shows notice in the job's progress message: an edit of it, or a new one if it is gone or missing.

        Returns the job with the (possibly new) notice_ref stored.
        """
        if job.notice_ref:
            try:
                ref = await self.messenger(job).edit(job.origin, job.notice_ref, notice)
            except MessageGone as exc:
                self._report(job, exc)
                log.info("job=%s progress message gone; posting a new one", job.id)
            except PlatformError as exc:
                self._report(job, exc)
                # A refused edit is not worth failing the job for; the next update tries again.
                log.warning("job=%s edit refused: %s %s", job.id, exc.status, exc.code)
                return job
            else:
                if ref and ref != job.notice_ref:
                    job = await self.write(job.id, notice_ref=ref)
                return job
        ref = await self.send(job, notice, stage=stage)
        if ref:
            job = await self.write(job.id, notice_ref=ref)
        return job

    async def deliver(self, job: Job, notice: Notice, *, closed: Notice | None = None) -> str:
        """Shows a final notice; returns the ref of the message that the platform confirmed shows it, or
        "" when none did (the caller keeps it in the outbox). Never raises PlatformError.

        In place (Feishu) the progress message is edited, and the job records that it tried before the
        first edit (extra["final_edit_tried"]). If that first edit is refused, the message cannot show the
        final yet: the job records that its final goes out as a new message (extra["final_as_post"]), and
        every attempt from then on posts, with the same key, which the platform de-duplicates. A refusal
        on a later attempt is only retried: an earlier attempt may have shown the final already (a crash
        before its answer was stored), and posting too would show it twice. A deleted message is replaced
        by a post; no answer at all (platform not up, connection lost) is tried again later. Elsewhere the
        final is posted, and the progress message then shows `closed` (best effort)."""
        if job.notice_ref and self.final_in_place(job) and not job.extra.get("final_as_post"):
            first = not job.extra.get("final_edit_tried")
            if first:
                job = await self.write(job.id, extra={**job.extra, "final_edit_tried": True})
            try:
                ref = await self.messenger(job).edit(job.origin, job.notice_ref, notice)
            except PlatformError as exc:
                self._report(job, exc)
                gone = isinstance(exc, MessageGone)
                if not gone and (exc.status is None or not first):
                    log.warning("job=%s final edit failed (%s); trying it again later", job.id, exc.key)
                    return ""
                log.warning("job=%s final edit refused (%s); posting it as a new message", job.id, exc.key)
                job = await self.write(job.id, extra={**job.extra, "final_as_post": True})
            else:
                return ref
        ref = await self.send(job, notice, stage="final")
        if ref and closed is not None and job.notice_ref and not self.final_in_place(job):
            try:
                await self.messenger(job).edit(job.origin, job.notice_ref, closed)
            except PlatformError as exc:  # the final is out; a stale progress message is cosmetic
                self._report(job, exc)
        return ref
