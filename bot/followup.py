"""Replies: a reply to one of the bot's job messages is a follow-up of that job; a quoted image is input.

The dispatcher calls on_reply() first for every GenerationIntent that carries reply_to:
* the quoted message is one of the bot's job messages (pre-notice, progress or result) and the reply
  brings no images of its own → a follow-up: the job's prompt, images and settings, changed by what the
  reply says ("same again but 1:1", "竖屏版", "换快速模型", "10 秒的"). A new job, whose pre-notice says
  what changed. A reply that asks for nothing ("thanks!", "太棒了") starts nothing and gets no answer;
* otherwise, when the reply has no images and the quoted message has some, they become the reply's
  images (the reply's text is the prompt; one image is the first frame unless the reply says reference);
* otherwise the reply is an ordinary message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.core import GenerationIntent, Notice
from bot.jobs.model import Job, JobSpec
from bot.parsing import parse

if TYPE_CHECKING:
    from bot.dispatch import Dispatcher

log = logging.getLogger("imabot.followup")

FIELDS = ("model_id", "duration", "aspect_ratio", "resolution")
# Words that ask for the same job again when no setting is said. What is left of the prompt after the
# parser took the settings out is compared against these, so "same again" runs and "thanks" does not.
_AGAIN = re.compile(
    r"\b(again|redo|re-?do|retry|re-?run|one more|another( one)?|same( thing| one)?|once more|repeat)\b"
    r"|再来|再做|重做|重新|再生成|再一[个次遍]|再出|同样|一样的|照这个|还要",
    re.IGNORECASE,
)
_NOTE_CHANGED = "platforms.followup.changed"
_NOTE_SAME = "platforms.followup.same"


def asks_again(text: str) -> bool:
    """Whether text asks to run a job again (in English or Chinese)."""
    return bool(_AGAIN.search(text or ""))


def changed_spec(
    spec: JobSpec, text: str, options: dict[str, str] | None = None
) -> tuple[JobSpec, dict[str, Any]]:
    """Returns (spec with the settings text says, {field: (old, new)} for every value that changed).

    The prompt and the images stay the job's own; a setting said with its current value is no change.
    """
    parsed = parse(text, len(spec.attachments), options=options or {})
    said = {
        "model_id": parsed.model_id,
        "duration": parsed.duration,
        "aspect_ratio": parsed.aspect_ratio,
        "resolution": parsed.resolution,
    }
    changes = {f: (getattr(spec, f), v) for f, v in said.items() if v is not None and v != getattr(spec, f)}
    return replace(spec, **{f: new for f, (_, new) in changes.items()}), changes


def describe(d: Dispatcher, changes: dict[str, Any], locale: str) -> str:
    """Returns "aspect ratio 16:9 → 1:1, model A → B" in locale."""
    t = d.texts

    def show(field: str, value: Any) -> str:
        if value is None:
            return t("platforms.followup.unset", locale)
        if field == "model_id":
            return t(f"model.{value.value}", locale)
        if field == "duration":
            return t("unit.seconds", locale, n=value)
        return str(value).upper() if field == "resolution" else str(value)

    return t("platforms.followup.separator", locale).join(
        t(f"platforms.followup.field.{f}", locale, old=show(f, old), new=show(f, new))
        for f, (old, new) in changes.items()
    )


async def on_reply(d: Dispatcher, intent: GenerationIntent) -> tuple[GenerationIntent | None, Notice | None]:
    """Returns (intent to handle as a new message, None) or (None, the answer) when the reply was handled."""
    quoted = intent.reply_to
    assert quoted is not None
    if not intent.attachments:
        job = await d.store.job_for_message(intent.origin.platform, quoted.ref)
        if job is not None:
            return None, await follow_up(d, intent, job)
        if quoted.attachments:
            return replace(intent, attachments=quoted.attachments), None
    return intent, None


async def follow_up(d: Dispatcher, intent: GenerationIntent, job: Job) -> Notice | None:
    """Starts a follow-up of job for intent and returns the answer (None when nothing needs saying)."""
    from bot import shots

    if shots.is_continue(intent):  # issue 14: "继续 …" / "continue …" is the next shot, from the last frame
        return await shots.continue_reply(d, intent, job)
    locale = await d.locale_for(intent, intent.text)
    spec, changes = changed_spec(job.spec, intent.text, dict(intent.options))
    if not changes and not asks_again(intent.text):
        await d._claim(intent.event_keys)  # a thank-you: remembered so a redelivery stays quiet too
        log.info("reply to job=%s asks for nothing; no job", job.id)
        return None
    refusal = await d._check(intent, locale)
    if refusal is not None:
        return refusal if await d._claim(intent.event_keys) else None
    note = (
        (_NOTE_CHANGED, {"job_id": job.id, "changes": describe(d, changes, locale)})
        if changes
        else (_NOTE_SAME, {"job_id": job.id})
    )
    from bot.dispatch import user_key

    new = Job(
        id=d._new_id(),
        user_key=user_key(intent),
        origin=intent.origin,
        spec=replace(spec, notes=(note,)),
        locale=locale,
        created_at=d._clock(),
        input_urls=job.input_urls,
        retry_of=job.id,
    )
    new = replace(new, trace_id=new.id)
    if not await d.store.add_job(new, event_keys=intent.event_keys, ttl=d.settings.event_ttl):
        d.deduplicated += 1
        return None
    log.info("job=%s follow-up of %s changing %s", new.id, job.id, ",".join(changes) or "nothing")
    d.runner.notify(new)
    d.runner.admit(new)
    return None
