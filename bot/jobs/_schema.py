"""The job store's records: its error tree, preferences and their priority, and pure Job <-> row converters.

StoreError               the store failed or refused (.job_id when it is about one job)
├── JobNotFound          no job with that id
├── InvalidTransition    TRANSITIONS forbids .current -> .target
├── DuplicateJob         a job with that id is stored already
├── LeaseLost            a guarded write by .owner, but the job is .holder's now (None: released)
└── SchemaTooNew         the database was written by a newer release (.found, .supported)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from bot.core import Origin
from ima.models import DEFAULT_MODEL, ModelId, TaskType

from .model import Job, JobSpec, JobState


class StoreError(Exception):
    def __init__(self, message: str, *, job_id: str = "") -> None:
        super().__init__(message)
        self.job_id = job_id


class JobNotFound(StoreError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}", job_id=job_id)


class InvalidTransition(StoreError):
    def __init__(self, job_id: str, current: JobState, target: JobState) -> None:
        super().__init__(f"job {job_id!r}: {current} -> {target} is not allowed", job_id=job_id)
        self.current = current
        self.target = target


class DuplicateJob(StoreError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} is stored already", job_id=job_id)


class LeaseLost(StoreError):
    def __init__(self, job_id: str, owner: str, holder: str | None) -> None:
        super().__init__(
            f"job {job_id!r}: {owner!r} no longer holds it ({'held by ' + repr(holder) if holder else 'released'})",
            job_id=job_id,
        )
        self.owner = owner
        self.holder = holder


class SchemaTooNew(StoreError):
    def __init__(self, found: int, supported: int) -> None:
        super().__init__(f"database schema version {found} is newer than this code's {supported}")
        self.found = found
        self.supported = supported


# ---- jobs <-> rows -------------------------------------------------------------------------------

JOB_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Job))
# Fields update_job / transition may set (state changes go through transition's check only).
MUTABLE_FIELDS = frozenset(JOB_FIELDS) - {"id", "state"}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def origin_to_dict(origin: Origin) -> dict[str, Any]:
    """Returns origin as a JSON-ready dict (extra included)."""
    return {
        "platform": origin.platform,
        "chat_id": origin.chat_id,
        "user_id": origin.user_id,
        "message_id": origin.message_id,
        "guild_id": origin.guild_id,
        "is_direct": origin.is_direct,
        "extra": dict(origin.extra),
    }


def origin_from_dict(d: Mapping[str, Any]) -> Origin:
    """Returns the Origin origin_to_dict wrote."""
    return Origin(
        platform=d["platform"],
        chat_id=d["chat_id"],
        user_id=d["user_id"],
        message_id=d.get("message_id", ""),
        guild_id=d.get("guild_id", ""),
        is_direct=bool(d.get("is_direct", False)),
        extra=dict(d.get("extra") or {}),
    )


def encode_field(name: str, value: Any) -> Any:
    """Returns the column value for one Job field; raises TypeError for a value JSON cannot hold."""
    if name == "origin":
        return _dumps(origin_to_dict(value))
    if name == "spec":
        return _dumps(value.to_dict())
    if name == "input_urls":
        return _dumps(list(value))
    if name == "extra":
        return _dumps(dict(value))
    if name == "state":
        return JobState(value).value
    return value


def decode_field(name: str, value: Any) -> Any:
    """Returns the Job field value for one column value."""
    if name == "origin":
        return origin_from_dict(json.loads(value))
    if name == "spec":
        return JobSpec.from_dict(json.loads(value))
    if name == "input_urls":
        return tuple(json.loads(value))
    if name == "extra":
        return json.loads(value)
    if name == "state":
        return JobState(value)
    return value


def job_to_row(job: Job) -> dict[str, Any]:
    """Returns {column: value} for every Job field."""
    return {name: encode_field(name, getattr(job, name)) for name in JOB_FIELDS}


def job_from_row(row: Mapping[str, Any]) -> Job:
    """Returns the Job a row holds (row: sqlite3.Row or a dict keyed by column)."""
    return Job(**{name: decode_field(name, row[name]) for name in JOB_FIELDS})


def check_fields(changes: Mapping[str, Any]) -> None:
    """Raises TypeError unless every key is a Job field that may change after insertion."""
    bad = sorted(set(changes) - MUTABLE_FIELDS)
    if bad:
        raise TypeError(f"cannot set job field(s) {bad}; allowed: {sorted(MUTABLE_FIELDS)}")


# ---- preferences ---------------------------------------------------------------------------------

PREF_FIELDS = ("aspect_ratio", "duration", "resolution", "locale")


@dataclass(frozen=True)
class UserPrefs:
    """Defaults of one layer (message, user, chat, config); None means "this layer does not say"."""

    models: Mapping[TaskType, ModelId] = field(default_factory=dict)
    aspect_ratio: str | None = None
    duration: int | None = None
    resolution: str | None = None
    locale: str | None = None

    def model_for(self, task_type: TaskType) -> ModelId | None:
        """Returns this layer's model for task_type, or None."""
        return self.models.get(task_type)

    def merged(self, **changes: Any) -> UserPrefs:
        """Returns a copy with changes applied: None clears a field, `models` merges per task type
        (a None model clears that task type, models=None clears them all). Raises TypeError for an unknown field, ValueError for a
        bad value."""
        unknown = sorted(set(changes) - {"models", *PREF_FIELDS})
        if unknown:
            raise TypeError(f"unknown preference(s) {unknown}")
        values: dict[str, Any] = {name: getattr(self, name) for name in PREF_FIELDS}
        for name in PREF_FIELDS:
            if name in changes:
                values[name] = _check_pref(name, changes[name])
        models = dict(self.models) if changes.get("models", {}) is not None else {}
        for task, model in dict(changes.get("models") or {}).items():
            if model is None:
                models.pop(TaskType(task), None)
            else:
                models[TaskType(task)] = ModelId(model)
        return UserPrefs(models=models, **values)


def _check_pref(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "duration":
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"duration must be a positive int, not {value!r}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, not {value!r}")
    return value.strip()


def prefs_from_row(row: Mapping[str, Any] | None) -> UserPrefs:
    """Returns the prefs a preferences row holds (empty for None). Entries naming a task type or model
    this release does not know are skipped, so an old row never breaks a user."""
    if row is None:
        return UserPrefs()
    models: dict[TaskType, ModelId] = {}
    for task, model in json.loads(row["models"] or "{}").items():
        try:
            models[TaskType(task)] = ModelId(model)
        except ValueError:
            continue
    return UserPrefs(models=models, **{name: row[name] for name in PREF_FIELDS})


def prefs_to_row(prefs: UserPrefs) -> dict[str, Any]:
    """Returns {column: value} for a preferences row (without scope, owner, updated_at)."""
    models = {t.value: m.value for t, m in prefs.models.items()}
    return {"models": _dumps(models), **{name: getattr(prefs, name) for name in PREF_FIELDS}}


@dataclass(frozen=True)
class ResolvedPrefs:
    """The values a job will use; sources names the layer each came from."""

    model_id: ModelId
    aspect_ratio: str | None
    duration: int | None
    resolution: str | None
    locale: str | None
    sources: Mapping[str, str]  # field -> "said" | "user" | "chat" | "config" | "default" | "unset"


def resolve_preferences(
    task_type: TaskType,
    said: UserPrefs,
    user: UserPrefs,
    chat: UserPrefs,
    config: UserPrefs,
    *,
    default_model: ModelId = DEFAULT_MODEL,
) -> ResolvedPrefs:
    """Returns each value from the first layer that sets it: said in the message > user preference >
    chat default > config default. The model falls back to default_model; other fields stay None
    (the catalog's form default applies). Pure; raises nothing."""
    layers = (("said", said), ("user", user), ("chat", chat), ("config", config))
    sources: dict[str, str] = {}
    model = next(((n, p.model_for(task_type)) for n, p in layers if p.model_for(task_type)), None)
    sources["model_id"] = model[0] if model else "default"
    values: dict[str, Any] = {}
    for name in PREF_FIELDS:
        hit = next(((n, getattr(p, name)) for n, p in layers if getattr(p, name) is not None), None)
        values[name] = hit[1] if hit else None
        sources[name] = hit[0] if hit else "unset"
    return ResolvedPrefs(model_id=model[1] if model else default_model, sources=sources, **values)
