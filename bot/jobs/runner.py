"""The job runner: admits jobs, runs them under the scheduler, and resumes them after a restart."""

from __future__ import annotations

import asyncio
import logging
import math
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
from .durable import retrying
from .inflight import InFlight
from .leases import Leases, LeaseSettings, default_replica_id
from .model import Job, JobState
from .outbox import FinalsOutbox
from .params import effective_spec, preferred, said
from .poll_plan import first_poll_delay
from .progress import CADENCE_S, Estimate, estimate
from .scheduler import Scheduler, budget_day_start
from .store import InvalidTransition, JobStore, LeaseLost
from .texts import Texts

log = logging.getLogger("imabot.runner")

READY_WAIT_S = 120.0  # how long the resume waits for the platforms before it goes ahead anyway


@dataclass(frozen=True)
class RunnerSettings:
    poll_interval: float = 8.0
    max_wait: float = 2400.0
    cadence: Mapping[ModelId, float] = field(default_factory=lambda: dict(CADENCE_S))
    history_min_samples: int = 5
    max_image_bytes: int = 20 * 1024 * 1024
    daily_credit_budget: int = 0  # 0 = no budget
    shutdown_grace: float = 30.0  # how long close() waits for in-flight creates
    time_scale: float = 1.0  # IMA runs this many times faster (the sandbox's emulator): estimates shrink
    lease_seconds: float = 0.0  # issue 13: > 0 with several replicas on one store (bot/jobs/leases.py)
    replica_id: str = ""  # issue 13: this replica's owner id in the store; "" = host:pid:random


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
        s = self.settings
        self.leases = (
            Leases(self, LeaseSettings(s.replica_id or default_replica_id(), s.lease_seconds))
            if s.lease_seconds > 0
            else None
        )
        self.delivery.write = lambda job_id, **f: self.durable(
            lambda: store.update_job(job_id, **f, **self._fence())
        )
        self.clock, self.sleep = clock, sleep  # injected time: every job task waits and reads through these
        self._tasks: dict[str, asyncio.Task[None]] = {}  # "admit:<job>" / "run:<job>" -> task
        self._admitted: dict[str, asyncio.Event] = {}
        self._seen: set[str] = set()  # every job admitted or adopted by this process
        self._cancel_requested: set[str] = set()
        self._inflight = InFlight()  # creates on the wire and finals on their way (close() settles them)
        self._worker: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []  # the resume and the outbox tasks
        self._resumed = asyncio.Event()
        self._close_began = asyncio.Event()  # close() began: no job starts, no create begins
        self.outbox = FinalsOutbox(self)
        self.listeners: list[Callable[[Job], None]] = []  # metrics hooks, called on every state change
        self.store_listeners: list[Callable[[Exception], None]] = []  # called on every failed store write
        self.drop_listeners: list[Callable[[str], None]] = []  # called with a job another replica took

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, *, ready: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Starts, in owned background tasks, the resume of unfinished jobs (then taking new jobs from the
        scheduler) and the finals outbox; returns at once, so adapters and /healthz come up first. Both
        first await ready() (the platforms can take messages), at most READY_WAIT_S: a delivery tried
        before would fail and, worse, could not tell a refused edit from a platform not yet there."""
        gate = asyncio.ensure_future(self._await_ready(ready))
        jobs = [
            (self._resume_then_dispatch(gate), "imabot-resume"),
            (self._outbox_after(gate), "imabot-outbox"),
        ]
        if self.leases is not None:
            jobs.append((self._leases_after(gate), "imabot-leases"))
        for coro, name in jobs:
            task = asyncio.create_task(coro, name=name)
            task.add_done_callback(self._log_crash)
            self._background.append(task)
        self._background.append(gate)

    @staticmethod
    async def _await_ready(ready: Callable[[], Awaitable[Any]] | None) -> None:
        if ready is None:
            return
        try:
            async with asyncio.timeout(READY_WAIT_S):
                await ready()
        except TimeoutError:
            log.warning(
                "platforms not ready after %.0f s; resuming anyway (the outbox retries)", READY_WAIT_S
            )

    async def _outbox_after(self, gate: asyncio.Future[None]) -> None:
        await asyncio.shield(gate)
        await self.outbox.run(self.sleep)

    async def _leases_after(self, gate: asyncio.Future[None]) -> None:
        await asyncio.shield(gate)
        await self._resumed.wait()  # the resume's own round comes first
        assert self.leases is not None
        await self.leases.run(self.sleep)

    async def _resume_then_dispatch(self, gate: asyncio.Future[None]) -> None:
        from .resume import resume_all  # local import: resume depends on this module's class

        try:
            await asyncio.shield(gate)
            try:
                await resume_all(self)
            except Exception:  # new jobs must still run; the old ones resume at the next start
                log.exception("resuming the previous run's jobs failed; taking new jobs anyway")
        finally:
            self._resumed.set()
        self._worker = asyncio.create_task(self._dispatch_loop(), name="imabot-dispatch")
        self._worker.add_done_callback(self._log_crash)

    @property
    def resuming(self) -> bool:
        """True until the jobs of the previous run are picked up again and each final it left undelivered
        was tried once (for /healthz)."""
        return not self._resumed.is_set() or self.outbox.catching_up

    async def wait_resumed(self) -> None:
        await self._resumed.wait()

    async def close(self) -> None:
        """Stops taking jobs and cancels job tasks; the store keeps every job where it stood, so the next
        start resumes them (or, with replicas, another replica at once). First, within `shutdown_grace`
        in all, creates already on the wire come back and finals on their way land (no create begins
        once close() began): a job cut off in its create would resume as uncertain, a final cut off
        would be posted late, or by two replicas."""
        self._close_began.set()
        # The lease loop goes on renewing (and only that) until this replica's work is settled.
        leasing = [t for t in self._background if t.get_name() == "imabot-leases"]
        others = [
            t for t in [*self._background, *([self._worker] if self._worker else [])] if t not in leasing
        ]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_grace
        await self._inflight.settle(deadline, lambda job_id: self._tasks.get(f"run:{job_id}"))
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in leasing:
            task.cancel()
        await asyncio.gather(*leasing, return_exceptions=True)
        if self.leases is not None:
            await self.leases.release()

    @property
    def closing(self) -> bool:
        return self._close_began.is_set()

    async def wait_closing(self) -> None:
        """Returns once close() began (no job starts a create from then on)."""
        await self._close_began.wait()

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

    def now(self) -> float:
        return self.clock()

    # -- replicas (issue 13, bot/jobs/leases.py) ---------------------------------------------------
    def _fence(self) -> dict[str, Any]:
        return self.leases.fence() if self.leases is not None else {}

    def local_jobs(self) -> set[str]:
        """Ids of the jobs this process works on now (queued, admitting, running, finishing)."""
        return set(self._admitted) | {key.split(":", 1)[1] for key in self._tasks}

    def drop(self, job_id: str) -> None:
        """Stops every local task of a job another replica holds now, sending and writing nothing."""
        for fn in self.drop_listeners:
            try:
                fn(job_id)
            except Exception:  # a metrics hook must never break a job
                log.exception("drop listener failed")
        self.scheduler.remove(job_id)
        self._admitted.pop(job_id, None)
        self._inflight.left_creating(job_id)
        self._seen.discard(job_id)  # it may come back here later (adopted once more)
        current = asyncio.current_task()
        for name in ("admit", "run", "final"):
            task = self._tasks.get(f"{name}:{job_id}")
            if task is not None and task is not current:
                task.cancel()

    async def durable(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """call() retried while the store fails (see durable.retrying); gives up only at shutdown."""
        return await retrying(call, sleep=self.sleep, stop=lambda: self.closing, on_fault=self._store_fault)

    def _store_fault(self, exc: Exception) -> None:
        for fn in self.store_listeners:
            try:
                fn(exc)
            except Exception:  # a metrics hook must never break a job
                log.exception("store listener failed")

    async def update(self, job: Job, **fields: Any) -> Job:
        """Writes non-state fields (retrying store faults) and tells the listeners."""
        job = await self.durable(lambda: self.store.update_job(job.id, **fields, **self._fence()))
        self.notify(job)
        return job

    def notify(self, job: Job) -> None:
        for fn in self.listeners:
            try:
                fn(job)
            except Exception:  # a metrics hook must never break a job
                log.exception("listener failed")

    async def transition(self, job: Job, state: JobState, **fields: Any) -> Job:
        """Stores a state change, retrying store faults until the store heals (or shutdown)."""
        if state is JobState.CREATING:
            # Counted before the write: a stop that comes while it commits must wait for this create too
            # (cancelled between the commit and the request, the job would resume as uncertain).
            self._inflight.mark_creating(job.id)
        try:
            job = await self.durable(lambda: self.store.transition(job.id, state, **fields, **self._fence()))
        except InvalidTransition as exc:
            if exc.current is not state:
                if state is JobState.CREATING and exc.current is not JobState.CREATING:
                    self._inflight.left_creating(job.id)
                raise
            # A retried write whose first try committed after all: the change is stored.
            job = await self.durable(lambda: self.store.get_job(job.id))
        if job.state is JobState.CREATING:
            self._inflight.mark_creating(job.id)
        else:
            self._inflight.left_creating(job.id)
        self.notify(job)
        return job

    # -- admission -------------------------------------------------------------------------------
    def admit(self, job: Job, *, notice_ready: bool = False) -> None:
        """Shows the pre-notice and queues the job (in a task of its own, so callers return at once).
        A job admitted already is left alone (the resume and a new message may meet at start-up), and so
        is every job once close() began: it stays stored as it is, and runs after the restart (or on the
        replica that takes it over)."""
        if self.knows(job.id) or self.closing:
            return
        self._seen.add(job.id)
        event = self._admitted[job.id] = asyncio.Event()
        if notice_ready:
            event.set()
        self.scheduler.submit(job.id, job.user_key)
        if not notice_ready:
            self._spawn(job.id, self._admit(job, event), "admit")

    def adopt(self, job: Job) -> None:
        """Watches a job whose IMA task already runs (after a restart), outside the queue."""
        from .execute import run_job  # local import: execute depends on this module's class

        if self.knows(job.id) or self.closing:  # closing: as in admit()
            return
        self._seen.add(job.id)
        self.scheduler.adopt(job.id, job.user_key)
        self._spawn(job.id, self._run_released(job.id, run_job), "run")

    def knows(self, job_id: str) -> bool:
        """Whether this process took the job in already (the resume skips it: a new message, or a
        cancel, may come in while the resume reads the store at start-up)."""
        return job_id in self._seen

    async def _admit(self, job: Job, admitted: asyncio.Event) -> None:
        try:
            if self.leases is not None and not await self.durable(lambda: self.leases.claim(job.id)):  # type: ignore[union-attr]
                self.drop(job.id)  # stored without an owner and taken by another replica first
                return
            resolved, est = await self.preview(job)
            limit = self.settings.daily_credit_budget
            since = budget_day_start(self.clock())
            fields = {
                "spec": effective_spec(job, resolved),
                "credit": resolved.credit,
                "extra": {
                    **job.extra,
                    "estimate": [est.low, est.high],
                    # When the first status poll goes out (see poll_plan): not before the task can end.
                    "first_poll": first_poll_delay(
                        job.spec.model_id, est, interval=self.settings.poll_interval
                    ),
                },
            }
            # Reserved in one store transaction with the budget check (a burst cannot pass the budget),
            # and with what admission learned: one commit per admission.
            reserved, spent, stored = await self.durable(
                lambda: self.store.reserve_and_update(
                    job.id, job.user_key, resolved.credit, limit=limit, since=since, **fields
                )
            )
            if not reserved or stored is None:
                self.scheduler.remove(job.id)
                await self.fail(job, "budget_exceeded", spent=spent, limit=limit, credit=resolved.credit)
                return
            job = stored
            self.notify(job)
            position = self.scheduler.position(job.id) or 0
            pre = notices.prenotice(
                self.texts, job, est, credit=resolved.credit, position=position, notes=resolved.notes
            )
            await self.delivery.show(job, pre, stage="prenotice")
        except ImaError as exc:
            self.scheduler.remove(job.id)
            await self.fail(job, exc.key, code=exc.code, detail=exc.message)
        except (LeaseLost, InvalidTransition) as exc:
            if self.leases is None or not self.leases.refused(job.id, exc):
                raise
        finally:
            admitted.set()

    async def preview(self, job: Job) -> tuple[ResolvedTask, Estimate]:
        """The leaf, rule and credits this job will use, and its expected run time (catalog is cached)."""
        spec = job.spec
        product = await self.client.fetch_product(spec.task_type, spec.model_id)
        resolved = self.client.resolve(product, spec.task_type, said(spec), preferred=preferred(spec))
        eff = effective_spec(job, resolved)  # history is kept under the values IMA really used
        history = await self.store.finished_durations(spec.model_id, eff.duration, eff.resolution)
        est = estimate(spec.model_id, history, min_samples=self.settings.history_min_samples)
        scale = self.settings.time_scale
        if scale != 1 and not est.from_history:  # history holds real run times; the fixed table does not
            est = Estimate(max(1, round(est.low / scale)), max(2, math.ceil(est.high / scale)))
        return resolved, est

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
        except (LeaseLost, InvalidTransition) as exc:
            if self.leases is None or not self.leases.refused(job_id, exc):
                raise
        except asyncio.CancelledError:
            # A cancel that lands before run_job could see it (while the pre-notice is still being
            # sent) still ends the job; run_job handles every later one itself.
            if not self.cancel_requested(job_id) or self.closing:
                raise
            await self.finish_if_cancel_requested(job_id)
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
        if self.leases is not None and not self.knows(job_id):  # issue 13: pressed on another replica
            return await self.leases.cancel_elsewhere(job)
        if self.scheduler.remove(job_id):
            self._admitted.pop(job_id, None)
            task = self._tasks.get(f"admit:{job_id}")
            if task is not None:  # still showing its pre-notice
                task.cancel()
            return await self.finish_cancelled(job, was_running=False)
        self._cancel_requested.add(job_id)
        admit = self._tasks.get(f"admit:{job_id}")
        if admit is not None:  # started already, but its pre-notice is still on the way: no need now
            admit.cancel()
        task = self._tasks.get(f"run:{job_id}")
        # A create on the wire is not interrupted (its outcome would become unknown); the run loop checks
        # the request right after the create answers.
        if task is not None and not self._inflight.creating(job_id):
            task.cancel()
        elif task is None:
            return await self.finish_cancelled(job, was_running=job.state is JobState.RUNNING)
        return job

    def cancel_requested(self, job_id: str) -> bool:
        return job_id in self._cancel_requested

    async def finish_if_cancel_requested(self, job_id: str) -> None:
        """Ends a job the user cancelled, unless it has finished already."""
        current = await self.durable(lambda: self.store.get_job(job_id))
        if current is not None and not current.finished:
            await self.finish_cancelled(current, was_running=current.state is JobState.RUNNING)

    async def finish_cancelled(self, job: Job, *, was_running: bool) -> Job:
        job = await self.transition(job, JobState.CANCELLED, finished_at=self.clock())
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
            finished_at=self.clock(),
            error_key=key,
            error_code="" if code is None else str(code),
            error_detail=detail[:500],
            extra=extra,
        )
        await self.deliver_final(job, self.final_notice(job))
        return job

    def spawn_final(self, job: Job, key: str, *, state: JobState) -> None:
        """fail() in a task of its own (resume: a slow platform must not hold up the other jobs)."""

        async def finish() -> None:
            await self.fail(job, key, state=state)

        self._spawn(job.id, finish(), "final")

    def final_notice(self, job: Job) -> Any:
        return finals.final_for(self.texts, job, max_wait=self.settings.max_wait)

    async def deliver_final(self, job: Job, notice: Any) -> Job:
        """Shows the final message (the state is already stored). Only a send or edit the platform
        confirmed sets result_ref; otherwise the final stays in the outbox, which retries it."""
        in_place = self.delivery.final_in_place(job)
        closed = None
        if job.notice_ref and not in_place:
            elapsed = (job.finished_at - job.started_at) if job.finished_at and job.started_at else None
            closed = notices.closed(self.texts, job, elapsed=elapsed)
        # A graceful stop waits while a final is out, until what the platform answered is recorded: cut
        # off between the two, the final would be shown and then sent again after the restart.
        with self._inflight.final(job.id):
            ref = await self.delivery.deliver(job, notice, closed=closed)
            if not ref:
                # deliver() may have recorded how the final goes out (final_edit_tried, final_as_post):
                # the outbox's record must be written on top of that, not over it from this older copy.
                stored = await self.durable(lambda: self.store.get_job(job.id))
                return await self.outbox.failed(stored or job)
            fields = {"result_ref": ref}
            if in_place and ref != job.notice_ref:  # the card was replaced by a new one
                fields["notice_ref"] = ref
            return await self.update(job, **fields)
