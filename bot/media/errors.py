"""The one error the media package raises: a video that cannot be read or written."""

from __future__ import annotations

from bot.core import BotError


class MediaError(BotError):
    """`.key` is a locale key under `error.` (`shots_unreadable_video`, `shots_no_video_stream`)."""
