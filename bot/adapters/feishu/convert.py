"""Pure conversion of Feishu event JSON (schema 2.0) into platform-neutral intents."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core import (
    Action,
    ActionIntent,
    Attachment,
    Command,
    CommandIntent,
    GenerationIntent,
    Intent,
    Origin,
    Quoted,
)
from bot.core.media import sniff

from .forms import form_text

PLATFORM = "feishu"
MESSAGE_EVENT = "im.message.receive_v1"
CARD_ACTION_EVENT = "card.action.trigger"

_PLACEHOLDER = re.compile(r"@_user_\d+|@_all")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
# "/help", "/jobs", "/settings k=v", "/cancel <job>" and their Chinese aliases.
_COMMANDS: Mapping[str, Command] = {
    "help": Command.HELP,
    "帮助": Command.HELP,
    "jobs": Command.JOBS,
    "任务": Command.JOBS,
    "settings": Command.SETTINGS,
    "设置": Command.SETTINGS,
    "cancel": Command.CANCEL,
    "取消": Command.CANCEL,
}


@dataclass(frozen=True)
class Context:
    """What conversion needs to know about the bot: its own open_id and who may use it."""

    bot_open_id: str
    # Chat ids (oc_...) or user open_ids (ou_...); empty admits everyone.
    chat_allowlist: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Unsupported:
    """A message addressed to the bot that it cannot read (file, audio, sticker, ...)."""

    origin: Origin
    message_type: str
    event_keys: tuple[str, ...]


def event_type(raw: Mapping[str, Any]) -> str:
    """Returns the event type of a schema 2.0 event ("" when absent)."""
    return str(_obj(raw.get("header")).get("event_type") or "")


def make_handle(message_id: str, key: str) -> str:
    """Returns the attachment handle for a resource key inside a message."""
    return f"{message_id}/{key}"


def split_handle(handle: str) -> tuple[str, str]:
    """Returns (message_id, resource key) of a handle; raises ValueError when malformed."""
    message_id, sep, key = handle.partition("/")
    if not sep or not message_id or not key or "/" in key:
        raise ValueError("not a feishu attachment handle")
    return message_id, key


def sniff_image(data: bytes) -> str:
    """Returns the image MIME type the magic bytes show, or "" when data is not an image (the one sniff
    every adapter shares: bot.core.media)."""
    info = sniff(data)
    return info.mime if info else ""


# Payload formats Feishu still sends to apps configured long ago; the bot reads neither.
LEGACY_EVENT = "event_v1"  # schema 1.0 events, e.g. the old "message" (receive message) event
LEGACY_CARD = "card_v1"  # the old message-card callback (the card request URL)


def legacy_kind(raw: Mapping[str, Any]) -> str:
    """Returns LEGACY_EVENT or LEGACY_CARD for an old-format payload, "" for a schema 2.0 one."""
    if raw.get("schema") or raw.get("header"):
        return ""
    if raw.get("type") == "event_callback" or (raw.get("uuid") and isinstance(raw.get("event"), Mapping)):
        return LEGACY_EVENT
    if isinstance(raw.get("action"), Mapping) and (raw.get("open_message_id") or raw.get("open_id")):
        return LEGACY_CARD
    return ""


def quoted_message(item: Mapping[str, Any], message_id: str) -> Quoted:
    """Returns the Quoted for a message as GET /im/v1/messages/:id describes it (the parent of a reply).

    Its images become handles in that message (downloadable like the user's own); text, image and post
    messages are read, anything else quotes no content.
    """
    content = _loads(_obj(item.get("body")).get("content"))
    kind = str(item.get("msg_type") or "")
    text, images = "", []
    if kind == "text":
        text = _str(content.get("text"))
    elif kind == "image":
        images = [str(content.get("image_key") or "")]
    elif kind == "post":
        text, images = _post(content, set(), "")
    mentions = [m for m in _items(item.get("mentions")) if isinstance(m, Mapping)]
    names = {str(m.get("key")): str(m.get("name") or "") for m in mentions}
    return Quoted(
        message_id=message_id,
        ref=message_id,
        from_bot=_obj(item.get("sender")).get("sender_type") == "app",
        text=_clean(text, set(), names),
        attachments=tuple(Attachment(make_handle(message_id, k)) for k in images if k),
    )


def to_intent(raw: Mapping[str, Any], ctx: Context) -> Intent | Unsupported | None:
    """Returns the intent an event carries, Unsupported, or None when the bot should ignore it."""
    kind = event_type(raw)
    if kind == MESSAGE_EVENT:
        return _message(raw, ctx)
    if kind == CARD_ACTION_EVENT:
        return _card_action(raw, ctx)
    return None


def _event_id_key(raw: Mapping[str, Any]) -> tuple[str, ...]:
    event_id = _obj(raw.get("header")).get("event_id")
    return (f"feishu:event:{event_id}",) if event_id else ()


def _allowed(ctx: Context, *ids: str) -> bool:
    return not ctx.chat_allowlist or any(i and i in ctx.chat_allowlist for i in ids)


def _obj(value: Any) -> Mapping[str, Any]:
    """value when it is a JSON object, else an empty one: malformed payloads never raise."""
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    """value when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    """A string field of the message content; anything else (a list, an object) reads as ""."""
    return value if isinstance(value, str) else ""


def _loads(content: Any) -> dict[str, Any]:
    if isinstance(content, Mapping):
        return dict(content)
    try:
        value = json.loads(content or "{}")
    except (TypeError, ValueError, RecursionError):  # RecursionError: content nested absurdly deep
        return {}
    return value if isinstance(value, dict) else {}


def _message(raw: Mapping[str, Any], ctx: Context) -> Intent | Unsupported | None:
    event = _obj(raw.get("event"))
    sender = _obj(event.get("sender"))
    if sender.get("sender_type") not in (None, "", "user"):
        return None  # other bots and apps
    msg = _obj(event.get("message"))
    user_id = str(_obj(sender.get("sender_id")).get("open_id") or "")
    chat_id, message_id = str(msg.get("chat_id") or ""), str(msg.get("message_id") or "")
    chat_type = str(msg.get("chat_type") or "")
    if not chat_id or not message_id or not _allowed(ctx, chat_id, user_id):
        return None
    mentions = [m for m in _items(msg.get("mentions")) if isinstance(m, Mapping)]
    bot_keys = {str(m.get("key")) for m in mentions if _mention_open_id(m) == ctx.bot_open_id}
    is_direct = chat_type == "p2p"
    if not is_direct and not bot_keys:
        return None  # group chatter not addressed to the bot
    extra = {"chat_type": chat_type}
    if msg.get("thread_id"):
        extra["thread_id"] = str(msg["thread_id"])
    origin = Origin(PLATFORM, chat_id, user_id, message_id, is_direct=is_direct, extra=extra)
    keys = (*_event_id_key(raw), f"feishu:message:{message_id}")
    message_type = str(msg.get("message_type") or "")
    content = _loads(msg.get("content"))
    names = {str(m.get("key")): str(m.get("name") or "") for m in mentions}
    if message_type == "text":
        text, image_keys = _str(content.get("text")), []  # a non-string "text" is no text (hostile push)
    elif message_type == "image":
        text, image_keys = "", [str(content.get("image_key") or "")]
    elif message_type == "post":
        text, image_keys = _post(content, bot_keys, ctx.bot_open_id)
    else:
        return Unsupported(origin, message_type, keys)
    text = _clean(text, bot_keys, names)
    attachments = tuple(Attachment(make_handle(message_id, k)) for k in image_keys if k)
    command = _command(text, origin, keys)
    if command is not None and not attachments:
        return command
    parent = str(msg.get("parent_id") or "")
    # The quoted message's content is not in the event: the adapter fetches it (quoted_message).
    reply_to = Quoted(parent, ref=parent) if parent else None
    return GenerationIntent(origin, text, attachments, event_keys=keys, reply_to=reply_to)


def _mention_open_id(mention: Mapping[str, Any]) -> str:
    ident = mention.get("id")
    if isinstance(ident, Mapping):
        return str(ident.get("open_id") or "")
    return str(ident or "")


def _clean(text: str, bot_keys: set[str], names: Mapping[str, str]) -> str:
    def swap(m: re.Match[str]) -> str:
        key = m.group(0)
        return "" if key in bot_keys or key == "@_all" else names.get(key, "")

    lines = (_SPACES.sub(" ", _PLACEHOLDER.sub(swap, line)).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def _post_body(content: Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(content.get("content"), list):
        return content
    # The locale-wrapped shape: {"zh_cn": {"title": ..., "content": [...]}, ...}
    for value in content.values():
        if isinstance(value, Mapping) and isinstance(value.get("content"), list):
            return value
    return {}


def _post(content: Mapping[str, Any], bot_keys: set[str], bot_open_id: str) -> tuple[str, list[str]]:
    body = _post_body(content)
    lines = [str(body.get("title") or "")]
    images: list[str] = []
    for paragraph in _items(body.get("content")):
        parts: list[str] = []
        for el in _items(paragraph):
            if not isinstance(el, Mapping):
                continue
            tag = el.get("tag")
            if tag in ("text", "a", "md", "code_block"):
                parts.append(_str(el.get("text")))
            elif tag == "at":
                who = str(el.get("user_id") or "")
                if who not in bot_keys and who != bot_open_id and who != "@_all":
                    parts.append(str(el.get("user_name") or "") if not who.startswith("@_") else who)
            elif tag == "img" and el.get("image_key"):
                images.append(str(el["image_key"]))
        lines.append("".join(parts))
    return "\n".join(lines), images


def _command(text: str, origin: Origin, keys: tuple[str, ...]) -> CommandIntent | None:
    if not text.startswith(("/", "／")):
        return None
    head, _, rest = text[1:].partition(" ")
    command = _COMMANDS.get(head.strip().lower())
    if command is None:
        return None
    args: dict[str, str] = {}
    free: list[str] = []
    for token in rest.split():
        name, eq, value = token.partition("=")
        if eq and name:
            args[name] = value
        else:
            free.append(token)
    if command is Command.CANCEL and free:
        args["job_id"] = free.pop(0)
    if free:
        args["text"] = " ".join(free)
    return CommandIntent(origin, command, args, event_keys=keys)


def _card_action(raw: Mapping[str, Any], ctx: Context) -> ActionIntent | None:
    event = _obj(raw.get("event"))
    action = _obj(event.get("action"))
    value = _loads(action.get("value"))
    try:
        act = Action(str(value.get("action") or ""))
    except ValueError:
        return None
    job_id = str(value.get("job_id") or "")
    where = _obj(event.get("context"))
    chat_id = str(where.get("open_chat_id") or event.get("open_chat_id") or "")
    message_id = str(where.get("open_message_id") or event.get("open_message_id") or "")
    user_id = str(_obj(event.get("operator")).get("open_id") or "")
    if not job_id or not _allowed(ctx, chat_id, user_id):
        return None
    origin = Origin(PLATFORM, chat_id, user_id, message_id, extra={"via": "card"})
    # Only the event id: two clicks on the same card are two requests. A submitted form (Continue ▶'s,
    # forms.py) is its button's press with the typed text.
    return ActionIntent(origin, job_id, act, event_keys=_event_id_key(raw), text=form_text(action))
