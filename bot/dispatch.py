"""Intents → jobs and actions: the one use-case layer. Dedup, validation, preferences, then the runner."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.core import (
    Action,
    ActionIntent,
    Attachment,
    GenerationIntent,
    Intent,
    Notice,
    detect_locale,
)
from bot.jobs import notices
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.runner import JobRunner
from bot.jobs.scheduler import budget_day_start
from bot.jobs.store import JobStore, UserPrefs
from bot.jobs.texts import Texts
from bot.parsing import parse
from ima.models import DEFAULT_MODEL, ModelId, TaskType

log = logging.getLogger("imabot.dispatch")

IMAGE_TYPES = ("image/",)


@dataclass(frozen=True)
class DispatchSettings:
    default_model: ModelId = DEFAULT_MODEL
    default_duration: int | None = None
    default_aspect_ratio: str | None = None
    default_resolution: str | None = None
    default_locale: str = "en"
    max_images: int = 9
    max_image_bytes: int = 20 * 1024 * 1024
    max_pending_per_user: int = 5
    event_ttl: float = 8 * 3600
    daily_credit_budget: int = 0  # 0 = no budget


def new_job_id() -> str:
    return secrets.token_hex(6)


class Dispatcher:
    """The IntentHandler every adapter calls. It returns fast: it records and queues, it never runs jobs."""

    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        texts: Texts,
        settings: DispatchSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_job_id,
    ) -> None:
        self.store, self.runner, self.texts = store, runner, texts
        self.settings = settings or DispatchSettings()
        self._clock, self._new_id = clock, new_id
        self.deduplicated = 0  # events dropped as redeliveries (a metric)

    async def __call__(self, intent: Intent) -> Notice | None:
        if isinstance(intent, GenerationIntent):
            return await self.generate(intent)
        if isinstance(intent, ActionIntent):
            return await self.act(intent)
        from bot.commands import run_command

        if not await self._claim(intent.event_keys):
            return None
        return await run_command(self, intent)

    async def _claim(self, keys: tuple[str, ...]) -> bool:
        if not keys:
            return True
        fresh = await self.store.claim_events(keys, ttl=self.settings.event_ttl)
        if not fresh:
            self.deduplicated += 1
        return fresh

    async def locale_for(self, intent: Intent, text: str = "") -> str:
        prefs = await self.store.get_prefs(user_key(intent))
        return prefs.locale or detect_locale(text, intent.locale, self.settings.default_locale)

    # -- generation ------------------------------------------------------------------------------
    async def generate(self, intent: GenerationIntent) -> Notice | None:
        locale = await self.locale_for(intent, intent.text)
        refusal = await self._check(intent, locale)
        if refusal is not None:
            return refusal if await self._claim(intent.event_keys) else None
        parsed = parse(intent.text, len(intent.attachments), options=intent.options)
        if not parsed.prompt and not intent.attachments:
            return (
                notices.error(self.texts, locale, "input.empty_prompt")
                if await self._claim(intent.event_keys)
                else None
            )
        key = user_key(intent)
        said = {
            "model": parsed.model_id,
            "duration": parsed.duration,
            "aspect_ratio": parsed.aspect_ratio,
            "resolution": parsed.resolution,
        }
        chosen = await self._with_preferences(key, intent, parsed.task_type, said)
        spec = JobSpec(
            task_type=parsed.task_type,
            model_id=chosen["model"],
            prompt=parsed.prompt,
            duration=chosen["duration"],
            aspect_ratio=chosen["aspect_ratio"],
            resolution=chosen["resolution"],
            attachments=_with_roles(intent.attachments, parsed.image_roles),
            notes=tuple((n.key, dict(n.params)) for n in parsed.notes),
        )
        job = Job(
            id=self._new_id(),
            user_key=key,
            origin=intent.origin,
            spec=spec,
            locale=locale,
            created_at=self._clock(),
        )
        job = replace(job, trace_id=job.id)
        if not await self.store.add_job(job, event_keys=intent.event_keys, ttl=self.settings.event_ttl):
            self.deduplicated += 1
            return None
        log.info("job=%s queued %s %s", job.id, spec.task_type.value, spec.model_id.value)
        self.runner.notify(job)
        self.runner.admit(job)
        return None

    async def _check(self, intent: GenerationIntent, locale: str) -> Notice | None:
        """A specific refusal for input that cannot become a job, else None."""
        if self.runner.closing:
            return notices.error(self.texts, locale, "input.paused")
        if len(intent.attachments) > self.settings.max_images:
            return notices.error(self.texts, locale, "input.too_many_images", limit=self.settings.max_images)
        for att in intent.attachments:
            name = att.filename or "image"
            if att.content_type and not att.content_type.lower().startswith(IMAGE_TYPES):
                return notices.error(self.texts, locale, "error.attachment_not_image", name=name)
            if att.size is not None and att.size > self.settings.max_image_bytes:
                return notices.error(
                    self.texts,
                    locale,
                    "error.attachment_too_large",
                    name=name,
                    size_mb=f"{att.size / 2**20:.1f}",
                    limit_mb=f"{self.settings.max_image_bytes / 2**20:.0f}",
                )
        return await self._limits(user_key(intent), locale)

    async def _limits(self, key: str, locale: str) -> Notice | None:
        pending = [j for j in await self.store.recent_jobs(key, limit=50) if not j.finished]
        if len(pending) >= self.settings.max_pending_per_user:
            return notices.error(self.texts, locale, "input.too_many_jobs", count=len(pending))
        limit = self.settings.daily_credit_budget
        if limit:
            spent = await self.store.credits_spent(key, since=budget_day_start(self._clock()))
            if spent >= limit:
                return notices.error(self.texts, locale, "input.budget_exceeded", spent=spent, limit=limit)
        return None

    async def _with_preferences(self, key: str, intent: Intent, task_type: TaskType, said: dict) -> dict:
        """Priority: said in the message > user preference > chat default > config default."""
        user = await self.store.get_prefs(key)
        chat = await self.store.get_chat_defaults(intent.origin.platform, intent.origin.chat_id)
        s = self.settings
        config = UserPrefs(
            models={},
            aspect_ratio=s.default_aspect_ratio,
            duration=s.default_duration,
            resolution=s.default_resolution,
            locale=None,
        )
        out = {}
        for field in ("duration", "aspect_ratio", "resolution"):
            out[field] = said[field] or next(
                (getattr(p, field) for p in (user, chat, config) if getattr(p, field)), None
            )
        out["model"] = said["model"] or next(
            (p.models[task_type] for p in (user, chat) if task_type in p.models), s.default_model
        )
        return out

    # -- buttons ---------------------------------------------------------------------------------
    async def act(self, intent: ActionIntent) -> Notice | None:
        if not await self._claim(intent.event_keys):
            return None
        locale = await self.locale_for(intent)
        job = await self.store.get_job(intent.job_id)
        if job is None:
            return notices.error(self.texts, locale, "input.job_not_found")
        locale = job.locale
        if job.origin.user_id != intent.origin.user_id or job.origin.platform != intent.origin.platform:
            return notices.error(self.texts, locale, "input.not_your_job")
        if intent.action is Action.CANCEL:
            if job.finished:
                return notices.error(self.texts, locale, "input.already_finished")
            await self.runner.cancel(job.id)
            return None
        refusal = await self._limits(job.user_key, locale)
        if refusal is not None:
            return refusal
        spec = (
            job.spec.with_model(job.spec.model_id.other) if intent.action is Action.OTHER_MODEL else job.spec
        )
        again = Job(
            id=self._new_id(),
            user_key=job.user_key,
            origin=job.origin,
            spec=spec,
            locale=locale,
            created_at=self._clock(),
            input_urls=job.input_urls,
            retry_of=job.id,
        )
        again = replace(again, trace_id=again.id)
        if not await self.store.add_job(again, ttl=self.settings.event_ttl):
            return None
        log.info("job=%s %s of %s", again.id, intent.action.value, job.id)
        self.runner.notify(again)
        self.runner.admit(again)
        return None


def user_key(intent: Intent) -> str:
    return f"{intent.origin.platform}:{intent.origin.user_id}"


def _with_roles(attachments: tuple[Attachment, ...], roles: tuple[str, ...]) -> tuple[Attachment, ...]:
    """Attachments with their roles, ordered first frame, last frame, then references."""
    out = []
    for i, att in enumerate(attachments):
        role = att.role or (roles[i] if i < len(roles) else "reference")
        out.append(replace(att, role=role))
    rank = {"first": 0, "last": 1}
    return tuple(sorted(out, key=lambda a: rank.get(a.role, 2)))


__all__ = ["DispatchSettings", "Dispatcher", "JobState", "user_key"]
