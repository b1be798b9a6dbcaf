"""Value types of the IMA Open API: task types, the two allowed models, products, rules, tasks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TaskType(StrEnum):
    TEXT_TO_VIDEO = "text_to_video"
    IMAGE_TO_VIDEO = "image_to_video"
    FIRST_LAST_FRAME_TO_VIDEO = "first_last_frame_to_video"
    REFERENCE_IMAGE_TO_VIDEO = "reference_image_to_video"


class ModelId(StrEnum):
    PRO = "ima-pro"
    FAST = "ima-pro-fast"

    @property
    def display_name(self) -> str:
        """The user-facing Sevio name."""
        return DISPLAY_NAMES[self]

    @property
    def other(self) -> ModelId:
        """The seed's fallback partner: Pro <-> Fast."""
        return ModelId.FAST if self is ModelId.PRO else ModelId.PRO


DISPLAY_NAMES: Mapping[ModelId, str] = {
    ModelId.PRO: "Ima Sevio 1.0",
    ModelId.FAST: "Ima Sevio 1.0-Fast",
}

DEFAULT_MODEL = ModelId.FAST

# The seed's fixed estimates (seconds) before enough history exists.
ESTIMATED_SECONDS: Mapping[ModelId, tuple[int, int]] = {
    ModelId.PRO: (120, 300),
    ModelId.FAST: (60, 120),
}

POLL_INTERVAL_S = 8.0
MAX_WAIT_S = 2400.0

RECORDS_URL = "https://www.imastudio.com/ai-creation/text-to-video"
API_KEY_URL = "https://www.imaclaw.ai/imaclaw/apikey"
SUBSCRIPTION_URL = "https://www.imaclaw.ai/imaclaw/subscription"

MEDIA_TASK_TYPES = frozenset(
    {TaskType.IMAGE_TO_VIDEO, TaskType.FIRST_LAST_FRAME_TO_VIDEO, TaskType.REFERENCE_IMAGE_TO_VIDEO}
)


@dataclass(frozen=True)
class CreditRule:
    attribute_id: int
    points: int
    attributes: Mapping[str, Any]

    @property
    def is_default(self) -> bool:
        """True for the `{"default": "enabled"}` fallback marker rule."""
        return str(self.attributes.get("default", "")).strip().lower() == "enabled"

    @property
    def conditions(self) -> Mapping[str, Any]:
        """The attributes without the default marker: the real parameter conditions."""
        return {k: v for k, v in self.attributes.items() if k.strip().lower() != "default"}


@dataclass(frozen=True)
class Product:
    """A version leaf (`type == "3"`) of the product tree."""

    id: str
    model_id: str
    name: str
    credit_rules: tuple[CreditRule, ...]
    form_config: tuple[Mapping[str, Any], ...]
    category: str = ""


class TaskState(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DELETED = "deleted"


@dataclass(frozen=True)
class Media:
    resource_status: int
    status: str
    url: str
    cover_url: str
    error: str
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Task:
    """One read of `tasks/detail`; `state` follows the contract's rules."""

    id: str
    medias: tuple[Media, ...]
    state: TaskState
    error: str = ""

    @property
    def url(self) -> str:
        return self.medias[0].url if self.medias else ""

    @property
    def cover_url(self) -> str:
        return self.medias[0].cover_url if self.medias else ""


@dataclass(frozen=True)
class Note:
    """Something the caller can show the user: a key plus its parameters (texts live with the caller)."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedTask:
    """Everything needed to send one create: the leaf, the rule and the inner parameters."""

    task_type: TaskType
    model_id: ModelId
    product: Product
    rule: CreditRule
    params: Mapping[str, Any]
    notes: tuple[Note, ...] = ()

    @property
    def credit(self) -> int:
        return self.rule.points


@dataclass(frozen=True)
class CreatedTask:
    task_id: str
    resolved: ResolvedTask
    attempts: int
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """One poll result as `watch()` yields it."""

    task: Task
    elapsed: float
    percent: int
