"""One-tap variations of a result: the buttons under a success message and the spec each one makes.

Pure. A button carries only the job id and the action; `vary` derives the new spec from the stored job,
so a press works the same after any restart.
"""

from __future__ import annotations

from dataclasses import replace

from bot.core import Action, Button, ButtonStyle

from .model import Job, JobSpec
from .notices import model_name
from .texts import Texts

SHORT, LONG = 5, 10  # the 5 ↔ 10 s switch
PORTRAIT, LANDSCAPE = "9:16", "16:9"


def is_portrait(aspect_ratio: str | None) -> bool:
    """True for ratios taller than wide ("9:16", "3:4"); square and unknown count as not portrait."""
    try:
        w, h = (float(x) for x in (aspect_ratio or "").split(":"))
    except ValueError:
        return False
    return h > w


def vary(action: Action, spec: JobSpec) -> JobSpec:
    """The spec a variation button asks for. RETRY (same settings again) keeps the spec as it is."""
    if action is Action.OTHER_MODEL:
        return spec.with_model(spec.model_id.other)
    if action is Action.VARY_ASPECT:
        return replace(spec, aspect_ratio=LANDSCAPE if is_portrait(spec.aspect_ratio) else PORTRAIT)
    if action is Action.VARY_DURATION:
        return replace(spec, duration=SHORT if (spec.duration or SHORT) >= LONG else LONG)
    return spec


def note_for(action: Action, job: Job, new: JobSpec, texts: Texts) -> tuple[str, dict[str, str]]:
    """The pre-notice line that says what this job varies (a locale key and its params)."""
    loc = job.locale
    if action is Action.VARY_ASPECT:
        return "shots.note.aspect", {"job_id": job.id, "aspect_ratio": new.aspect_ratio or ""}
    if action is Action.VARY_DURATION:
        return "shots.note.duration", {"job_id": job.id, "seconds": str(new.duration or "")}
    if action is Action.OTHER_MODEL:
        return "shots.note.model", {"job_id": job.id, "model": model_name(texts, new.model_id, loc)}
    return "shots.note.again", {"job_id": job.id}


def success_buttons(texts: Texts, job: Job) -> tuple[Button, ...]:
    """Continue ▶, then the variations: same again, the other model, vertical/horizontal, 5/10 s."""
    loc, spec = job.locale, job.spec
    aspect = "horizontal" if is_portrait(spec.aspect_ratio) else "vertical"
    seconds = SHORT if (spec.duration or SHORT) >= LONG else LONG
    other = model_name(texts, spec.model_id.other, loc)
    return (
        Button(texts("shots.button.continue", loc), Action.CONTINUE, job.id, style=ButtonStyle.PRIMARY),
        Button(texts("shots.button.again", loc), Action.RETRY, job.id),
        Button(texts("button.other_model", loc, model=other), Action.OTHER_MODEL, job.id),
        Button(texts(f"shots.button.{aspect}", loc), Action.VARY_ASPECT, job.id),
        Button(texts("shots.button.seconds", loc, n=seconds), Action.VARY_DURATION, job.id),
    )
