"""Size-capped downloads (images from the CDN, the finished mp4) and Discord errors → PlatformError."""

from __future__ import annotations

import aiohttp
import discord
import yarl

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


class DownloadRefused(DownloadFailed):
    """The URL (or a redirect) leads outside Discord's attachment hosts."""


# Where Discord serves users' uploads. Nothing else is fetched: a crafted attachment URL once made the bot
# request 169.254.169.254 (cloud metadata), private addresses and outside hosts.
DISCORD_CDN_HOSTS = ("cdn.discordapp.com", "media.discordapp.net")
MAX_REDIRECTS = 3


def allowed_hosts(extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The hosts (or host:port) attachments may come from: Discord's CDN, the REST host discord.py talks to
    (discord.com; the local fake Discord in tests, which also serves its fake CDN), and extra."""
    base = yarl.URL(discord.http.Route.BASE)
    own = {f"{base.host}:{base.port}" if base.port not in (None, 80, 443) else str(base.host)}
    return frozenset({*DISCORD_CDN_HOSTS, *own, *extra})


def _permitted(url: yarl.URL, hosts: frozenset[str]) -> bool:
    if url.scheme not in ("http", "https") or not url.host:
        return False
    return url.host in hosts or f"{url.host}:{url.port}" in hosts


async def download_capped(
    session: aiohttp.ClientSession,
    url: str,
    max_bytes: int,
    *,
    hosts: frozenset[str] | None = None,
    trusted: bool = False,
) -> tuple[bytes, str]:
    """Downloads url from an allowed host (default: allowed_hosts(); any http(s) host when trusted, for a
    URL IMA gave rather than a user); returns (body, content type).

    A redirect is followed only to an allowed host (at most MAX_REDIRECTS). Raises DownloadRefused for a
    URL or redirect outside them (nothing is requested from it), DownloadTooLarge as soon as the declared
    or received size exceeds max_bytes (the rest is never read), DownloadFailed for a non-200 answer or a
    network error.
    """
    hosts = allowed_hosts() if hosts is None else hosts
    try:
        target = yarl.URL(url)
    except (ValueError, TypeError):
        raise DownloadRefused("not a URL") from None
    try:
        for _ in range(MAX_REDIRECTS + 1):
            if not (_permitted(target, hosts) or (trusted and target.scheme in ("http", "https"))):
                raise DownloadRefused(f"host {target.host or '?'} is not a Discord attachment host")
            async with session.get(target, allow_redirects=False) as resp:
                if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                    target = target.join(yarl.URL(resp.headers["Location"]))
                    continue
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
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise DownloadFailed(type(exc).__name__) from exc
    raise DownloadFailed("too many redirects")


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
