"""Answers to messages that are not a generation request (commands, chatter, unknown slash words) and the
confirm step of thin prompts: a draft job that runs only when its Generate button is pressed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.core import (
    Action,
    ActionIntent,
    Button,
    ButtonStyle,
    Command,
    CommandIntent,
    GenerationIntent,
    Notice,
    NoticeKind,
)
from bot.jobs.model import Job, JobState
from bot.jobs.store import InvalidTransition
from bot.jobs.texts import Texts
from bot.parsing import ParsedRequest
from bot.parsing.kind import Decision, Kind
from ima.errors import ImaError

if TYPE_CHECKING:
    from bot.dispatch import Dispatcher

log = logging.getLogger("imabot.intake")

_COMMANDS = {
    "help": Command.HELP,
    "jobs": Command.JOBS,
    "settings": Command.SETTINGS,
    "cancel": Command.CANCEL,
}
_PROMPT_PREVIEW = 60


async def answer(d: Dispatcher, intent: GenerationIntent, decision: Decision, locale: str) -> Notice | None:
    """The reply to a command, chatter or unknown slash word; None for a redelivered event. Never a job,
    except a retry the user asked for by id or of their last finished job."""
    from bot.commands import run_command

    if not await d._claim(intent.event_keys):
        return None
    t = d.texts
    if decision.kind is Kind.CHATTER:
        return Notice(
            NoticeKind.INFO,
            t("intake.chatter_title", locale),
            (t("intake.chatter_body", locale),),
            locale=locale,
        )
    if decision.command == "unknown":
        text = t("intake.unknown_command", locale, **decision.args)
        return Notice(NoticeKind.INFO, text, locale=locale)
    if decision.command == "retry":
        return await _retry(d, intent, decision, locale)
    command = CommandIntent(intent.origin, _COMMANDS[decision.command], dict(decision.args), locale=locale)
    return await run_command(d, command)


async def _retry(d: Dispatcher, intent: GenerationIntent, decision: Decision, locale: str) -> Notice | None:
    from bot.dispatch import user_key

    job_id = decision.args.get("job_id", "")
    if not job_id:
        # "/retry" alone means the user's last finished job; with none there is nothing to pay for.
        jobs = await d.store.recent_jobs(user_key(intent), limit=20)
        last = next((j for j in jobs if j.finished), None)
        if last is None:
            return Notice(NoticeKind.INFO, d.texts("intake.retry_none", locale), locale=locale)
        job_id = last.id
    return await d.act(ActionIntent(intent.origin, job_id, Action.RETRY, locale=intent.locale))


async def confirm(d: Dispatcher, draft: Job) -> Notice:
    """The confirm notice of a stored draft: "Make a video of “hi”? 15 credits" with Generate and Help.
    The credits are shown only when the catalog answers (no task is created to learn them)."""
    t, loc = d.texts, draft.locale
    prompt = " ".join(draft.spec.prompt.split())
    if len(prompt) > _PROMPT_PREVIEW:
        prompt = prompt[: _PROMPT_PREVIEW - 1] + "…"
    credit = None
    try:
        resolved, _ = await d.runner.preview(draft)
        credit = resolved.credit
    except ImaError as exc:
        log.info("job=%s draft: no credit preview (%s)", draft.id, exc.key)
    title = (
        t("intake.confirm_title_credits", loc, prompt=prompt, credit=credit)
        if credit is not None
        else t("intake.confirm_title", loc, prompt=prompt)
    )
    buttons = (
        Button(t("intake.button_generate", loc), Action.GENERATE, draft.id, style=ButtonStyle.PRIMARY),
        Button(t("intake.button_help", loc), Action.HELP, draft.id),
    )
    return Notice(
        NoticeKind.INFO, title, (t("intake.confirm_body", loc),), buttons=buttons, locale=loc, job_id=draft.id
    )


async def on_button(d: Dispatcher, intent: ActionIntent, job: Job) -> Notice | None:
    """Generate admits the draft (once: a second press or a press after cancel says so); Help shows help.
    The draft lives in the store, so a press after a restart works the same."""
    from bot.commands import run_command

    if intent.action is Action.HELP:
        return await run_command(d, CommandIntent(intent.origin, Command.HELP, locale=job.locale))
    if job.state is not JobState.DRAFT:
        return Notice(NoticeKind.INFO, d.texts("intake.draft_gone", job.locale), locale=job.locale)
    refusal = await d._limits(job.user_key, job.locale)
    if refusal is not None:
        return refusal
    try:
        job = await d.store.transition(job.id, JobState.QUEUED, created_at=d._clock())
    except InvalidTransition:  # a second press raced this one
        return Notice(NoticeKind.INFO, d.texts("intake.draft_gone", job.locale), locale=job.locale)
    log.info("job=%s draft confirmed, queued", job.id)
    d.runner.notify(job)
    d.runner.admit(job)
    return None


def echo_notes(texts: Texts, locale: str, parsed: ParsedRequest) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Notes for the pre-notice: each field the message set, and the words taken out of the prompt, so a
    wrong reading shows before credits are spent. Empty when the message set nothing."""
    fields = []
    if parsed.model_id is not None:
        fields.append(f"{texts('field.model', locale)} {texts(f'model.{parsed.model_id.value}', locale)}")
    if parsed.duration is not None:
        fields.append(f"{texts('field.duration', locale)} {texts('unit.seconds', locale, n=parsed.duration)}")
    if parsed.aspect_ratio is not None:
        fields.append(f"{texts('field.aspect_ratio', locale)} {parsed.aspect_ratio}")
    if parsed.resolution is not None:
        fields.append(f"{texts('field.resolution', locale)} {parsed.resolution}")
    out: list[tuple[str, dict[str, Any]]] = []
    if fields:
        out.append(("intake.echo_understood", {"fields": " · ".join(fields)}))
    if parsed.removed:
        out.append(("intake.echo_removed", {"words": " · ".join(f"“{w}”" for w in parsed.removed)}))
    return tuple(out)


__all__ = ["answer", "confirm", "echo_notes", "on_button"]
