"""Pure builders: job state + texts → the Notice the user sees at each step of the seed's protocol."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.core import Action, Button, ButtonStyle, Notice, NoticeKind
from ima.models import API_KEY_URL, RECORDS_URL, SUBSCRIPTION_URL, ModelId, Note

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
        full = key if "." in key else f"resolve.{key}"
        if texts.has(full):
            try:
                out.append("ℹ️ " + texts(full, locale, **params))
            except (KeyError, IndexError):
                continue
    return out


def _prompt_line(texts: Texts, job: Job) -> list[str]:
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
    lines = [texts("prenotice.understood", loc, summary=summary(texts, job)), *_prompt_line(texts, job)]
    if job.spec.attachments:
        roles = [texts(f"role.{a.role or 'reference'}", loc) for a in job.spec.attachments]
        lines.append(texts("prenotice.images", loc, roles=" + ".join(roles)))
    lines += render_notes(texts, job.spec.notes, loc)
    lines += render_notes(texts, notes, loc)
    rng = format_range(est.low, est.high, loc)
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
        buttons=(cancel_button(texts, job),),
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
        (texts("prenotice.understood", loc, summary=summary(texts, job)), *_prompt_line(texts, job)),
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
            elapsed=format_duration(elapsed, loc),
            range=format_range(est.low, est.high, loc),
        ),
        texts("prenotice.understood", loc, summary=summary(texts, job)),
        *_prompt_line(texts, job),
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
        title = texts("progress.done", loc, elapsed=format_duration(elapsed, loc))
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


def _retry_buttons(texts: Texts, job: Job) -> tuple[Button, ...]:
    other = job.spec.model_id.other
    return (
        Button(texts("button.retry", job.locale), Action.RETRY, job.id, style=ButtonStyle.PRIMARY),
        Button(
            texts("button.other_model", job.locale, model=model_name(texts, other, job.locale)),
            Action.OTHER_MODEL,
            job.id,
        ),
    )


def success(texts: Texts, job: Job, *, elapsed: float) -> Notice:
    loc = job.locale
    lines = [
        texts("success.video", loc, url=job.result_url),
        texts(
            "success.details",
            loc,
            model=model_name(texts, job.spec.model_id, loc),
            summary=summary(texts, job),
            elapsed=format_duration(elapsed, loc),
            credit=job.credit or 0,
        ),
        *_prompt_line(texts, job),
    ]
    buttons = (
        Button(texts("button.open_video", loc), url=job.result_url, style=ButtonStyle.LINK),
        *_retry_buttons(texts, job),
    )
    return Notice(
        NoticeKind.SUCCESS,
        texts("success.title", loc),
        tuple(lines),
        progress=100,
        buttons=buttons,
        video_url=job.result_url,
        cover_url=job.cover_url,
        locale=loc,
        job_id=job.id,
        mention_user_id=job.origin.user_id,
    )


# Error key → (reason text key, hint text key, link button) for the failure message.
_LINKS = {
    "auth": ("button.api_key", API_KEY_URL),
    "insufficient_credits": ("button.subscription", SUBSCRIPTION_URL),
    "subscription_required": ("button.subscription", SUBSCRIPTION_URL),
    "create_unknown": ("button.records", RECORDS_URL),
}
_HINTS = {
    "auth": "error.auth_hint",
    "insufficient_credits": "error.insufficient_credits_hint",
    "subscription_required": "error.subscription_required_hint",
    "transport": "error.retry_later_hint",
    "server_error": "error.settings_hint",
    "no_matching_rule": "error.settings_hint",
    "attribute_mismatch": "error.settings_hint",
}
# Failures that happen before IMA accepted a task: nothing was charged.
_NOT_CHARGED = {
    "auth",
    "insufficient_credits",
    "subscription_required",
    "credit_mismatch",
    "no_matching_rule",
    "attribute_mismatch",
    "server_error",
    "transport",
    "upload",
    "usage",
    "model_not_found",
    "api",
    "attachment_not_image",
    "attachment_too_large",
    "attachment_download_failed",
}


def failure(texts: Texts, job: Job) -> Notice:
    loc, key = job.locale, job.error_key or "internal"
    other = model_name(texts, job.spec.model_id.other, loc)
    params = {
        "detail": job.error_detail or "?",
        "code": job.error_code or "?",
        "model": other,
        **job.extra.get("error_params", {}),
    }
    reason_key = f"error.{key}" if texts.has(f"error.{key}") else "error.internal"
    lines = [
        texts("failure.reason", loc, reason=texts(reason_key, loc, **params)),
        texts("failure.hint", loc, hint=texts(_HINTS.get(key, "error.generic_hint"), loc, model=other)),
    ]
    if key in _NOT_CHARGED:
        lines.append(texts("failure.credits_safe", loc))
    lines += _prompt_line(texts, job)
    buttons: tuple[Button, ...] = ()
    if key in _LINKS:
        label, url = _LINKS[key]
        buttons += (Button(texts(label, loc), url=url, style=ButtonStyle.LINK),)
    if key not in ("auth",):
        buttons += _retry_buttons(texts, job)
    return Notice(
        NoticeKind.FAILURE,
        texts("failure.title", loc),
        tuple(lines),
        buttons=buttons,
        locale=loc,
        job_id=job.id,
        mention_user_id=job.origin.user_id,
    )


def timed_out(texts: Texts, job: Job, *, minutes: int) -> Notice:
    loc = job.locale
    buttons = (
        Button(texts("button.records", loc), url=RECORDS_URL, style=ButtonStyle.LINK),
        *_retry_buttons(texts, job),
    )
    return Notice(
        NoticeKind.FAILURE,
        texts("timeout.title", loc, minutes=minutes),
        (texts("timeout.body", loc), RECORDS_URL, *_prompt_line(texts, job)),
        buttons=buttons,
        locale=loc,
        job_id=job.id,
        mention_user_id=job.origin.user_id,
    )


def uncertain(texts: Texts, job: Job) -> Notice:
    loc = job.locale
    buttons = (
        Button(texts("button.records", loc), url=RECORDS_URL, style=ButtonStyle.LINK),
        Button(texts("button.retry", loc), Action.RETRY, job.id, style=ButtonStyle.PRIMARY),
    )
    return Notice(
        NoticeKind.FAILURE,
        texts("uncertain.title", loc),
        (texts("uncertain.body", loc), RECORDS_URL, *_prompt_line(texts, job)),
        buttons=buttons,
        locale=loc,
        job_id=job.id,
        mention_user_id=job.origin.user_id,
    )


def cancelled(texts: Texts, job: Job, *, was_running: bool) -> Notice:
    loc = job.locale
    lines = (texts("cancelled.running_note", loc),) if was_running else ()
    return Notice(
        NoticeKind.CANCELLED,
        texts("cancelled.title", loc),
        (*lines, *_prompt_line(texts, job)),
        buttons=_retry_buttons(texts, job)[:1],
        locale=loc,
        job_id=job.id,
    )


def error(texts: Texts, locale: str, key: str, **params: Any) -> Notice:
    """A refusal of bad input: a specific message in the user's language."""
    return Notice(NoticeKind.ERROR, texts(key, locale, **params), locale=locale)


def final_for(texts: Texts, job: Job, *, max_wait: float) -> Notice:
    """The final message for a job in a finished state (also used to re-deliver after a crash)."""
    elapsed = (job.finished_at - job.started_at) if job.finished_at and job.started_at else 0.0
    if job.state is JobState.SUCCEEDED:
        return success(texts, job, elapsed=elapsed)
    if job.state is JobState.UNCERTAIN:
        return uncertain(texts, job)
    if job.state is JobState.TIMED_OUT:
        return timed_out(texts, job, minutes=int(max_wait // 60))
    if job.state is JobState.CANCELLED:
        return cancelled(texts, job, was_running=bool(job.task_id))
    return failure(texts, job)
