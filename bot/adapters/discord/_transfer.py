"""Size-capped downloads (images from the CDN, the finished mp4) and Discord errors → PlatformError."""

from __future__ import annotations

import aiohttp
import discord

from bot.core import MessageGone, PlatformError

_CHUNK = 64 * 1024
# What a discord.py call can raise besides our own errors: API refusals, long rate limits, the network.
REQUEST_FAILURES = (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError)


class DownloadTooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__("download exceeds the size cap")
        self.size = size


class DownloadFailed(Exception):
    pass


async def download_capped(session: aiohttp.ClientSession, url: str, max_bytes: int) -> tuple[bytes, str]:
    """Downloads url; returns (body, content type).

    Raises DownloadTooLarge as soon as the declared or received size exceeds max_bytes (the rest is never
    read) and DownloadFailed for a non-http URL, a non-200 answer or a network error.
    """
    if not url.startswith(("http://", "https://")):
        raise DownloadFailed("not an http(s) URL")
    try:
        async with session.get(url) as resp:
            if resp.status != 200:
                raise DownloadFailed(f"HTTP {resp.status}")
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise DownloadTooLarge(resp.content_length)
            body = bytearray()
            async for chunk in resp.content.iter_chunked(_CHUNK):
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise DownloadTooLarge(None)
            return bytes(body), resp.headers.get("Content-Type", "")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DownloadFailed(type(exc).__name__) from exc


def platform_error(exc: Exception, *, editing: bool = False) -> PlatformError:
    """Returns the PlatformError for a discord.py failure; MessageGone for a 404 while editing."""
    if isinstance(exc, discord.RateLimited):
        return PlatformError("discord rate limit too long", retry_after=exc.retry_after, status=429)
    if isinstance(exc, discord.HTTPException):
        status, code = exc.status, exc.code or None
        text = f"discord answered {status} (code {code}): {exc.text[:200]}"
        if editing and status == 404:
            return MessageGone(text, status=status, code=code)
        retry_after = None
        if status == 429 and exc.response is not None:
            retry_after = _float(exc.response.headers.get("Retry-After"))
        return PlatformError(text, status=status, code=code, retry_after=retry_after)
    return PlatformError(f"discord request failed: {type(exc).__name__}")


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
