"""Intents → jobs and actions: the one use-case layer. Dedup, validation, preferences, then the runner."""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot import followup, intake, shots, storyboard_chain
from bot.core import (
    Action,
    ActionIntent,
    Attachment,
    GenerationIntent,
    Intent,
    Notice,
    detect_locale,
)
from bot.core.text import clean_intent
from bot.jobs import notices
from bot.jobs.model import Job, JobSpec, JobState
from bot.jobs.runner import JobRunner
from bot.jobs.scheduler import budget_day_start
from bot.jobs.store import JobStore, UserPrefs
from bot.jobs.texts import Texts
from bot.parsing.kind import Kind, decide
from bot.storyboard import parse_storyboard
from ima.models import DEFAULT_MODEL, ModelId, TaskType

log = logging.getLogger("imabot.dispatch")
PARSE_ON_LOOP_CHARS = 300  # longer messages are parsed off the event loop (bench/hostile_parse.py)

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
    min_prompt_chars: int | None = None  # thin-prompt bar (bot/parsing/intake.yaml's when None)
    max_storyboard_shots: int = 6  # issue 14: shots per storyboard
    confirm_above_credits: int = 0  # issue 14: ask before a job or storyboard costing more (0 = never)


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
        self.refuse_new = ""  # set (to the reason) when the store is lost: no new job may start
        self.storyboards = storyboard_chain.Chain(self)  # issue 14: moves storyboards on, shot by shot

    async def __call__(self, intent: Intent) -> Notice | None:
        # The one edge every adapter passes: what users typed is cleaned and capped before the store, the
        # parser or IMA sees it (lone surrogates, control characters, 100 KB walls: bot/core/text.py).
        intent = clean_intent(intent)
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
        if intent.reply_to is not None:
            # A reply to a job message is a follow-up of it; a quoted image is the input (bot/followup.py).
            reply, answer = await followup.on_reply(self, intent)
            if reply is None:
                return answer
            intent = reply
        locale = await self.locale_for(intent, intent.text)
        # issue 14: numbered shots make a storyboard (a long message is read off the loop, as below)
        long = len(intent.text) > PARSE_ON_LOOP_CHARS
        board = (
            await asyncio.to_thread(parse_storyboard, intent.text) if long else parse_storyboard(intent.text)
        )
        if board is not None:
            return await storyboard_chain.start(self, intent, board, locale)
        # The decision before any job: commands, chatter and unknown slash words never make one; a thin
        # prompt makes a draft that runs only when its Generate button is pressed (bot/intake.py).
        decide_it = functools.partial(
            decide,
            intent.text,
            len(intent.attachments),
            options=intent.options,
            min_prompt_chars=self.settings.min_prompt_chars,
        )
        # A long message is parsed in a worker thread: the loop keeps acking webhooks and polling meanwhile.
        decision = (
            await asyncio.to_thread(decide_it) if len(intent.text) > PARSE_ON_LOOP_CHARS else decide_it()
        )
        if decision.kind not in (Kind.REQUEST, Kind.CONFIRM):
            return await intake.answer(self, intent, decision, locale)
        refusal = await self._check(intent, locale)
        if refusal is not None:
            return refusal if await self._claim(intent.event_keys) else None
        parsed = decision.parsed
        assert parsed is not None
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
            notes=tuple((n.key, dict(n.params)) for n in parsed.notes)
            + intake.echo_notes(self.texts, locale, parsed),  # what was read, shown in the pre-notice
            said=tuple(f for f in ("duration", "aspect_ratio", "resolution") if said[f]),
        )
        job = Job(
            id=self._new_id(),
            user_key=key,
            origin=intent.origin,
            spec=spec,
            locale=locale,
            created_at=self._clock(),
            state=JobState.DRAFT if decision.kind is Kind.CONFIRM else JobState.QUEUED,
        )
        job = replace(job, trace_id=job.id)
        if job.state is JobState.QUEUED and await shots.needs_confirm(self, job):
            job = replace(job, state=JobState.DRAFT)  # issue 14: a big spend waits for Generate
        if not await self.store.add_job(job, event_keys=intent.event_keys, ttl=self.settings.event_ttl):
            self.deduplicated += 1
            return None
        if job.state is JobState.DRAFT:
            return await shots.confirm_big_spend(self, job, await intake.confirm(self, job))
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
        if self.refuse_new:
            return notices.error(self.texts, locale, "hostile.store_lost")
        pending = [
            j
            for j in await self.store.recent_jobs(key, limit=50)
            if not j.finished and j.state is not JobState.DRAFT
        ]
        if len(pending) >= self.settings.max_pending_per_user:
            return notices.error(self.texts, locale, "input.too_many_jobs", count=len(pending))
        limit = self.settings.daily_credit_budget
        if limit:
            # Reservations of running jobs count too: a user at the budget is refused at once.
            spent = await self.store.credits_committed(key, since=budget_day_start(self._clock()))
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
        if intent.action in (Action.GENERATE, Action.HELP):
            return await intake.on_button(self, intent, job)
        if intent.action is Action.CANCEL:
            if job.finished:
                return notices.error(self.texts, locale, "input.already_finished")
            await self.runner.cancel(job.id)
            return None
        refusal = await self._limits(job.user_key, locale)
        if refusal is not None:
            return refusal
        if intent.action in shots.ACTIONS:  # issue 14: Continue ▶ and the one-tap variations
            return await shots.on_button(self, intent, job)
        spec = job.spec
        if intent.action is Action.OTHER_MODEL:
            # Notes about how the first message was read ("kling isn't available…", "Read from your
            # message: model …") are not true of a job made by a button with the other model.
            model_notes = (
                "note.model_mapped",
                "note.model_unknown",
                "note.option_model",
                "intake.echo_understood",
                "intake.echo_removed",
            )
            kept = tuple(n for n in spec.notes if n[0] not in model_notes)
            spec = replace(spec.with_model(spec.model_id.other), notes=kept)
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
        if await shots.needs_confirm(self, again):  # issue 14: a big spend waits for Generate
            again = replace(again, state=JobState.DRAFT)
        if not await self.store.add_job(again, ttl=self.settings.event_ttl):
            return None
        if again.state is JobState.DRAFT:
            return await shots.confirm_big_spend(self, again, await intake.confirm(self, again))
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
