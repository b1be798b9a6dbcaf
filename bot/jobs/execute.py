"""One job's run: inputs → create (with reflection) → watch with progress edits → the final message."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.core import AttachmentRejected
from bot.core.media import check_image
from ima.errors import CreateOutcomeUnknown, ImaError, TaskFailed, TaskTimeout
from ima.models import ResolvedTask, TaskState
from ima.polling import backoff_delay, progress_percent

from . import finals, frames, notices, poll_plan
from .model import Job, JobSpec, JobState
from .params import effective_spec, preferred, said
from .progress import Cadence, Estimate

if TYPE_CHECKING:
    from .runner import JobRunner

log = logging.getLogger("imabot.runner")

STATUS_BACKOFF_MAX_S = 120.0  # between status checks of a task whose status endpoint refuses us


async def run_job(runner: JobRunner, job_id: str) -> None:
    """Drives the job from whatever state the store holds to a finished state.

    Cancellation by the user ends in CANCELLED; cancellation by shutdown leaves the stored state as it is,
    so the next start resumes it.
    """
    job = await runner.durable(lambda: runner.store.get_job(job_id))
    if job is None or job.finished:
        return
    try:
        if job.state in (JobState.QUEUED, JobState.PREPARING):
            if runner.leases is not None:  # issue 13: the caps hold across replicas (a slot in the store)
                await runner.leases.take_slot(job)
            job = await _prepare_and_create(runner, job)
            if job is None:
                return
        if job.state is JobState.RUNNING:
            await _watch(runner, job)
    except asyncio.CancelledError:
        if runner.cancel_requested(job_id) and not runner.closing:
            await runner.finish_if_cancel_requested(job_id)
            return
        raise


async def _prepare_and_create(runner: JobRunner, job: Job) -> Job | None:
    if job.state is JobState.QUEUED:
        job = await runner.transition(job, JobState.PREPARING)
    try:
        urls = list(job.input_urls)
        if job.spec.attachments and not urls:
            job = await runner.delivery.show(
                job, notices.stage(runner.texts, job, "progress.preparing"), stage="preparing"
            )
            urls = await _upload_inputs(runner, job)
            job = await runner.update(job, input_urls=tuple(urls))
    except AttachmentRejected as exc:
        await runner.fail(job, exc.key, **exc.params)
        return None
    except ImaError as exc:
        await runner.fail(job, exc.key, code=exc.code, detail=exc.message)
        return None
    if runner.cancel_requested(job.id):
        await runner.finish_cancelled(job, was_running=False)
        return None

    # The notice goes first: a stop (or a platform fault) while it is shown leaves the job PREPARING,
    # which runs again after a restart. CREATING is stored right before the bytes leave, and a crash from
    # there on resumes as UNCERTAIN: that window is the create call alone.
    job = await runner.delivery.show(
        job, notices.stage(runner.texts, job, "progress.creating"), stage="creating"
    )
    if runner.cancel_requested(job.id):  # asked while the notice above was being shown
        await runner.finish_cancelled(job, was_running=False)
        return None
    if runner.closing:  # a stop began: no create starts now (the job, PREPARING, runs after the restart)
        return None
    job = await runner.transition(job, JobState.CREATING)
    if runner.cancel_requested(job.id):  # asked while CREATING was being stored
        await runner.finish_cancelled(job, was_running=False)
        return None
    try:
        created = await runner.client.create_task(
            job.spec.task_type,
            job.spec.model_id,
            job.spec.prompt,
            input_urls=urls,
            overrides=said(job.spec),
            preferred=preferred(job.spec),
        )
    except CreateOutcomeUnknown as exc:
        await runner.fail(job, exc.key, code=exc.code, detail=exc.message, state=JobState.UNCERTAIN)
        return None
    except ImaError as exc:
        await runner.fail(job, exc.key, code=exc.code, detail=exc.message)
        return None

    resolved: ResolvedTask = created.resolved
    notes = [[n.key, dict(n.params)] for n in created.notes]
    spec = effective_spec(job, resolved)
    changed = reflected_changes(job, spec, resolved.credit)
    extra = {**job.extra, "attempts": created.attempts, "create_notes": notes}
    if changed:  # reflection ran the task with other values: every later message says so
        extra["reflected"] = changed
    job = await runner.transition(
        job,
        JobState.RUNNING,
        task_id=created.task_id,
        started_at=runner.clock(),
        credit=resolved.credit,
        spec=spec,
        extra=extra,
    )
    if runner.cancel_requested(job.id):
        await runner.finish_cancelled(job, was_running=True)
        return None
    return job


def reflected_changes(job: Job, spec: JobSpec, credit: int) -> dict[str, list[object]]:
    """{field: [admitted value, value IMA used]} for resolution, duration and credit, where they differ."""
    out: dict[str, list[object]] = {}
    for name, old, new in (
        ("resolution", job.spec.resolution, spec.resolution),
        ("duration", job.spec.duration, spec.duration),
        ("credit", job.credit, credit),
    ):
        if old is not None and new is not None and old != new:
            out[name] = [old, new]
    return out


async def _upload_inputs(runner: JobRunner, job: Job) -> list[str]:
    messenger = runner.delivery.messenger(job)
    urls = []
    for att in job.spec.attachments:
        if frames.source_of(att):  # issue 14: another job's last frame (a continued shot)
            data = await frames.read_last_frame(runner, att)
        else:
            data = await messenger.read_attachment(att, max_bytes=runner.settings.max_image_bytes)
        name = att.filename or "image.png"
        # The one byte check every adapter's file passes before IMA sees it: the bytes decide the type.
        info = check_image(data, name=name)
        urls.append(await runner.client.upload_file(data, filename=name, content_type=info.mime))
    return urls


def _estimate(job: Job) -> Estimate:
    low, high = job.extra.get("estimate") or (60, 120)
    return Estimate(int(low), int(high))


async def _watch(runner: JobRunner, job: Job) -> None:
    """Polls the task to its end. A status error that is not transient (401, 404, 4008 …) does not
    abandon a task IMA created (and may bill): polling goes on with backoff until the wait limit, and a
    task that ends unknown says so."""
    status_errors = 0
    while True:
        try:
            job = await _poll(runner, job)
            return
        except TaskFailed as exc:
            # IMA says the task failed: it is not billed, so its reservation goes back to the budget.
            await runner.durable(lambda j=job.id: runner.store.release_credit(j))
            await runner.fail(
                job, "task_deleted" if exc.deleted else exc.key, code=exc.code, detail=exc.message
            )
            return
        except TaskTimeout as exc:
            key = "status_unknown" if status_errors else exc.key
            await runner.fail(job, key, code=exc.code, detail=exc.message, state=JobState.TIMED_OUT)
            return
        except ImaError as exc:  # a business error while polling (e.g. the key was revoked mid-job)
            status_errors += 1
            log.warning(
                "job=%s status check refused (%s %s); checking again later", job.id, exc.code, exc.key
            )
            job = await runner.update(
                job, extra={**job.extra, "status_error": {"code": str(exc.code), "key": exc.key}}
            )
            await runner.sleep(backoff_delay(status_errors, cap=STATUS_BACKOFF_MAX_S))


async def _poll(runner: JobRunner, job: Job) -> Job:
    resumed = bool(job.extra.get("resumed"))
    est = _estimate(job)
    cadence = Cadence(runner.settings.cadence[job.spec.model_id])
    started = job.started_at or runner.clock()
    # No poll before the plan's first poll (bot/jobs/poll_plan.py); progress shows meanwhile, same cadence.
    first_at = poll_plan.first_poll_at(
        started, job.extra.get("first_poll"), resumed=resumed, now=runner.clock()
    )
    shown = [job]

    async def tick(now: float) -> None:
        elapsed = now - started
        pct = progress_percent(elapsed, float(est.high))
        if cadence.ready(now):
            notice = notices.progress(
                runner.texts, shown[0], elapsed=elapsed, pct=pct, est=est, resumed=resumed
            )
            if cadence.due(now, notice.text):
                cadence.mark(now, notice.text)
                shown[0] = await runner.delivery.show(shown[0], notice, stage=f"progress-{int(now)}")

    await poll_plan.progress_until(
        first_at, every=cadence.interval, clock=runner.clock, sleep=runner.sleep, tick=tick
    )
    job = shown[0]
    async for snap in runner.client.watch(
        job.task_id,
        interval=runner.settings.poll_interval,
        max_wait=runner.settings.max_wait,
        estimated_max=float(est.high),
        started_at=started,
        first_poll_at=first_at,
        clock=runner.clock,
        sleep=runner.sleep,
    ):
        if snap.task.state is TaskState.SUCCEEDED:
            await _succeed(runner, job, snap.task.url, snap.task.cover_url)
            return job
        now = runner.clock()
        if not cadence.ready(now):
            continue
        notice = notices.progress(
            runner.texts, job, elapsed=snap.elapsed, pct=snap.percent, est=est, resumed=resumed
        )
        if cadence.due(now, notice.text):
            cadence.mark(now, notice.text)
            job = await runner.delivery.show(job, notice, stage=f"progress-{int(now)}")
    return job


async def _succeed(runner: JobRunner, job: Job, url: str, cover: str) -> None:
    now = runner.clock()
    # The store writes the credit ledger in the same transaction: only successful jobs count.
    job = await runner.transition(job, JobState.SUCCEEDED, finished_at=now, result_url=url, cover_url=cover)
    elapsed = now - (job.started_at or now)
    await runner.deliver_final(job, finals.success(runner.texts, job, elapsed=elapsed))
