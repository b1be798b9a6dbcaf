"""The one request path to IMA: headers, timeouts, and the {code, message, data} envelope → value or error."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .errors import AuthError, CreateOutcomeUnknown, ImaTransportError, api_error_for

log = logging.getLogger("ima.transport")

SUCCESS_CODES = frozenset({0, 200})
USER_AGENT = "IMA-OpenAPI-Client/imabot_0.1.0"
APP_SOURCE = "ima_skills"


@dataclass(frozen=True)
class Timeouts:
    """Per-call total timeouts in seconds (contract §1)."""

    product_list: float = 30.0
    create: float = 30.0
    detail: float = 30.0
    upload_token: float = 30.0
    upload_put: float = 60.0


def api_headers(api_key: str, *, language: str, user_agent: str = USER_AGENT) -> dict[str, str]:
    """The headers every api.imastudio.com call carries, GET included (contract §1).

    `x_app_language` keeps its underscores: the server expects that exact name."""
    return {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "x-app-source": APP_SOURCE,
        "x_app_language": language,
    }


def _as_code(value: Any) -> int | None:
    """An envelope `code` as an int (numbers or numeric strings), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def decode_envelope(status: int, body: bytes, *, create: bool = False) -> Any:
    """The `data` of a successful envelope (`code` 0 or 200, whatever the HTTP status).

    This is the ONE place that decides transport versus business failure:
    a JSON body with a numeric `code` is a business answer (typed ImaApiError unless 0/200), read
    whatever the HTTP status; anything else is a transport failure (ImaTransportError). For a create
    (`create=True`) an unreadable answer with HTTP 2xx or 5xx raises CreateOutcomeUnknown, because the
    task may exist. An HTTP 401 without an envelope is still an AuthError."""
    try:
        payload = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    code = _as_code(payload.get("code")) if isinstance(payload, dict) else None
    if code is None:
        if status == 401:
            raise AuthError(
                f"IMA answered HTTP {status} without a JSON envelope", code=401, http_status=status
            )
        msg = f"IMA answered HTTP {status} without a usable JSON envelope"
        if create and (status >= 500 or 200 <= status < 300):
            raise CreateOutcomeUnknown(msg, http_status=status)
        raise ImaTransportError(msg, http_status=status)
    if code in SUCCESS_CODES:
        return payload.get("data")
    message = payload.get("message") or payload.get("msg") or ""
    raise api_error_for(code, str(message), http_status=status)


# observe(method, path, status or "error", seconds): told of every request, for metrics (the URL's path
# only: a query may hold the API key). Cheaper than an
# aiohttp TraceConfig, which costs every request a dozen awaited signals (~15 % of a status poll's CPU).
Observer = Callable[[str, str, str, float], None]


class Transport:
    """Sends JSON requests over an injected session and decodes the envelope."""

    def __init__(self, session: aiohttp.ClientSession, *, observe: Observer | None = None) -> None:
        self._session = session
        self.observe = observe
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}  # one per value, not one per request

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        timeout_s: float,
        create: bool = False,
        label: str = "",
    ) -> Any:
        """The envelope's `data`. Raises ImaApiError for business codes, ImaTransportError when no
        usable answer came, and CreateOutcomeUnknown (with `create=True`) when the request may have
        reached the server but its answer was lost.

        Exception texts never carry the URL or headers: the upload-token URL holds the API key."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        what = label or f"{method} {url.split('?')[0]}"
        started = time.perf_counter()
        status = 0
        try:
            async with self._session.request(
                method,
                url,
                params=dict(params) if params else None,
                data=data,
                headers=headers,
                timeout=self._timeout(timeout_s),
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            self._tell(method, url, "error", started)
            # The connection was never established, so nothing was sent: safe to report as transport.
            raise ImaTransportError(f"{label or 'IMA'}: could not connect ({type(exc).__name__})") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._tell(method, url, "error", started)
            reason = type(exc).__name__
            if create:
                raise CreateOutcomeUnknown(
                    f"{label or 'create'}: the request was sent but no answer arrived ({reason})"
                ) from None
            raise ImaTransportError(f"{label or 'IMA'}: no answer ({reason})") from None
        self._tell(method, url, str(status), started)
        log.debug("%s → HTTP %s (%d bytes)", what, status, len(raw))
        return decode_envelope(status, raw, create=create)

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    def _tell(self, method: str, url: str, status: str, started: float) -> None:
        if self.observe is not None:
            self.observe(method, urlsplit(url).path, status, time.perf_counter() - started)
