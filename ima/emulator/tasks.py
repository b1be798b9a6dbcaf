"""Emulated tasks: a media state machine read off the emulator clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .config import CoverField, PendingStatus, Variants

ASSET_WIDTH = ASSET_HEIGHT = 64


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    DELETED = "deleted"
    STATUS_FAILED = "status_failed"
    NO_URL = "no_url"
    NEVER = "never"


class Phase(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    NO_URL = "no_url"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DELETED = "deleted"


@dataclass
class EmuTask:
    """One created task. `key` is the owner's API key: kept in memory only, never logged or listed."""

    id: str
    biz_id: str
    key: str = field(repr=False)
    task_type: str
    model_id: str
    model_version: str
    attribute_id: int
    points: int
    n: int
    prompt: str
    params: Mapping[str, Any]
    created: float
    seconds: float
    pending_seconds: float
    outcome: Outcome = Outcome.SUCCESS
    no_url_seconds: float = 0.0
    error_msg: str = ""
    created_ms: int = 0
    timeout_ms: int = 0

    @property
    def cost(self) -> int:
        return self.points * self.n

    def get_phase(self, now: float) -> Phase:
        """Where the task stands at emulator time `now`."""
        elapsed = now - self.created
        if elapsed < self.pending_seconds:
            return Phase.PENDING
        if self.outcome is Outcome.NEVER or elapsed < self.seconds:
            return Phase.PROCESSING
        if self.outcome is Outcome.NO_URL and elapsed < self.seconds + self.no_url_seconds:
            return Phase.NO_URL
        if self.outcome in (Outcome.FAILED, Outcome.STATUS_FAILED):
            return Phase.FAILED
        if self.outcome is Outcome.DELETED:
            return Phase.DELETED
        return Phase.SUCCEEDED

    def has_video(self, now: float) -> bool:
        """True once the CDN serves this task's video (success, or the 'failed with url' trap)."""
        phase = self.get_phase(now)
        return phase is Phase.SUCCEEDED or (phase is Phase.FAILED and self.outcome is Outcome.STATUS_FAILED)

    def get_detail(self, now: float, cdn_base: str, variants: Variants) -> dict[str, Any]:
        """The `data` of a tasks/detail answer at emulator time `now`."""
        medias = [self._media(i, now, cdn_base, variants) for i in range(self.n)]
        return {
            "id": self.id,
            "biz_id": self.biz_id,
            "task_type": self.task_type,
            "generate_count": self.n,
            "created_at": self.created_ms,
            "timeout_at": self.timeout_ms,
            "medias": medias,
        }

    def _media(self, index: int, now: float, cdn_base: str, variants: Variants) -> dict[str, Any]:
        phase = self.get_phase(now)
        pending: Any = None if variants.pending_resource_status is PendingStatus.NULL else ""
        status, resource_status, url, error = {
            Phase.PENDING: ("pending", pending, "", ""),
            Phase.PROCESSING: ("processing", 0, "", ""),
            Phase.NO_URL: ("success", 1, "", ""),
            Phase.SUCCEEDED: ("success", 1, self.video_url(cdn_base, index), ""),
            Phase.DELETED: ("deleted", 3, "", ""),
        }.get(phase, ("failed", 2, "", self.error_msg or "generation failed"))
        if phase is Phase.FAILED and self.outcome is Outcome.STATUS_FAILED:
            # The trap the contract warns about: resource_status 1 and a url, yet status "failed".
            resource_status, url = 1, self.video_url(cdn_base, index)
        cover = self.cover_url(cdn_base, index) if url else ""
        media: dict[str, Any] = {
            "id": f"{self.id}-{index}",
            "resource_status": resource_status,
            "status": status,
            "url": url,
            "duration_str": f"{self.duration_label}s",
            "format": "mp4",
            "width": ASSET_WIDTH,
            "height": ASSET_HEIGHT,
            "error_msg": error,
            "remark": error,
        }
        if variants.cover_field in (CoverField.COVER, CoverField.BOTH):
            media["cover"] = cover
        if variants.cover_field in (CoverField.COVER_URL, CoverField.BOTH):
            media["cover_url"] = cover
        return media

    @property
    def duration_label(self) -> str:
        raw = str(self.params.get("duration", 5)).strip().lower()
        return raw.removesuffix("s") or "5"

    def video_url(self, cdn_base: str, index: int) -> str:
        return f"{cdn_base}/cdn/results/{self.id}/{index}.mp4"

    def cover_url(self, cdn_base: str, index: int) -> str:
        return f"{cdn_base}/cdn/results/{self.id}/{index}.jpg"

    def to_json(self, now: float) -> dict[str, Any]:
        """The admin API's view: no key, the phase at `now`."""
        return {
            "id": self.id,
            "biz_id": self.biz_id,
            "task_type": self.task_type,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "attribute_id": self.attribute_id,
            "points": self.points,
            "n": self.n,
            "cost": self.cost,
            "prompt": self.prompt,
            "params": dict(self.params),
            "outcome": self.outcome.value,
            "phase": self.get_phase(now).value,
            "seconds": self.seconds,
            "elapsed": now - self.created,
        }
