"""A job input that is another job's last frame: the handle, and reading it at prepare time.

A continued shot stores `frame:last:<job id>` as its first-frame attachment. When the runner prepares the
job it downloads that job's result (size capped), decodes the last frame (in a worker thread) and uploads
the PNG like any attachment. Only the job id is stored, so a restart before the upload simply redoes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core import Attachment, AttachmentRejected
from ima.errors import ImaTransportError

from .model import JobState

if TYPE_CHECKING:
    from .runner import JobRunner

PREFIX = "frame:last:"
FILENAME = "last_frame.png"
MAX_VIDEO_BYTES = 200 * 1024 * 1024  # a 10 s 1080p result is tens of MB; the cap stops a runaway download


def last_frame_of(job_id: str) -> Attachment:
    """The first-frame attachment that stands for job_id's last frame."""
    return Attachment(handle=PREFIX + job_id, filename=FILENAME, content_type="image/png", role="first")


def source_of(att: Attachment) -> str:
    """The job id a last-frame attachment stands for, "" for an ordinary attachment."""
    return att.handle[len(PREFIX) :] if att.handle.startswith(PREFIX) else ""


async def read_last_frame(runner: JobRunner, att: Attachment, *, max_bytes: int = MAX_VIDEO_BYTES) -> bytes:
    """PNG bytes of the last frame of the job att stands for.

    Raises AttachmentRejected (keys `shots_*`, shown as `error.shots_*`) when that job has no video any
    more, the download fails or passes max_bytes, or the file cannot be decoded.
    """
    from bot.media import MediaError, last_frame_png_async  # PyAV loads FFmpeg: only when a shot needs it

    source = await runner.store.get_job(source_of(att))
    if source is None or source.state is not JobState.SUCCEEDED or not source.result_url:
        raise AttachmentRejected("shots_source_gone")
    try:
        video = await runner.client.download(source.result_url, max_bytes=max_bytes)
    except ImaTransportError as exc:
        if exc.code == "too_large":
            raise AttachmentRejected("shots_source_too_large", limit_mb=max_bytes // 2**20) from None
        raise AttachmentRejected("shots_download_failed") from None
    try:
        return await last_frame_png_async(video)
    except MediaError as exc:
        raise AttachmentRejected(exc.key) from None
