"""The IMA Open API client for Ima Sevio 1.0 video generation (public surface only)."""

from __future__ import annotations

from ._transport import Timeouts, decode_envelope
from .aliases import ALLOWED_MODELS, normalize_model_id
from .client import DEFAULT_BASE_URL, DEFAULT_UPLOAD_BASE_URL, ImaClient
from .errors import (
    AttributeMismatch,
    AuthError,
    CreateOutcomeUnknown,
    CreditMismatch,
    ImaApiError,
    ImaError,
    ImaTransportError,
    ImaUsageError,
    InsufficientCredits,
    ModelNotAllowed,
    ModelNotFound,
    NoMatchingRule,
    ServerError,
    SubscriptionRequired,
    TaskFailed,
    TaskTimeout,
    UploadError,
)
from .explain import (
    COMBINATION_NOT_OFFERED,
    OTHER_MODEL_OFFERS,
    VALUE_ADJUSTED,
    VALUE_CHANGED,
    VALUE_NOT_OFFERED,
    VALUE_NOT_OFFERED_WITH,
    VALUE_UNKNOWN_DROPPED,
)
from .models import (
    CreatedTask,
    CreditRule,
    Media,
    ModelId,
    Note,
    Product,
    ResolvedTask,
    Snapshot,
    Task,
    TaskState,
    TaskType,
)
from .polling import progress_percent
from .reflection import REFLECTION_COMPLETED, REFLECTION_DEGRADED, REFLECTION_RESELECTED

NOTE_KEYS = (
    VALUE_ADJUSTED,
    VALUE_UNKNOWN_DROPPED,
    VALUE_NOT_OFFERED,
    VALUE_NOT_OFFERED_WITH,
    COMBINATION_NOT_OFFERED,
    VALUE_CHANGED,
    OTHER_MODEL_OFFERS,
    REFLECTION_DEGRADED,
    REFLECTION_COMPLETED,
    REFLECTION_RESELECTED,
)

__all__ = [
    "ALLOWED_MODELS",
    "DEFAULT_BASE_URL",
    "DEFAULT_UPLOAD_BASE_URL",
    "NOTE_KEYS",
    "AttributeMismatch",
    "AuthError",
    "CreateOutcomeUnknown",
    "CreatedTask",
    "CreditMismatch",
    "CreditRule",
    "ImaApiError",
    "ImaClient",
    "ImaError",
    "ImaTransportError",
    "ImaUsageError",
    "InsufficientCredits",
    "Media",
    "ModelId",
    "ModelNotAllowed",
    "ModelNotFound",
    "NoMatchingRule",
    "Note",
    "Product",
    "ResolvedTask",
    "ServerError",
    "Snapshot",
    "SubscriptionRequired",
    "Task",
    "TaskFailed",
    "TaskState",
    "TaskTimeout",
    "TaskType",
    "Timeouts",
    "UploadError",
    "decode_envelope",
    "normalize_model_id",
    "progress_percent",
]
