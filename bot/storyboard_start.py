"""Storyboards (issue 14), start: a storyboard message becomes its shots' jobs, stored up front.

Shot 1 is queued (or, above jobs.confirm_above_credits, a draft awaiting issue 9's Generate press); shots
2…n are drafts whose first frame is `frame:last:<previous shot>`, their credits held at once so the whole
storyboard is counted against the daily budget before anything is created. bot/storyboard_chain.py moves it on.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot import shots
from bot.core import Action, Button, ButtonStyle, GenerationIntent, Notice
from bot.jobs import notices
from bot.jobs.frames import last_frame_of
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.scheduler import budget_day_start
from bot.parsing import parse
from bot.storyboard import Storyboard
from bot.storyboard_board import KEY, board_notice
from ima.errors import ImaError
from ima.models import TaskType

if TYPE_CHECKING:
    from bot.dispatch import Dispatcher

log = logging.getLogger("imabot.storyboard")


def plan(intent: GenerationIntent, board: Storyboard, settings: dict[str, Any]) -> list[JobSpec]:
    """Each shot's spec (pure): shot 1 as the message asks (text, or its first image as the first frame),
    the rest image-to-video; the model and settings (`settings`: model, duration, aspect_ratio,
    resolution) are the same for every shot. Later shots' first frames are filled in by the caller."""
    first_images = tuple(replace(a, role=a.role or "first") for a in intent.attachments[:1])
    specs = []
    for i, words in enumerate(board.shots):
        parsed = parse(words, len(first_images) if i == 0 else 1)
        specs.append(
            JobSpec(
                task_type=TaskType.IMAGE_TO_VIDEO if i or first_images else TaskType.TEXT_TO_VIDEO,
                model_id=settings["model"],
                prompt=parsed.prompt or words,
                duration=settings["duration"],
                aspect_ratio=settings["aspect_ratio"],
                resolution=settings["resolution"],
                attachments=first_images if i == 0 else (),
            )
        )
    return specs


async def start(d: Dispatcher, intent: GenerationIntent, board: Storyboard, locale: str) -> Notice | None:
    """Stores every shot, reserves their credits and queues shot 1 (the chain then posts the storyboard's
    card); returns a refusal, the confirm notice of a big spend, or None."""
    from bot.dispatch import user_key

    t = d.texts
    limit = d.settings.max_storyboard_shots
    if len(board.shots) > limit:
        return (
            notices.error(t, locale, "shots.too_many_shots", count=len(board.shots), limit=limit)
            if (await d._claim(intent.event_keys))
            else None
        )
    refusal = await d._check(intent, locale)
    if refusal is not None:
        return refusal if await d._claim(intent.event_keys) else None
    key = user_key(intent)
    head = parse(board.header, 0)
    said = {
        "model": head.model_id,
        "duration": head.duration,
        "aspect_ratio": head.aspect_ratio,
        "resolution": head.resolution,
    }
    settings = await d._with_preferences(key, intent, TaskType.TEXT_TO_VIDEO, said)
    ids = [d._new_id() for _ in board.shots]
    jobs = []
    for i, spec in enumerate(plan(intent, board, settings)):
        if i:
            spec = replace(spec, attachments=(last_frame_of(ids[i - 1]),))
        note = ("shots.note.shot", {"index": i + 1, "count": len(ids)})
        jobs.append(
            Job(
                id=ids[i],
                user_key=key,
                origin=intent.origin,
                spec=replace(spec, notes=(note,)),
                locale=locale,
                created_at=d._clock() + i * 1e-3,
                trace_id=ids[i],
                state=JobState.QUEUED if i == 0 else JobState.DRAFT,
                extra={KEY: {"id": ids[0], "index": i, "shots": ids}},
            )
        )
    credits: list[int | None] = []
    for job in jobs:
        try:
            resolved, _ = await d.runner.preview(job)
            credits.append(resolved.credit)
        except ImaError as exc:
            log.info("storyboard %s: no credit preview (%s)", ids[0], exc.key)
            credits.append(None)
    total = sum(c for c in credits if c is not None) if all(c is not None for c in credits) else None
    budget = d.settings.daily_credit_budget
    since = budget_day_start(d._clock())
    if budget and total is not None:
        committed = await d.store.credits_committed(key, since=since)
        if committed + total > budget:
            return (
                notices.error(t, locale, "shots.over_budget", credit=total, spent=committed, limit=budget)
                if (await d._claim(intent.event_keys))
                else None
            )
    confirm = shots.over_threshold(d, total)  # a big spend waits for the Generate press (issue 9's draft)
    if confirm:
        jobs[0] = replace(jobs[0], state=JobState.DRAFT)
    if not await d.store.add_job(jobs[0], event_keys=intent.event_keys, ttl=d.settings.event_ttl):
        d.deduplicated += 1
        return None
    for job, credit in zip(jobs[1:], credits[1:], strict=True):
        await d.store.add_job(replace(job, credit=credit))  # shown and held before the shot runs
        if credit is not None:  # held now, so the whole storyboard fits the budget or none of it starts
            await d.store.reserve_credit(job.id, key, credit, limit=0, since=since)
    if confirm:
        log.info("storyboard %s: %d shots await confirmation", ids[0], len(ids))
        notice = board_notice(t, [replace(j, credit=c) for j, c in zip(jobs, credits, strict=True)], locale)
        generate = Button(
            t("intake.button_generate", locale), Action.GENERATE, ids[0], style=ButtonStyle.PRIMARY
        )
        return replace(
            notice,
            title=t("shots.storyboard.confirm_title", locale, count=len(ids), credit=total),
            lines=(*notice.lines, *await shots.budget_lines(d, key, None, locale)),
            buttons=(generate, *notice.buttons),
        )
    log.info("storyboard %s: %d shots queued", ids[0], len(ids))
    d.runner.notify(jobs[0])  # the chain hears of shot 1 and posts the storyboard's card
    d.runner.admit(jobs[0])
    return None


__all__ = ["plan", "start"]
