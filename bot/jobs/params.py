"""A job spec as IMA parameters, and back: what the user asked for versus what IMA will use."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ima.models import ResolvedTask

from .model import Job, JobSpec


def overrides(spec: JobSpec) -> dict[str, Any]:
    """The user's settings as IMA parameter overrides (only what was said or preferred)."""
    out: dict[str, Any] = {}
    if spec.duration:
        out["duration"] = spec.duration
    if spec.aspect_ratio:
        out["aspect_ratio"] = spec.aspect_ratio
    if spec.resolution:
        out["resolution"] = spec.resolution
    return out


def effective_spec(job: Job, resolved: ResolvedTask) -> JobSpec:
    """The spec with the values IMA will really use, so every later message echoes the truth."""
    p = resolved.params
    return replace(
        job.spec,
        duration=_int(p.get("duration")) or job.spec.duration,
        aspect_ratio=_str(p.get("aspect_ratio")) or job.spec.aspect_ratio,
        resolution=(_str(p.get("resolution")) or job.spec.resolution or "").upper() or None,
    )


def _int(v: Any) -> int | None:
    try:
        return int(str(v).strip().rstrip("sS")) if v not in (None, "") else None
    except ValueError:
        return None


def _str(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None
