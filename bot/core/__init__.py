"""Platform-neutral types and ports shared by adapters and the pipeline."""

from .errors import AttachmentRejected, BotError, MessageGone, PlatformError
from .intent import (
    Action,
    ActionIntent,
    Attachment,
    Command,
    CommandIntent,
    GenerationIntent,
    Intent,
    Origin,
    Quoted,
    detect_locale,
)
from .notice import Button, ButtonStyle, Notice, NoticeKind
from .ports import Adapter, IntentHandler, Messenger

__all__ = [
    "Action",
    "ActionIntent",
    "Adapter",
    "Attachment",
    "AttachmentRejected",
    "BotError",
    "Button",
    "ButtonStyle",
    "Command",
    "CommandIntent",
    "GenerationIntent",
    "Intent",
    "IntentHandler",
    "MessageGone",
    "Messenger",
    "Notice",
    "NoticeKind",
    "Origin",
    "PlatformError",
    "Quoted",
    "detect_locale",
]
