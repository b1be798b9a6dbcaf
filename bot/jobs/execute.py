"""One job's run: inputs → create (with reflection) → watch with progress edits → the final message."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.core import AttachmentRejected
from ima.errors import CreateOutcomeUnknown, ImaError, TaskFailed, TaskTimeout
from ima.models import ResolvedTask, TaskState

from . import finals, notices
from .model import Job, JobState
from .params import overrides
from .progress import Cadence, Estimate

if TYPE_CHECKING:
    from .runner import JobRunner

log = logging.getLogger("imabot.runner")


async def run_job(runner: JobRunner, job_id: str) -> None:
    """Drives the job from whatever state the store holds to a finished state.

    Cancellation by the user ends in CANCELLED; cancellation by shutdown leaves the stored state as it is,
    so the next start resumes it.
    """
    job = await runner.store.get_job(job_id)
    if job is None or job.finished:
        return
    try:
        if job.state in (JobState.QUEUED, JobState.PREPARING):
            job = await _prepare_and_create(runner, job)
            if job is None:
                return
        if job.state is JobState.RUNNING:
            await _watch(runner, job)
    except asyncio.CancelledError:
        if runner.cancel_requested(job_id) and not runner.closing:
            current = await runner.store.get_job(job_id)
            if current is not None and not current.finished:
                await runner.finish_cancelled(current, was_running=current.state is JobState.RUNNING)
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
            job = await runner.store.update_job(job.id, input_urls=tuple(urls))
    except AttachmentRejected as exc:
        await runner.fail(job, exc.key, **exc.params)
        return None
    except ImaError as exc:
        await runner.fail(job, exc.key, code=exc.code, detail=exc.message)
        return None
    if runner.cancel_requested(job.id):
        await runner.finish_cancelled(job, was_running=False)
        return None

    # Stored before the bytes leave: a crash from here on leaves CREATING, which resumes as UNCERTAIN.
    job = await runner.transition(job, JobState.CREATING)
    job = await runner.delivery.show(
        job, notices.stage(runner.texts, job, "progress.creating"), stage="creating"
    )
    if runner.cancel_requested(job.id):  # asked while the notice above was being shown
        await runner.finish_cancelled(job, was_running=False)
        return None
    try:
        created = await runner.client.create_task(
            job.spec.task_type,
            job.spec.model_id,
            job.spec.prompt,
            input_urls=urls,
            overrides=overrides(job.spec),
        )
    except CreateOutcomeUnknown as exc:
        await runner.fail(job, exc.key, code=exc.code, detail=exc.message, state=JobState.UNCERTAIN)
        return None
    except ImaError as exc:
        await runner.fail(job, exc.key, code=exc.code, detail=exc.message)
        return None

    resolved: ResolvedTask = created.resolved
    notes = [[n.key, dict(n.params)] for n in created.notes]
    job = await runner.transition(
        job,
        JobState.RUNNING,
        task_id=created.task_id,
        started_at=runner._clock(),
        credit=resolved.credit,
        extra={**job.extra, "attempts": created.attempts, "create_notes": notes},
    )
    if runner.cancel_requested(job.id):
        await runner.finish_cancelled(job, was_running=True)
        return None
    return job


async def _upload_inputs(runner: JobRunner, job: Job) -> list[str]:
    messenger = runner.delivery.messenger(job)
    urls = []
    for att in job.spec.attachments:
        data = await messenger.read_attachment(att, max_bytes=runner.settings.max_image_bytes)
        name = att.filename or "image.png"
        urls.append(
            await runner.client.upload_file(data, filename=name, content_type=att.content_type or None)
        )
    return urls


_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG", "image/png"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)
_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
}


def sniff_image_type(data: bytes) -> str:
    """The image MIME type its first bytes announce (platforms like Feishu declare none)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((ctype for magic, ctype in _MAGIC if data.startswith(magic)), "image/png")


def _estimate(job: Job) -> Estimate:
    low, high = job.extra.get("estimate") or (60, 120)
    return Estimate(int(low), int(high))


async def _watch(runner: JobRunner, job: Job) -> None:
    resumed = bool(job.extra.get("resumed"))
    est = _estimate(job)
    cadence = Cadence(runner.settings.cadence[job.spec.model_id])
    started = job.started_at or runner._clock()
    try:
        async for snap in runner.client.watch(
            job.task_id,
            interval=runner.settings.poll_interval,
            max_wait=runner.settings.max_wait,
            estimated_max=float(est.high),
            started_at=started,
            clock=runner._clock,
            sleep=runner._sleep,
        ):
            if snap.task.state is TaskState.SUCCEEDED:
                await _succeed(runner, job, snap.task.url, snap.task.cover_url)
                return
            now = runner._clock()
            if not cadence.ready(now):
                continue
            notice = notices.progress(
                runner.texts, job, elapsed=snap.elapsed, pct=snap.percent, est=est, resumed=resumed
            )
            if cadence.due(now, notice.text):
                cadence.mark(now, notice.text)
                job = await runner.delivery.show(job, notice, stage=f"progress-{int(now)}")
    except TaskFailed as exc:
        await runner.fail(job, "task_deleted" if exc.deleted else exc.key, code=exc.code, detail=exc.message)
    except TaskTimeout as exc:
        await runner.fail(job, exc.key, code=exc.code, detail=exc.message, state=JobState.TIMED_OUT)
    except ImaError as exc:  # a business error while polling (e.g. the key was revoked mid-job)
        await runner.fail(job, exc.key, code=exc.code, detail=exc.message)


async def _succeed(runner: JobRunner, job: Job, url: str, cover: str) -> None:
    now = runner._clock()
    # The store writes the credit ledger in the same transaction: only successful jobs count.
    job = await runner.transition(job, JobState.SUCCEEDED, finished_at=now, result_url=url, cover_url=cover)
    elapsed = now - (job.started_at or now)
    await runner.deliver_final(job, finals.success(runner.texts, job, elapsed=elapsed))
