"""What an adapter hands the pipeline: a generation request, a button click, or a command."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class Origin:
    """Where a request came from and where replies go."""

    platform: str  # "discord" | "feishu" | "console"
    chat_id: str  # channel / chat / DM channel id
    user_id: str
    message_id: str = ""  # the user's message, the reply target ("" for slash commands)
    guild_id: str = ""
    is_direct: bool = False
    # Platform-specific routing facts an adapter needs to reply later (e.g. an interaction token).
    # Stored with the job; never shown to users.
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Attachment:
    """An image the user sent, as a handle the adapter can resolve to bytes later."""

    handle: str  # opaque to the pipeline: a CDN URL, "message_id/image_key", a local path
    filename: str = ""
    content_type: str = ""  # as the platform declared it ("" when unknown)
    size: int | None = None  # bytes, as declared, when known
    role: str = ""  # "first" | "last" | "reference" when a typed option said so


@dataclass(frozen=True)
class Quoted:
    """The message a reply quotes: who wrote it and what it carried (resolved by the adapter)."""

    message_id: str
    # The quoted message named as the adapter's send() names its messages, so a job can be found by it.
    ref: str = ""
    from_bot: bool = False  # written by this bot (then it may be one of its job messages)
    text: str = ""
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class GenerationIntent:
    origin: Origin
    text: str  # the message text with the bot mention and command prefix left to the parser
    attachments: tuple[Attachment, ...] = ()
    locale: str | None = None  # "zh" | "en" from the platform, else None (detected from the text)
    # Typed options a platform UI collected (slash-command choices): model, duration, aspect_ratio,
    # resolution, image_role. They win over what the parser reads in the text.
    options: Mapping[str, str] = field(default_factory=dict)
    event_keys: tuple[str, ...] = ()  # dedup keys (event id, message id); any seen key drops the intent
    reply_to: Quoted | None = None  # the message this one replies to, when it is a reply


class Action(StrEnum):
    RETRY = "retry"
    OTHER_MODEL = "other_model"
    CANCEL = "cancel"
    GENERATE = "generate"  # make the job a confirm notice held back (a thin prompt)
    HELP = "help"  # the help text, from a confirm notice
    # Issue 14: shots that continue each other, and one-tap variations of a result (bot/shots.py).
    CONTINUE = "continue"  # image-to-video from the result's last frame, same model and settings
    VARY_ASPECT = "vary_ar"  # the vertical version of a horizontal result, and the other way round
    VARY_DURATION = "vary_len"  # 5 s ↔ 10 s


@dataclass(frozen=True)
class ActionIntent:
    """A button click: job id plus action."""

    origin: Origin
    job_id: str
    action: Action
    locale: str | None = None
    event_keys: tuple[str, ...] = ()
    # What the user typed into the form the press opened (Continue ▶'s "what happens next": a Discord
    # modal, a Feishu card form); "" for a plain press or an empty form.
    text: str = ""


class Command(StrEnum):
    SETTINGS = "settings"  # show or change the user's defaults
    JOBS = "jobs"  # the user's recent jobs
    CANCEL = "cancel"  # cancel a job (args["job_id"]) or the newest unfinished one
    HELP = "help"


@dataclass(frozen=True)
class CommandIntent:
    origin: Origin
    command: Command
    args: Mapping[str, str] = field(default_factory=dict)
    locale: str | None = None
    event_keys: tuple[str, ...] = ()


Intent = GenerationIntent | ActionIntent | CommandIntent

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_locale(text: str, platform_locale: str | None = None, default: str = "en") -> str:
    """Returns "zh" or "en": the platform's locale when it says one, else the script of the text."""
    if platform_locale:
        low = platform_locale.strip().lower().replace("-", "_")
        if low.startswith("zh"):
            return "zh"
        if low.startswith("en"):
            return "en"
    cjk = len(_CJK.findall(text or ""))
    if cjk and cjk * 3 >= len(_LATIN.findall(text or "")):
        return "zh"
    if _LATIN.search(text or ""):
        return "en"
    return default
