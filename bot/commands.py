"""The replies to the chat commands: help, jobs, cancel and settings. One message per command, in the
user's language (or, for a reply about one job, the job's); a successful cancel answers with the job's own
"Cancelled" message, so it gets no second reply here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.command_settings import settings
from bot.core import Command, CommandIntent, Notice, NoticeKind, detect_locale
from bot.jobs import notices

if TYPE_CHECKING:
    from bot.dispatch import Dispatcher

HELP_LINES = (
    "commands.help_video",
    "commands.help_jobs",
    "commands.help_cancel",
    "commands.help_retry",
    "commands.help_buttons",
    "commands.help_settings",
    "commands.help_help",
)


async def run_command(d: Dispatcher, intent: CommandIntent) -> Notice | None:
    """The reply to a command; None when the job's own message answers it (a cancel that went through)."""
    from bot.dispatch import user_key

    key = user_key(intent)
    locale = await user_locale(d, intent, key)
    t = d.texts
    if intent.command is Command.JOBS:
        return await _jobs(d, key, locale)
    if intent.command is Command.CANCEL:
        return await _cancel(d, key, (intent.args.get("job_id") or "").strip(), locale)
    if intent.command is Command.SETTINGS:
        return await settings(d, key, intent.origin.platform, intent.origin.chat_id, intent.args, locale)
    lines = tuple(t(key, locale) for key in HELP_LINES)
    return Notice(NoticeKind.INFO, t("command.help_title", locale), lines, locale=locale)


async def user_locale(d: Dispatcher, intent: CommandIntent, key: str) -> str:
    """The user's language for a command (which has no prose to detect it from): their setting, else the
    platform's locale, else the language of their newest job, else the bot's default."""
    prefs = await d.store.get_prefs(key)
    if prefs.locale:
        return prefs.locale
    if intent.locale:
        return detect_locale("", intent.locale, d.settings.default_locale)
    recent = await d.store.recent_jobs(key, limit=1)
    return recent[0].locale if recent else d.settings.default_locale


async def _jobs(d: Dispatcher, key: str, locale: str) -> Notice:
    t = d.texts
    jobs = await d.store.recent_jobs(key, limit=10)
    if not jobs:
        return Notice(NoticeKind.INFO, t("command.jobs_empty", locale), locale=locale)
    lines = tuple(
        t(
            "command.jobs_line",
            locale,
            state=t(f"state.{j.state.value}", locale),
            model=notices.model_name(t, j.spec.model_id, locale),
            prompt=_short(j.spec.prompt),
            id=j.id,
        )
        for j in jobs
    )
    return Notice(NoticeKind.INFO, t("command.jobs_title", locale), lines, locale=locale)


async def _cancel(d: Dispatcher, key: str, job_id: str, locale: str) -> Notice | None:
    """Cancels the named job (or the user's newest unfinished one). Returns None when it was cancelled:
    the job's own message then says so (in the job's language), exactly once."""
    t = d.texts
    if not job_id:
        job = await d.store.latest_unfinished(key)
        if job is None:
            return Notice(NoticeKind.INFO, t("commands.cancel_nothing", locale), locale=locale)
        await d.runner.cancel(job.id)
        return None
    job = await d.store.get_job(job_id)
    if job is not None and job.user_key != key:
        return notices.error(t, locale, "input.not_your_job")
    if job is None or job.finished:
        if job is None:
            text = t("commands.cancel_unknown", locale, id=job_id)
        else:
            locale = job.locale
            text = t(
                "commands.cancel_finished", locale, id=job.id, state=t(f"state.{job.state.value}", locale)
            )
        open_ids = [
            j.id
            for j in await d.store.recent_jobs(key, limit=20)
            if not j.finished and j.state.value != "draft"
        ]
        lines = (
            (t("commands.cancel_open", locale, ids=", ".join(f"`{i}`" for i in open_ids)),)
            if open_ids
            else ()
        )
        return Notice(NoticeKind.INFO, text, lines, locale=locale)
    await d.runner.cancel(job.id)
    return None


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
