"""Shots that continue each other (issue 14), dispatcher side: the Continue ▶ button, "continue" in a reply
to a result, and the one-tap variation buttons. Each makes a new job from the stored one, so a press works
the same after any restart.

A continued shot is image-to-video whose first frame is `frame:last:<job id>` (bot/jobs/frames.py): the
runner downloads the result, takes its last frame and uploads it when it prepares the job, so the
dispatcher stays fast and a crash before the upload simply redoes it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import TYPE_CHECKING

from bot.core import Action, ActionIntent, Button, ButtonStyle, GenerationIntent, Notice, Origin
from bot.jobs import notices
from bot.jobs.frames import last_frame_of
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.scheduler import budget_day_start
from bot.jobs.variations import note_for, vary
from bot.parsing import parse
from ima.errors import ImaError
from ima.models import TaskType

if TYPE_CHECKING:
    from bot.dispatch import Dispatcher

log = logging.getLogger("imabot.shots")

# Buttons this module answers (Retry and the other model stay with the dispatcher's own code).
ACTIONS = frozenset({Action.CONTINUE, Action.VARY_ASPECT, Action.VARY_DURATION})

# 续 / 继续 / 接着 / continue / next shot, at the start of a reply ("继续，他跳进水里", "continue: …").
_CONTINUE = re.compile(
    r"^\s*(?:(?:continue|carry\s+on|keep\s+going|next\s+shot)\b|继续|接着|续拍|续写|续)"
    r"[\s,，:：.。!！、;；-]*",
    re.IGNORECASE,
)


def continue_words(text: str) -> str | None:
    """The rest of text (the next shot's prompt, maybe "") when it starts with a continue word, else None."""
    m = _CONTINUE.match(text or "")
    return None if m is None else text[m.end() :].strip()


async def on_button(d: Dispatcher, intent: ActionIntent, job: Job) -> Notice | None:
    """Continue ▶ or a variation of `job`; the caller checked ownership and limits. Continue's prompt is
    what the user typed into the form the press opened (intent.text; "" keeps the job's prompt)."""
    if intent.action is Action.CONTINUE:
        return await start_continue(d, job, origin=job.origin, prompt=intent.text, event_keys=())
    spec = vary(intent.action, job.spec)
    note = note_for(intent.action, job, spec, d.texts)
    return await _start(
        d,
        job,
        replace(spec, notes=(note,)),
        origin=job.origin,
        locale=job.locale,
        input_urls=job.input_urls,
        event_keys=(),
        what=intent.action.value,
    )


def is_continue(intent: GenerationIntent) -> bool:
    """Whether a reply (without images of its own) starts with a continue word."""
    return not intent.attachments and continue_words(intent.text) is not None


async def continue_reply(d: Dispatcher, intent: GenerationIntent, job: Job) -> Notice | None:
    """The next shot after `job` for a reply that `is_continue`: the reply's words are its prompt (and may
    change settings); returns the answer (None when there is nothing to say)."""
    locale = await d.locale_for(intent, intent.text)
    refusal = await d._check(intent, locale)
    if refusal is not None:
        return refusal if await d._claim(intent.event_keys) else None
    rest = continue_words(intent.text) or ""
    return await start_continue(
        d,
        job,
        origin=intent.origin,
        prompt=rest,
        event_keys=intent.event_keys,
        locale=locale,
        options=dict(intent.options),
    )


async def start_continue(
    d: Dispatcher,
    job: Job,
    *,
    origin: Origin,
    prompt: str,
    event_keys: tuple[str, ...],
    locale: str | None = None,
    options: dict[str, str] | None = None,
) -> Notice | None:
    """Queues the shot after `job`: image-to-video from its last frame, same model and settings, with
    `prompt` (settings said in it win; empty keeps the job's prompt). Refuses a job without a video."""
    locale = locale or job.locale
    if job.state is not JobState.SUCCEEDED or not job.result_url:
        if not await d._claim(event_keys):
            return None
        return notices.error(d.texts, locale, "shots.continue_not_ready", job_id=job.id)
    spec = continued_spec(job, prompt, options or {})
    spec = replace(spec, notes=(("shots.note.continue", {"job_id": job.id}),))
    return await _start(
        d, job, spec, origin=origin, locale=locale, input_urls=(), event_keys=event_keys, what="continue"
    )


def continued_spec(job: Job, prompt: str, options: dict[str, str]) -> JobSpec:
    """The next shot's spec (pure): image-to-video from job's last frame with job's model and settings,
    overridden by what `prompt` says; an empty prompt keeps job's prompt."""
    spec = job.spec
    parsed = parse(prompt, 1, options=options) if prompt else None
    said = {
        "model_id": parsed.model_id if parsed else None,
        "duration": parsed.duration if parsed else None,
        "aspect_ratio": parsed.aspect_ratio if parsed else None,
        "resolution": parsed.resolution if parsed else None,
    }
    return replace(
        spec,
        task_type=TaskType.IMAGE_TO_VIDEO,
        prompt=(parsed.prompt if parsed and parsed.prompt else spec.prompt),
        attachments=(last_frame_of(job.id),),
        **{k: v for k, v in said.items() if v is not None},
    )


async def credit_of(d: Dispatcher, job: Job) -> int | None:
    """What `job` would cost (the catalog's rule; no task is created), None when the catalog is silent."""
    try:
        resolved, _ = await d.runner.preview(job)
    except ImaError as exc:
        log.info("job=%s no credit preview (%s)", job.id, exc.key)
        return None
    return resolved.credit


def over_threshold(d: Dispatcher, credit: int | None) -> bool:
    """Whether a spend of `credit` needs the user's OK first (settings.confirm_above_credits; 0 = never)."""
    limit = d.settings.confirm_above_credits
    return bool(limit) and credit is not None and credit > limit


async def needs_confirm(d: Dispatcher, job: Job) -> bool:
    """Whether `job` costs more than settings.confirm_above_credits (asks the catalog only when set)."""
    return bool(d.settings.confirm_above_credits) and over_threshold(d, await credit_of(d, job))


async def budget_lines(d: Dispatcher, user_key: str, credit: int | None, locale: str) -> tuple[str, ...]:
    """The amount and what is left of the user's daily budget, for a confirm notice."""
    t = d.texts
    lines = [t("shots.confirm.amount", locale, credit=credit)] if credit is not None else []
    limit = d.settings.daily_credit_budget
    if limit:
        committed = await d.store.credits_committed(user_key, since=budget_day_start(d._clock()))
        lines.append(t("shots.confirm.budget", locale, left=max(0, limit - committed), limit=limit))
    return tuple(lines)


async def confirm_big_spend(d: Dispatcher, draft: Job, notice: Notice) -> Notice:
    """issue 9's confirm notice for `draft`, plus the amount, the daily budget left and a Cancel button
    when the draft is held back because it costs more than settings.confirm_above_credits."""
    if not d.settings.confirm_above_credits:
        return notice
    credit = await credit_of(d, draft)
    if not over_threshold(d, credit):
        return notice
    lines = await budget_lines(d, draft.user_key, credit, draft.locale)
    cancel = Button(d.texts("button.cancel", draft.locale), Action.CANCEL, draft.id, style=ButtonStyle.DANGER)
    return replace(notice, lines=(*notice.lines, *lines), buttons=(*notice.buttons, cancel))


async def _start(
    d: Dispatcher,
    job: Job,
    spec: JobSpec,
    *,
    origin: Origin,
    locale: str,
    input_urls: tuple[str, ...],
    event_keys: tuple[str, ...],
    what: str,
) -> Notice | None:
    new = Job(
        id=d._new_id(),
        user_key=f"{origin.platform}:{origin.user_id}",
        origin=origin,
        spec=spec,
        locale=locale,
        created_at=d._clock(),
        input_urls=input_urls,
        retry_of=job.id,
        extra={"shots": {"of": job.id, "action": what}},
    )
    new = replace(new, trace_id=new.id)
    if await needs_confirm(d, new):  # a big spend waits for its Generate press, as a typed request does
        new = replace(new, state=JobState.DRAFT)
    if not await d.store.add_job(new, event_keys=event_keys, ttl=d.settings.event_ttl):
        d.deduplicated += 1
        return None
    if new.state is JobState.DRAFT:
        from bot import intake

        return await confirm_big_spend(d, new, await intake.confirm(d, new))
    log.info("job=%s %s of %s", new.id, what, job.id)
    d.runner.notify(new)
    d.runner.admit(new)
    return None


__all__ = [
    "ACTIONS",
    "budget_lines",
    "confirm_big_spend",
    "continue_reply",
    "continue_words",
    "continued_spec",
    "credit_of",
    "is_continue",
    "needs_confirm",
    "on_button",
    "over_threshold",
    "start_continue",
]
