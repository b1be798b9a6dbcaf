"""The one request path to IMA: headers, timeouts, and the {code, message, data} envelope → value or error."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


class Transport:
    """Sends JSON requests over an injected session and decodes the envelope."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

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
        try:
            async with self._session.request(
                method,
                url,
                params=dict(params) if params else None,
                data=data,
                headers=dict(headers or {}),
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection was never established, so nothing was sent: safe to report as transport.
            raise ImaTransportError(f"{label or 'IMA'}: could not connect ({type(exc).__name__})") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = type(exc).__name__
            if create:
                raise CreateOutcomeUnknown(
                    f"{label or 'create'}: the request was sent but no answer arrived ({reason})"
                ) from None
            raise ImaTransportError(f"{label or 'IMA'}: no answer ({reason})") from None
        log.debug("%s → HTTP %s (%d bytes)", what, status, len(raw))
        return decode_envelope(status, raw, create=create)
