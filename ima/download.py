"""Downloading a result (video or cover) from IMA's CDN, never more than a size cap."""

from __future__ import annotations

import aiohttp

from .errors import ImaTransportError

_CHUNK = 64 * 1024


async def download_capped(
    session: aiohttp.ClientSession,
    url: str,
    *,
    max_bytes: int,
    timeout_s: float = 120.0,
    user_agent: str = "",
) -> bytes:
    """The body at `url` (a plain GET: no API key goes to the CDN).

    Raises ImaTransportError with code "too_large" when the declared or the streamed size passes
    `max_bytes` (the download stops there), the HTTP status for an answer >= 400, "transport" otherwise.
    """
    headers = {"User-Agent": user_agent} if user_agent else {}
    try:
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            if resp.status >= 400:
                raise ImaTransportError(f"Download answered HTTP {resp.status}", code=resp.status)
            if resp.content_length is not None and resp.content_length > max_bytes:
                raise _too_large(resp.content_length, max_bytes)
            chunks, size = [], 0
            async for chunk in resp.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > max_bytes:  # a server may not say, or lie about, the length
                    raise _too_large(size, max_bytes)
                chunks.append(chunk)
            return b"".join(chunks)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ImaTransportError(f"Download failed ({type(exc).__name__})", code="transport") from None


def _too_large(size: int, max_bytes: int) -> ImaTransportError:
    return ImaTransportError(
        f"The file is larger than {max_bytes} bytes", code="too_large", size=size, limit=max_bytes
    )
