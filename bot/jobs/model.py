"""Jobs: the spec a message became, the state machine, and the record the store keeps."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bot.core import Attachment, Origin
from ima.models import ModelId, TaskType


class JobState(StrEnum):
    # A thin prompt awaiting the user's Generate press (bot/intake.py): never run, never resumed; the
    # press moves it to QUEUED.
    DRAFT = "draft"
    QUEUED = "queued"  # recorded, waiting for a slot
    PREPARING = "preparing"  # downloading/uploading images, resolving the product
    CREATING = "creating"  # the create request may be on the wire: outcome unknown after a crash
    RUNNING = "running"  # task id known, polling
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    UNCERTAIN = "uncertain"  # create may or may not have reached IMA; the user decides (retry button)

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT, JobState.UNCERTAIN}
)

# Allowed transitions; the store refuses anything else so a state change can never be lost silently.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.DRAFT: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    JobState.QUEUED: frozenset({JobState.PREPARING, JobState.CANCELLED, JobState.FAILED}),
    JobState.PREPARING: frozenset({JobState.CREATING, JobState.QUEUED, JobState.FAILED, JobState.CANCELLED}),
    JobState.CREATING: frozenset(
        {JobState.RUNNING, JobState.FAILED, JobState.UNCERTAIN, JobState.CANCELLED, JobState.PREPARING}
    ),
    JobState.RUNNING: frozenset(
        {JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.TIMED_OUT: frozenset(),
    JobState.UNCERTAIN: frozenset({JobState.CANCELLED}),
}


@dataclass(frozen=True)
class JobSpec:
    """What to generate, after parsing and preferences (values may still be unsupported: the resolver
    picks the nearest offered value and says so)."""

    task_type: TaskType
    model_id: ModelId
    prompt: str
    duration: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    attachments: tuple[Attachment, ...] = ()  # in role order: first frame, last frame / references
    notes: tuple[tuple[str, dict[str, Any]], ...] = ()  # (locale key, params) from the parser
    said: tuple[str, ...] = ()  # the fields the message itself said (the rest came from preferences)
    asked: tuple[tuple[str, Any], ...] = ()  # (field, value) asked but changed to fit the model

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_type": self.task_type.value,
            "model_id": self.model_id.value,
            "prompt": self.prompt,
            "duration": self.duration,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "attachments": [
                {
                    "handle": a.handle,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "role": a.role,
                }
                for a in self.attachments
            ],
            "notes": [[k, dict(p)] for k, p in self.notes],
            "said": list(self.said),
            "asked": [[k, v] for k, v in self.asked],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        return cls(
            task_type=TaskType(d["task_type"]),
            model_id=ModelId(d["model_id"]),
            prompt=d.get("prompt", ""),
            duration=d.get("duration"),
            aspect_ratio=d.get("aspect_ratio"),
            resolution=d.get("resolution"),
            attachments=tuple(Attachment(**a) for a in d.get("attachments", [])),
            notes=tuple((k, dict(p)) for k, p in d.get("notes", [])),
            said=tuple(d.get("said", ())),
            asked=tuple((k, v) for k, v in d.get("asked", ())),
        )

    def with_model(self, model_id: ModelId) -> JobSpec:
        """This spec on another model, with the values that were asked (the other model may offer them)."""
        return replace(self, model_id=model_id, **dict(self.asked), asked=())


@dataclass(frozen=True)
class Job:
    id: str
    user_key: str  # "platform:user_id": the scheduler's and the budget's unit
    origin: Origin
    spec: JobSpec
    locale: str
    state: JobState = JobState.QUEUED
    created_at: float = 0.0  # wall-clock epoch seconds
    started_at: float | None = None  # when the IMA task was created (elapsed counts from here)
    finished_at: float | None = None
    task_id: str = ""
    notice_ref: str = ""  # the message that shows pre-notice / progress, edited in place
    result_ref: str = ""  # the final message
    input_urls: tuple[str, ...] = ()  # uploaded image URLs (so a resume never re-uploads)
    credit: int | None = None
    result_url: str = ""
    cover_url: str = ""
    error_key: str = ""  # a locale key (ImaError.key / BotError.key)
    error_code: str = ""
    error_detail: str = ""  # for logs and the operator, never a secret
    retry_of: str = ""  # the job this one retries
    trace_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # resolution notes, attempts, estimates…

    @property
    def finished(self) -> bool:
        return self.state.finished
