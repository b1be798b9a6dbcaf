"""The chat commands: /video-settings, /video-jobs, /video-cancel and help."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bot.core import Command, CommandIntent, Notice, NoticeKind
from bot.jobs import notices
from ima import normalize_model_id
from ima.errors import ImaUsageError
from ima.models import ModelId, TaskType

if TYPE_CHECKING:
    from bot.dispatch import Dispatcher

_RATIO = re.compile(r"^\s*(\d{1,2})\s*[:：]\s*(\d{1,2})\s*$")
_RESOLUTIONS = {"480P", "720P", "1080P", "4K"}
_CLEAR = {"", "default", "none", "auto", "默认", "自动", "clear"}


async def run_command(d: Dispatcher, intent: CommandIntent) -> Notice:
    from bot.dispatch import user_key

    locale = await d.locale_for(intent)
    t = d.texts
    key = user_key(intent)
    if intent.command is Command.JOBS:
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
    if intent.command is Command.CANCEL:
        job_id = (intent.args.get("job_id") or "").strip()
        job = await d.store.get_job(job_id) if job_id else await d.store.latest_unfinished(key)
        if job is None or job.finished or job.user_key != key:
            return Notice(NoticeKind.INFO, t("command.cancel_none", locale), locale=locale)
        await d.runner.cancel(job.id)
        return Notice(NoticeKind.INFO, t("command.cancel_done", locale, id=job.id), locale=locale)
    if intent.command is Command.SETTINGS:
        return await _settings(d, key, intent, locale)
    return Notice(
        NoticeKind.INFO, t("command.help_title", locale), (t("command.help_body", locale),), locale=locale
    )


async def _settings(d: Dispatcher, key: str, intent: CommandIntent, locale: str) -> Notice:
    t = d.texts
    changes: dict[str, Any] = {}
    try:
        for field, raw in intent.args.items():
            value = str(raw).strip()
            cleared = value.lower() in _CLEAR
            if field == "model":
                model = None if cleared else normalize_model_id(value)
                changes["models"] = {tt: model for tt in TaskType}
            elif field == "duration":
                changes["duration"] = None if cleared else int(value.lower().rstrip("s秒 "))
            elif field == "aspect_ratio":
                m = _RATIO.match(value)
                if not cleared and not m:
                    raise ValueError(value)
                changes["aspect_ratio"] = None if cleared else f"{int(m.group(1))}:{int(m.group(2))}"
            elif field == "resolution":
                res = value.upper()
                if not cleared and res not in _RESOLUTIONS:
                    raise ValueError(value)
                changes["resolution"] = None if cleared else res
            elif field in ("language", "locale"):
                changes["locale"] = None if cleared else ("zh" if value.lower().startswith("zh") else "en")
    except (ValueError, ImaUsageError):
        return notices.error(
            t, locale, "error.usage", detail=", ".join(f"{k}={v}" for k, v in intent.args.items())
        )
    prefs = await d.store.set_prefs(key, **changes) if changes else await d.store.get_prefs(key)
    locale = prefs.locale or locale
    unset = t("command.settings_unset", locale)
    model = next(iter(prefs.models.values()), None) if prefs.models else None
    values = {
        "model": notices.model_name(t, ModelId(model), locale) if model else unset,
        "duration": t("unit.seconds", locale, n=prefs.duration) if prefs.duration else unset,
        "aspect_ratio": prefs.aspect_ratio or unset,
        "resolution": prefs.resolution or unset,
        "locale": t(f"language.{prefs.locale}", locale) if prefs.locale in ("zh", "en") else unset,
    }
    lines = tuple(
        t("command.settings_line", locale, field=t(f"field.{f}", locale), value=v) for f, v in values.items()
    )
    if changes:
        lines = (t("command.settings_updated", locale), *lines)
    return Notice(NoticeKind.INFO, t("command.settings_title", locale), lines, locale=locale)


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
