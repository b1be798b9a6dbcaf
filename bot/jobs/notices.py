"""Pure builders: job state + texts → the Notice the user sees at each step of the seed's protocol."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.core import Action, Button, ButtonStyle, Notice, NoticeKind
from ima.models import ModelId, Note

from . import param_notes
from .model import Job, JobState
from .progress import Estimate, bar, format_duration, format_range
from .texts import Texts

_PROMPT_PREVIEW = 300


def model_name(texts: Texts, model: ModelId, locale: str) -> str:
    return texts(f"model.{model.value}", locale)


def summary(texts: Texts, job: Job) -> str:
    """`text → video · 10s · 9:16 · 720P`: what was understood, in the user's language."""
    spec, loc = job.spec, job.locale
    parts = [texts(f"task_type.{spec.task_type.value}", loc)]
    if spec.duration:
        parts.append(texts("unit.seconds", loc, n=spec.duration))
    if spec.aspect_ratio:
        parts.append(spec.aspect_ratio)
    if spec.resolution:
        parts.append(str(spec.resolution).upper())
    return " · ".join(parts)


def render_notes(texts: Texts, notes: Iterable[Note | tuple[str, dict[str, Any]]], locale: str) -> list[str]:
    """Texts for parser and resolver notes; a note whose key has no text is skipped (logged by callers)."""
    out = []
    for note in notes:
        key, params = (note.key, dict(note.params)) if isinstance(note, Note) else (note[0], dict(note[1]))
        for name in ("model", "requested_model", "kept_model"):
            if params.get(name) in ModelId._value2member_map_:
                params[name] = model_name(texts, ModelId(params[name]), locale)
        key, params = param_notes.prepare(texts, key, params, locale) or (key, params)
        full = key if "." in key else f"resolve.{key}"
        if texts.has(full):
            try:
                out.append("ℹ️ " + texts(full, locale, **params))
            except (KeyError, IndexError):
                continue
    return out


_CHANGE_TEXTS = (
    ("resolution", "delivery.change_resolution"),
    ("duration", "delivery.change_duration"),
    ("credit", "delivery.change_credit"),
)


def reflected_line(texts: Texts, job: Job) -> list[str]:
    """What IMA's reflection changed from what was admitted (resolution, duration, price), if anything."""
    changed = job.extra.get("reflected") or {}
    parts = [
        texts(key, job.locale, old=changed[name][0], new=changed[name][1])
        for name, key in _CHANGE_TEXTS
        if name in changed
    ]
    return [texts("delivery.reflected", job.locale, changes=", ".join(parts))] if parts else []


def prompt_line(texts: Texts, job: Job) -> list[str]:
    p = job.spec.prompt.strip()
    if not p:
        return []
    if len(p) > _PROMPT_PREVIEW:
        p = p[: _PROMPT_PREVIEW - 1] + "…"
    return [texts("prenotice.prompt", job.locale, prompt=p)]


def cancel_button(texts: Texts, job: Job) -> Button:
    return Button(texts("button.cancel", job.locale), Action.CANCEL, job.id, style=ButtonStyle.DANGER)


def prenotice(
    texts: Texts, job: Job, est: Estimate, *, credit: int | None, position: int, notes: Iterable[Note] = ()
) -> Notice:
    loc, model = job.locale, model_name(texts, job.spec.model_id, job.locale)
    notes = tuple(notes)  # read twice: the lines, and the other-model button (bot/jobs/param_notes.py)
    lines = [texts("prenotice.understood", loc, summary=summary(texts, job)), *prompt_line(texts, job)]
    if job.spec.attachments:
        roles = [texts(f"role.{a.role or 'reference'}", loc) for a in job.spec.attachments]
        lines.append(texts("prenotice.images", loc, roles=" + ".join(roles)))
    lines += render_notes(texts, job.spec.notes, loc)
    lines += render_notes(texts, notes, loc)
    rng = format_range(texts, est.low, est.high, loc)
    lines.append(
        texts("prenotice.estimate_history", loc, range=rng, samples=est.samples)
        if est.from_history
        else texts("prenotice.estimate", loc, range=rng)
    )
    if credit is not None:
        lines.append(texts("prenotice.credits", loc, credit=credit))
    lines.append(
        texts("prenotice.queue", loc, position=position) if position > 0 else texts("prenotice.starting", loc)
    )
    return Notice(
        NoticeKind.PRENOTICE,
        texts("prenotice.title", loc, model=model),
        tuple(lines),
        progress=0,
        buttons=(*param_notes.other_model_buttons(texts, job.id, loc, notes), cancel_button(texts, job)),
        locale=loc,
        job_id=job.id,
    )


def stage(texts: Texts, job: Job, key: str) -> Notice:
    """A short in-place status while preparing or creating."""
    loc = job.locale
    model = model_name(texts, job.spec.model_id, loc)
    return Notice(
        NoticeKind.PROGRESS,
        texts(key, loc, model=model),
        (texts("prenotice.understood", loc, summary=summary(texts, job)), *prompt_line(texts, job)),
        progress=0,
        buttons=(cancel_button(texts, job),),
        locale=loc,
        job_id=job.id,
    )


def progress(
    texts: Texts, job: Job, *, elapsed: float, pct: int, est: Estimate, resumed: bool = False
) -> Notice:
    loc = job.locale
    model = model_name(texts, job.spec.model_id, loc)
    lines = [
        texts("progress.percent", loc, bar=bar(pct), percent=pct),
        texts(
            "progress.elapsed",
            loc,
            elapsed=format_duration(texts, elapsed, loc),
            range=format_range(texts, est.low, est.high, loc),
        ),
        texts("prenotice.understood", loc, summary=summary(texts, job)),
        *reflected_line(texts, job),
        *prompt_line(texts, job),
    ]
    if resumed:
        lines.append(texts("progress.resumed", loc))
    return Notice(
        NoticeKind.PROGRESS,
        texts("progress.title", loc, model=model),
        tuple(lines),
        progress=pct,
        buttons=(cancel_button(texts, job),),
        locale=loc,
        job_id=job.id,
    )


def closed(texts: Texts, job: Job, *, elapsed: float | None) -> Notice:
    """What the progress message becomes once the final message is posted below it."""
    loc = job.locale
    if job.state is JobState.SUCCEEDED and elapsed is not None:
        title = texts("progress.done", loc, elapsed=format_duration(texts, elapsed, loc))
        pct = 100
    else:
        title = texts("progress.ended", loc, state=texts(f"state.{job.state.value}", loc))
        pct = None
    return Notice(
        NoticeKind.PROGRESS,
        title,
        (texts("prenotice.understood", loc, summary=summary(texts, job)),),
        progress=pct,
        locale=loc,
        job_id=job.id,
    )


def error(texts: Texts, locale: str, key: str, **params: Any) -> Notice:
    """A refusal of bad input: a specific message in the user's language."""
    return Notice(NoticeKind.ERROR, texts(key, locale, **params), locale=locale)
