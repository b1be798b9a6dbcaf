"""The job runner: admits jobs, runs them under the scheduler, and resumes them after a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.core import Messenger
from ima import ImaClient
from ima.errors import ImaError
from ima.models import ModelId, ResolvedTask

from . import finals, notices
from .delivery import Delivery
from .model import Job, JobState
from .params import effective_spec, overrides
from .progress import CADENCE_S, Estimate, estimate
from .scheduler import Scheduler, budget_allows, budget_day_start
from .store import JobStore
from .texts import Texts

log = logging.getLogger("imabot.runner")


@dataclass(frozen=True)
class RunnerSettings:
    poll_interval: float = 8.0
    max_wait: float = 2400.0
    cadence: Mapping[ModelId, float] = field(default_factory=lambda: dict(CADENCE_S))
    history_min_samples: int = 5
    max_image_bytes: int = 20 * 1024 * 1024
    daily_credit_budget: int = 0  # 0 = no budget
    shutdown_grace: float = 30.0  # how long close() waits for in-flight creates


class JobRunner:
    """Owns every job task. `admit` records nothing (the dispatcher already stored the job); it shows the
    pre-notice and queues the job. Jobs start when the scheduler allows and run to a final message."""

    def __init__(
        self,
        *,
        store: JobStore,
        client: ImaClient,
        scheduler: Scheduler,
        messengers: Mapping[str, Messenger],
        texts: Texts,
        settings: RunnerSettings | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store, self.client, self.scheduler, self.texts = store, client, scheduler, texts
        self.settings = settings or RunnerSettings()
        self.delivery = Delivery(store, messengers, sleep=sleep)
        self._clock, self._sleep = clock, sleep
        self._tasks: dict[str, asyncio.Task[None]] = {}  # "admit:<job>" / "run:<job>" -> task
        self._admitted: dict[str, asyncio.Event] = {}
        self._cancel_requested: set[str] = set()
        self._stored_creating: set[str] = set()  # jobs whose stored state is CREATING (see cancel, close)
        self._left_creating = asyncio.Event()  # set whenever one of them leaves CREATING
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self.listeners: list[Callable[[Job], None]] = []  # metrics hooks, called on every state change

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Resumes unfinished jobs and starts taking jobs from the scheduler."""
        from .resume import resume_all  # local import: resume depends on this module's class

        await resume_all(self)
        self._worker = asyncio.create_task(self._dispatch_loop(), name="imabot-dispatch")
        self._worker.add_done_callback(self._log_crash)

    async def close(self) -> None:
        """Stops taking jobs and cancels job tasks; the store keeps every job where it stood, so the next
        start resumes them. Creates already on the wire are given `shutdown_grace` to come back first."""
        self._closing = True
        if self._worker:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await self._settle_creates()
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _settle_creates(self) -> None:
        """Waits (up to shutdown_grace) until every job stored as CREATING has stored what its create
        gave (RUNNING with the task id, or a failure), so a restart watches it instead of reporting it
        uncertain. Only that: jobs past their create are cancelled right after, and resume later."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_grace
        while True:
            pending = [t for j in self._stored_creating if (t := self._tasks.get(f"run:{j}")) is not None]
            if not pending or loop.time() >= deadline:
                return
            self._left_creating.clear()
            left = asyncio.ensure_future(self._left_creating.wait())
            try:
                await asyncio.wait([left, *pending], timeout=deadline - loop.time(),
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                left.cancel()

    @property
    def closing(self) -> bool:
        return self._closing

    def _spawn(self, job_id: str, coro: Awaitable[None], name: str) -> None:
        key = f"{name}:{job_id}"
        task = asyncio.ensure_future(coro)
        task.set_name(key)
        self._tasks[key] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._tasks.get(key) is t:
                del self._tasks[key]
            self._log_crash(t)

        task.add_done_callback(done)

    @staticmethod
    def _log_crash(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s crashed", task.get_name(), exc_info=task.exception())

    def notify(self, job: Job) -> None:
        for fn in self.listeners:
            try:
                fn(job)
            except Exception:  # a metrics hook must never break a job
                log.exception("listener failed")

    async def transition(self, job: Job, state: JobState, **fields: Any) -> Job:
        job = await self.store.transition(job.id, state, **fields)
        if job.state is JobState.CREATING:
            self._stored_creating.add(job.id)
        elif job.id in self._stored_creating:
            self._stored_creating.discard(job.id)
            self._left_creating.set()
        self.notify(job)
        return job

    # -- admission -------------------------------------------------------------------------------
    def admit(self, job: Job, *, notice_ready: bool = False) -> None:
        """Shows the pre-notice and queues the job (in a task of its own, so callers return at once)."""
        event = self._admitted[job.id] = asyncio.Event()
        if notice_ready:
            event.set()
        self.scheduler.submit(job.id, job.user_key)
        if not notice_ready:
            self._spawn(job.id, self._admit(job, event), "admit")

    def adopt(self, job: Job) -> None:
        """Watches a job whose IMA task already runs (after a restart), outside the queue."""
        from .execute import run_job  # local import: execute depends on this module's class

        self.scheduler.adopt(job.id, job.user_key)
        self._spawn(job.id, self._run_released(job.id, run_job), "run")

    async def _admit(self, job: Job, admitted: asyncio.Event) -> None:
        try:
            resolved, est = await self.preview(job)
            limit = self.settings.daily_credit_budget
            if limit:
                now = self._clock()
                spent = await self.store.credits_spent(job.user_key, since=budget_day_start(now))
                if not budget_allows(spent, resolved.credit, limit):
                    self.scheduler.remove(job.id)
                    await self.fail(job, "budget_exceeded", spent=spent, limit=limit, credit=resolved.credit)
                    return
            job = await self.store.update_job(
                job.id,
                spec=effective_spec(job, resolved),
                credit=resolved.credit,
                extra={**job.extra, "estimate": [est.low, est.high]},
            )
            position = self.scheduler.position(job.id) or 0
            pre = notices.prenotice(
                self.texts, job, est, credit=resolved.credit, position=position, notes=resolved.notes
            )
            await self.delivery.show(job, pre, stage="prenotice")
        except ImaError as exc:
            self.scheduler.remove(job.id)
            await self.fail(job, exc.key, code=exc.code, detail=exc.message)
        finally:
            admitted.set()

    async def preview(self, job: Job) -> tuple[ResolvedTask, Estimate]:
        """The leaf, rule and credits this job will use, and its expected run time (catalog is cached)."""
        spec = job.spec
        product = await self.client.fetch_product(spec.task_type, spec.model_id)
        resolved = self.client.resolve(product, spec.task_type, overrides(spec))
        eff = effective_spec(job, resolved)  # history is kept under the values IMA really used
        history = await self.store.finished_durations(spec.model_id, eff.duration, eff.resolution)
        return resolved, estimate(spec.model_id, history, min_samples=self.settings.history_min_samples)

    async def _dispatch_loop(self) -> None:
        from .execute import run_job  # local import: execute depends on this module's class

        while True:
            job_id = await self.scheduler.acquire()
            self._spawn(job_id, self._run_released(job_id, run_job), "run")

    async def _run_released(self, job_id: str, run: Callable[[JobRunner, str], Awaitable[None]]) -> None:
        try:
            admitted = self._admitted.get(job_id)
            if admitted is not None:  # the pre-notice goes out before the first progress edit
                await admitted.wait()
            await run(self, job_id)
        finally:
            self.scheduler.release(job_id)
            self._admitted.pop(job_id, None)
            self._cancel_requested.discard(job_id)

    # -- cancel and final messages -----------------------------------------------------------------
    async def cancel(self, job_id: str) -> Job | None:
        """Cancels a job in any state; returns the job as it now stands (None if unknown)."""
        job = await self.store.get_job(job_id)
        if job is None or job.finished:
            return job
        if self.scheduler.remove(job_id):
            self._admitted.pop(job_id, None)
            task = self._tasks.get(f"admit:{job_id}")
            if task is not None:  # still showing its pre-notice
                task.cancel()
            return await self.finish_cancelled(job, was_running=False)
        self._cancel_requested.add(job_id)
        task = self._tasks.get(f"run:{job_id}")
        # A create on the wire is not interrupted (its outcome would become unknown); the run loop checks
        # the request right after the create answers.
        if task is not None and job_id not in self._stored_creating:
            task.cancel()
        elif task is None:
            return await self.finish_cancelled(job, was_running=job.state is JobState.RUNNING)
        return job

    def cancel_requested(self, job_id: str) -> bool:
        return job_id in self._cancel_requested

    async def finish_cancelled(self, job: Job, *, was_running: bool) -> Job:
        job = await self.transition(job, JobState.CANCELLED, finished_at=self._clock())
        await self.deliver_final(job, finals.cancelled(self.texts, job, was_running=was_running))
        return job

    async def fail(
        self,
        job: Job,
        key: str,
        *,
        code: Any = None,
        detail: str = "",
        state: JobState = JobState.FAILED,
        **params: Any,
    ) -> Job:
        extra = {**job.extra, "error_params": params} if params else job.extra
        job = await self.transition(
            job,
            state,
            finished_at=self._clock(),
            error_key=key,
            error_code="" if code is None else str(code),
            error_detail=detail[:500],
            extra=extra,
        )
        await self.deliver_final(job, self.final_notice(job))
        return job

    def final_notice(self, job: Job) -> Any:
        return finals.final_for(self.texts, job, max_wait=self.settings.max_wait)

    async def deliver_final(self, job: Job, notice: Any) -> Job:
        """Posts the final message once (the state is already stored; result_ref marks it delivered)."""
        if self.delivery.final_in_place(job):
            job = await self.delivery.show(job, notice, stage="final")
            ref = job.notice_ref
        else:
            ref = await self.delivery.send(job, notice, stage="final")
            if ref and job.notice_ref:
                elapsed = (job.finished_at - job.started_at) if job.finished_at and job.started_at else None
                await self.delivery.show(
                    job, notices.closed(self.texts, job, elapsed=elapsed), stage="closed"
                )
        if ref:
            job = await self.store.update_job(job.id, result_ref=ref)
            self.notify(job)
        return job
