"""The BotError tree for adapters and the pipeline.

BotError                  .key (locale text key), .params
├── AttachmentRejected    attachment_not_image | attachment_too_large | attachment_download_failed
└── PlatformError         a platform API refused a send/edit (.retry_after when rate limited)
    └── MessageGone       the message to edit was deleted
"""

from __future__ import annotations

from typing import Any


class BotError(Exception):
    def __init__(self, key: str, message: str = "", **params: Any) -> None:
        super().__init__(message or key)
        self.key = key
        self.params = params


class AttachmentRejected(BotError):
    pass


class PlatformError(BotError):
    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        status: int | None = None,
        code: int | str | None = None,
    ) -> None:
        super().__init__("platform_error", message, status=status, code=code)
        self.retry_after = retry_after
        self.status = status
        self.code = code


class MessageGone(PlatformError):
    pass
