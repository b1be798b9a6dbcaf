"""A job spec as IMA parameters, and back: what the user asked for versus what IMA will use."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ima.catalog import same_value
from ima.models import ResolvedTask

from .model import Job, JobSpec

FIELDS = ("duration", "aspect_ratio", "resolution")


def _values(spec: JobSpec) -> dict[str, Any]:
    return {f: getattr(spec, f) for f in FIELDS if getattr(spec, f)}


def said(spec: JobSpec) -> dict[str, Any]:
    """The values the message itself said, as IMA parameter overrides (`ima.params.resolve`'s `said`)."""
    return {f: v for f, v in _values(spec).items() if f in spec.said}


def preferred(spec: JobSpec) -> dict[str, Any]:
    """The values that came from the user's, the chat's or the config's defaults (below anything said)."""
    return {f: v for f, v in _values(spec).items() if f not in spec.said}


def overrides(spec: JobSpec) -> dict[str, Any]:
    """Every value of the spec, said or preferred (for callers that do not tell them apart)."""
    return _values(spec)


def effective_spec(job: Job, resolved: ResolvedTask) -> JobSpec:
    """The spec with the values IMA will really use, so every later message echoes the truth. The values
    asked but changed are kept in `asked` (the first time only), so "run it on the other model" asks
    the other model for them again."""
    p = resolved.params
    spec = job.spec
    used = {
        "duration": _int(p.get("duration")) or spec.duration,
        "aspect_ratio": _str(p.get("aspect_ratio")) or spec.aspect_ratio,
        "resolution": (_str(p.get("resolution")) or spec.resolution or "").upper() or None,
    }
    changed = tuple(
        (f, getattr(spec, f))
        for f in FIELDS
        if getattr(spec, f) is not None and not same_value(getattr(spec, f), used[f])
    )
    return replace(spec, **used, asked=spec.asked or changed)


def _int(v: Any) -> int | None:
    try:
        return int(str(v).strip().rstrip("sS")) if v not in (None, "") else None
    except ValueError:
        return None


def _str(v: Any) -> str | None:
    return str(v) if v not in (None, "") else None
