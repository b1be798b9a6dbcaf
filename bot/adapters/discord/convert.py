"""Pure conversion of Discord payloads (gateway/API shapes) into platform-neutral intents."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
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

from .form import submitted_text

PLATFORM = "discord"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's per-file limit without boosts

COMMAND_VIDEO = "video"
COMMANDS: Mapping[str, Command] = {
    "video-settings": Command.SETTINGS,
    "video-jobs": Command.JOBS,
    "video-cancel": Command.CANCEL,
    "video-help": Command.HELP,
}
# Typed slash-command options handed on as GenerationIntent.options / CommandIntent.args.
GENERATION_OPTIONS = ("model", "duration", "aspect_ratio", "resolution", "image_role")
SETTINGS_OPTIONS = ("model", "duration", "aspect_ratio", "resolution", "language")
IMAGE_OPTIONS: Mapping[str, str] = {"image": "first", "last_image": "last"}  # option name -> role

# Choice values offered by the slash commands (names come from the locale files).
CHOICES: Mapping[str, tuple[str, ...]] = {
    "model": ("ima-pro-fast", "ima-pro"),
    "duration": ("5", "10", "15"),
    "aspect_ratio": ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9"),
    "resolution": ("480p", "720p", "1080p"),
    "image_role": ("first_frame", "first_last", "reference"),
    "language": ("en", "zh"),
}

CUSTOM_ID_TEMPLATE = r"imabot:(?P<action>retry|other_model|cancel|generate|help|continue|vary_ar|vary_len):(?P<job_id>[A-Za-z0-9_.\-]{1,80})"
_CUSTOM_ID = re.compile(CUSTOM_ID_TEMPLATE)
_ACCEPTED_MESSAGE_TYPES = {0, 19}  # default and reply; joins, pins and the like are not requests
_DM_CHANNEL_TYPES = {1, 3}  # DM and group DM
REFERENCE_REPLY, REFERENCE_FORWARD = 0, 1  # message_reference.type
_IMAGE_EXTENSIONS = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "heic": "image/heic",
    "heif": "image/heif",
    "avif": "image/avif",
}


def get_locale(discord_locale: str | None) -> str | None:
    """Returns "zh" or "en" for a Discord locale (zh-CN, zh-TW, en-US, en-GB), else None."""
    low = (discord_locale or "").lower()
    if low.startswith("zh"):
        return "zh"
    if low.startswith("en"):
        return "en"
    return None


def custom_id(action: Action, job_id: str) -> str:
    """Returns the button custom_id for action on job_id; raises ValueError if job_id cannot be encoded."""
    value = f"imabot:{action.value}:{job_id}"
    if not _CUSTOM_ID.fullmatch(value):
        raise ValueError(f"job id {job_id!r} does not fit a Discord custom_id")
    return value


def parse_custom_id(value: str) -> tuple[Action, str] | None:
    """Returns (action, job_id) for one of our button custom_ids, None for anything else."""
    match = _CUSTOM_ID.fullmatch(value or "")
    return (Action(match["action"]), match["job_id"]) if match else None


def strip_bot_mention(text: str, bot_id: str) -> str:
    """Returns text without `<@bot_id>` / `<@!bot_id>`, with runs of blanks collapsed."""
    text = re.sub(rf"<@!?{re.escape(bot_id)}>", " ", text or "")
    text = re.sub(r"[ \t\u3000]+", " ", text)
    return "\n".join(line.strip() for line in text.splitlines()).strip()


def get_content_type(declared: str | None, filename: str) -> str:
    """Returns the declared content type, else one guessed from an image file extension, else ""."""
    if declared:
        return declared.split(";")[0].strip().lower()
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return _IMAGE_EXTENSIONS.get(ext, "")


def get_attachment(payload: Mapping[str, Any], role: str = "") -> Attachment:
    """Returns an Attachment handle (the CDN URL) for a Discord attachment object."""
    filename = str(payload.get("filename") or "")
    size = payload.get("size")
    return Attachment(
        handle=str(payload.get("url") or payload.get("proxy_url") or ""),
        filename=filename,
        content_type=get_content_type(payload.get("content_type"), filename),
        size=int(size) if size is not None else None,
        role=role,
    )


def is_allowed(
    origin: Origin,
    *,
    guild_allowlist: Collection[str],
    channel_allowlist: Collection[str],
    parent_channel_id: str = "",
    allow_direct: bool = True,
) -> bool:
    """Returns whether the bot answers in origin's place: DMs per allow_direct, guilds per the allowlists.

    An empty allowlist allows everything; a thread is allowed when its parent channel is.
    """
    if origin.is_direct:
        return allow_direct
    if guild_allowlist and origin.guild_id not in guild_allowlist:
        return False
    if channel_allowlist:
        return origin.chat_id in channel_allowlist or (parent_channel_id or "") in channel_allowlist
    return True


def _user_id(payload: Mapping[str, Any]) -> str:
    user = (payload.get("member") or {}).get("user") or payload.get("user") or payload.get("author") or {}
    return str(user.get("id") or "")


def _interaction_origin(payload: Mapping[str, Any], **extra: str) -> Origin:
    channel = payload.get("channel") or {}
    guild_id = str(payload.get("guild_id") or "")
    limit = payload.get("attachment_size_limit") or DEFAULT_UPLOAD_LIMIT
    return Origin(
        platform=PLATFORM,
        chat_id=str(payload.get("channel_id") or channel.get("id") or ""),
        user_id=_user_id(payload),
        guild_id=guild_id,
        # The channel type decides when the payload carries one (a group DM has no guild either).
        is_direct=channel["type"] in _DM_CHANNEL_TYPES if channel.get("type") is not None else not guild_id,
        extra={"upload_limit": str(int(limit)), **extra},
    )


def _option_values(data: Mapping[str, Any]) -> dict[str, Any]:
    return {str(o["name"]): o.get("value") for o in data.get("options") or () if "name" in o}


def _slash_intent(payload: Mapping[str, Any], locale: str | None, keys: tuple[str, ...]) -> Intent | None:
    data = payload.get("data") or {}
    name = data.get("name")
    values = _option_values(data)
    origin = _interaction_origin(payload, source="slash")
    if name == COMMAND_VIDEO:
        resolved = (data.get("resolved") or {}).get("attachments") or {}
        attachments = tuple(
            get_attachment(resolved[str(values[opt])], role)
            for opt, role in IMAGE_OPTIONS.items()
            if values.get(opt) is not None and str(values[opt]) in resolved
        )
        options = {k: str(values[k]) for k in GENERATION_OPTIONS if values.get(k) not in (None, "")}
        return GenerationIntent(
            origin=origin,
            text=str(values.get("prompt") or "").strip(),
            attachments=attachments,
            locale=locale,
            options=options,
            event_keys=keys,
        )
    command = COMMANDS.get(str(name))
    if command is None:
        return None
    allowed = SETTINGS_OPTIONS if command is Command.SETTINGS else ("job_id",)
    args = {k: str(values[k]).strip() for k in allowed if str(values.get(k) or "").strip()}
    return CommandIntent(origin=origin, command=command, args=args, locale=locale, event_keys=keys)


def _button_intent(payload: Mapping[str, Any], locale: str | None, keys: tuple[str, ...]) -> Intent | None:
    parsed = parse_custom_id(str((payload.get("data") or {}).get("custom_id") or ""))
    if parsed is None:
        return None
    action, job_id = parsed
    message = payload.get("message") or {}
    extra = {"source": "button"}
    if message.get("id"):
        extra["message_ref"] = f"{message.get('channel_id') or payload.get('channel_id')}:{message['id']}"
    origin = _interaction_origin(payload, **extra)
    return ActionIntent(origin=origin, job_id=job_id, action=action, locale=locale, event_keys=keys)


def interaction_intent(payload: Mapping[str, Any]) -> Intent | None:
    """Returns the intent for an INTERACTION_CREATE payload: a slash command, one of our buttons, or the
    form a button opened (a modal submit: the button's action with the typed text).

    Returns None for interactions that are not ours (other commands, foreign buttons, autocomplete).
    """
    locale = get_locale(payload.get("locale"))
    keys = (f"discord:interaction:{payload.get('id')}",)
    kind = payload.get("type")
    if kind == 2:
        return _slash_intent(payload, locale, keys)
    if kind == 3:
        return _button_intent(payload, locale, keys)
    if kind == 5:  # a submitted modal: Continue ▶'s form, whose custom_id is the button's (modals.py)
        intent = _button_intent(payload, locale, keys)
        if not isinstance(intent, ActionIntent) or intent.action is not Action.CONTINUE:
            return None  # the only form the bot opens is Continue's
        text = submitted_text((payload.get("data") or {}).get("components") or ())
        return replace(intent, text=text)
    return None


def _mentions_bot(
    payload: Mapping[str, Any], content: str, bot_id: str, bot_role_ids: Collection[str]
) -> bool:
    """Whether the message addresses the bot: a user mention (array or text) or one of its managed roles."""
    if any(str(m.get("id")) == bot_id for m in payload.get("mentions") or ()):
        return True
    if re.search(rf"<@!?{re.escape(bot_id)}>", content):
        return True
    # Discord's mention picker often inserts the bot's managed role instead of the bot user.
    roles = {str(r) for r in payload.get("mention_roles") or ()}
    return any(r in roles or f"<@&{r}>" in content for r in bot_role_ids)


def _strip_roles(text: str, bot_role_ids: Collection[str]) -> str:
    for role in bot_role_ids:
        text = text.replace(f"<@&{role}>", " ")
    return text


def _snapshot(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The forwarded message of a forward (message_reference type 1), else an empty mapping."""
    if (payload.get("message_reference") or {}).get("type") != REFERENCE_FORWARD:
        return {}
    for snap in payload.get("message_snapshots") or ():
        message = (snap or {}).get("message")
        if message:
            return message
    return {}


def _quoted(payload: Mapping[str, Any], bot_id: str) -> Quoted | None:
    """The message a reply quotes (message_reference type 0), with what Discord resolved of it."""
    ref = payload.get("message_reference") or {}
    if not ref.get("message_id") or ref.get("type", REFERENCE_REPLY) != REFERENCE_REPLY:
        return None
    quoted = payload.get("referenced_message") or {}
    return Quoted(
        message_id=str(ref["message_id"]),
        ref=f"{ref.get('channel_id') or payload.get('channel_id')}:{ref['message_id']}",
        from_bot=str((quoted.get("author") or {}).get("id") or "") == bot_id,
        text=strip_bot_mention(str(quoted.get("content") or ""), bot_id),
        attachments=tuple(get_attachment(a) for a in quoted.get("attachments") or ()),
    )


def message_intent(
    payload: Mapping[str, Any],
    *,
    bot_id: str,
    upload_limit: int = DEFAULT_UPLOAD_LIMIT,
    bot_role_ids: Collection[str] = (),
) -> GenerationIntent | None:
    """Returns a GenerationIntent for a MESSAGE_CREATE payload that is a DM or addresses the bot.

    A guild message addresses the bot when it mentions the bot user or one of bot_role_ids (the bot's
    managed role), or replies to one of the bot's messages. A forward reads its text and images from the
    forwarded snapshot; a reply carries the quoted message as reply_to. Returns None for bots' messages,
    system messages and guild messages not addressed to the bot.
    """
    author = payload.get("author") or {}
    if author.get("bot") or payload.get("type", 0) not in _ACCEPTED_MESSAGE_TYPES:
        return None
    guild_id = str(payload.get("guild_id") or "")
    content = str(payload.get("content") or "")
    quoted = _quoted(payload, bot_id)
    addressed = _mentions_bot(payload, content, bot_id, bot_role_ids) or bool(quoted and quoted.from_bot)
    if guild_id and not addressed:
        return None
    origin = Origin(
        platform=PLATFORM,
        chat_id=str(payload.get("channel_id") or ""),
        user_id=str(author.get("id") or ""),
        message_id=str(payload.get("id") or ""),
        guild_id=guild_id,
        is_direct=not guild_id,
        extra={"upload_limit": str(int(upload_limit)), "source": "message"},
    )
    attachments = [get_attachment(a) for a in payload.get("attachments") or ()]
    forwarded = _snapshot(payload)
    if forwarded:
        content = "\n".join(t for t in (content, str(forwarded.get("content") or "")) if t.strip())
        attachments += [get_attachment(a) for a in forwarded.get("attachments") or ()]
    return GenerationIntent(
        origin=origin,
        text=strip_bot_mention(_strip_roles(content, bot_role_ids), bot_id),
        attachments=tuple(attachments),
        locale=None,
        event_keys=(f"discord:message:{payload.get('id')}",),
        reply_to=quoted,
    )
