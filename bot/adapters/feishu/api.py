"""Feishu Open API calls on the adapter's one aiohttp session: tenant token, messages, resources, uploads,
error mapping.

Why not lark-oapi's request methods: its async transport opens a new `httpx.AsyncClient` per call, and
building one loads the CA bundle into a fresh TLS context (38-47 ms of CPU, against well under 1 ms for
the request itself). Here every call reuses the session's connection pool. The requests are the ones
lark-oapi sends: same paths and query, same JSON bodies and multipart fields, same `uuid` idempotency keys,
`Authorization: Bearer <tenant token>`. lark-oapi stays for the long connection, event models and crypto.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.core import MessageGone, PlatformError

log = logging.getLogger(__name__)

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
BOT_INFO_PATH = "/open-apis/bot/v3/info"
MESSAGES_PATH = "/open-apis/im/v1/messages"
TOKEN_INVALID = frozenset({99991661, 99991663})
RATE_LIMITED = frozenset({99991400, 230020})
# Recalled (230011), older than 14 days (230031), deleted (230110): the card can no longer change.
GONE = frozenset({230011, 230031, 230110})
USER_AGENT = "imabot (aiohttp)"
JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait again on rate limits, 5xx and transport errors."""

    attempts: int = 3
    base: float = 1.0  # first backoff in seconds, doubled per attempt
    max_wait: float = 30.0


@dataclass(frozen=True)
class Resource:
    data: bytes
    content_type: str


@dataclass(frozen=True)
class Answer:
    """A successful raw answer: status, body bytes, its JSON object when it is one, headers."""

    status: int
    body: bytes
    parsed: dict[str, Any] | None
    headers: Mapping[str, str]

    def data(self) -> dict[str, Any]:
        """The envelope's `data` object ({} when absent)."""
        value = (self.parsed or {}).get("data")
        return value if isinstance(value, dict) else {}


def check_domain(domain: str) -> str:
    """Returns domain without a trailing slash; raises ValueError unless it is an https origin (http only
    for loopback), the rule lark-oapi applies, because the app secret and tokens travel to it."""
    origin = domain.rstrip("/")
    parts = urllib.parse.urlsplit(origin)
    loopback = parts.scheme == "http" and (parts.hostname or "") in ("127.0.0.1", "localhost", "::1")
    if not (parts.scheme == "https" or loopback):
        raise ValueError(f"feishu domain must be an https origin, not {domain!r}")
    if not parts.hostname or "@" in parts.netloc or parts.path or parts.query or parts.fragment:
        raise ValueError(f"feishu domain must be an origin (scheme and host only), not {domain!r}")
    return origin


def is_rate_limited(exc: PlatformError) -> bool:
    """Returns True when exc is Feishu's frequency limit (230020, 99991400 or HTTP 429)."""
    return exc.code in RATE_LIMITED or exc.status == 429


def _parse(body: bytes) -> dict[str, Any] | None:
    if body[:1] != b"{":
        return None  # binary answers (resources) are never parsed
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _judge(
    op: str, status: int, parsed: dict[str, Any] | None, headers: Mapping[str, str]
) -> PlatformError | None:
    code: int | None = None
    msg = ""
    if parsed is not None:
        code, msg = parsed.get("code"), str(parsed.get("msg") or "")
    if 200 <= status < 300 and not code:
        return None
    reset = {k.lower(): v for k, v in headers.items()}.get("x-ogw-ratelimit-reset")
    text = f"feishu {op} failed: status={status} code={code} msg={msg[:200]}"
    cls = MessageGone if code in GONE else PlatformError
    return cls(text, retry_after=_float(reset), status=status, code=code)


def error_of(op: str, status: int, body: bytes, headers: Mapping[str, str]) -> PlatformError | None:
    """Returns the PlatformError a raw Feishu answer means, or None for success.

    The one place that decides success vs. failure, for JSON and binary answers alike.
    """
    return _judge(op, status, _parse(body), headers)


def _float(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _retryable(exc: PlatformError) -> bool:
    return is_rate_limited(exc) or exc.status is None or exc.status >= 500


def _quote(value: str) -> str:
    # Path parameters are percent-encoded whole ('/', '?' and '#' included): no path or query injection.
    return urllib.parse.quote(value, safe="")


class TenantToken:
    """Fetches and caches the tenant_access_token with aiohttp, so the event loop never blocks."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        domain: str,
        app_id: str,
        app_secret: str,
        clock: Callable[[], float],
    ) -> None:
        self._session, self._url = session, domain.rstrip("/") + TOKEN_PATH
        self._credentials = {"app_id": app_id, "app_secret": app_secret}
        self._clock = clock
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self) -> str:
        """Returns a valid token, fetching one when missing or about to expire; raises PlatformError."""
        if self._token and self._clock() < self._expires_at:
            return self._token  # the common case: no lock, no await
        async with self._lock:  # one fetch for all the callers that found it missing
            if not self._token or self._clock() >= self._expires_at:
                await self._fetch()
            return self._token

    def invalidate(self, token: str) -> None:
        """Forgets token (the platform refused it); the next get() fetches a new one."""
        if token == self._token:
            self._token = ""

    async def _fetch(self) -> None:
        self.fetches += 1
        try:
            async with self._session.post(self._url, json=self._credentials) as resp:
                status, body = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PlatformError(f"feishu tenant token fetch failed: {type(exc).__name__}") from None
        err = error_of("tenant token", status, body, {})
        if err is not None:
            raise err
        data = json.loads(body)
        token, expire = str(data.get("tenant_access_token") or ""), float(data.get("expire") or 0)
        if not token:
            raise PlatformError("feishu tenant token answer has no token")
        # Refresh 5 min before expiry (half way for short-lived tokens), never mid-request.
        self._token, self._expires_at = token, self._clock() + max(0.0, expire - min(300.0, expire / 2))


class FeishuApi:
    """The Open API calls the adapter makes; each raises PlatformError / MessageGone on refusal.

    Every call goes through `session` (owned by the caller, open for the adapter's life). Rate limits,
    5xx and transport errors are retried per `retry`; an expired token is fetched again once.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        domain: str,
        app_id: str,
        app_secret: str,
        clock: Callable[[], float],
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self._base = check_domain(domain)
        self.token = TenantToken(
            session, domain=self._base, app_id=app_id, app_secret=app_secret, clock=clock
        )
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retry = retry

    async def _call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> Answer:
        """One request with the token, retries and error mapping; `form` builds a fresh multipart body
        per attempt (aiohttp consumes one when it is sent)."""
        url = self._base + path
        # Serialized once for all attempts; UTF-8 as is (not \\u-escaped), as lark-oapi's httpx sends it.
        payload = (
            None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        )
        refreshed = False
        attempt = 0
        while True:
            token = await self.token.get()
            headers = {"Authorization": "Bearer " + token, "User-Agent": USER_AGENT}
            if payload is not None:
                headers["Content-Type"] = JSON_TYPE
            try:
                data = form() if form is not None else payload
                async with self._session.request(
                    method, url, params=params, data=data, headers=headers, timeout=self._timeout
                ) as resp:
                    raw = await resp.read()
                    parsed = _parse(raw)
                    err = _judge(op, resp.status, parsed, resp.headers)
                    answer = Answer(resp.status, raw, parsed, resp.headers)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                err = PlatformError(f"feishu {op} failed: {type(exc).__name__}")
            if err is None:
                return answer
            if err.code in TOKEN_INVALID and not refreshed:
                refreshed = True  # the token expired mid-job: fetch a new one and retry once
                self.token.invalidate(token)
                continue
            if not _retryable(err) or attempt >= self._retry.attempts:
                raise err
            wait = err.retry_after if err.retry_after is not None else self._retry.base * 2**attempt
            attempt += 1
            log.info("feishu %s: %s; retrying in %.2fs", op, err, wait)
            await asyncio.sleep(min(wait, self._retry.max_wait))

    async def fetch_bot_open_id(self) -> str:
        """Returns the bot's own open_id (GET /open-apis/bot/v3/info)."""
        answer = await self._call("bot info", "GET", BOT_INFO_PATH)
        bot = (answer.parsed or {}).get("bot") or {}
        if not bot.get("open_id"):
            raise PlatformError("feishu bot info has no open_id: is the bot capability enabled?")
        return str(bot["open_id"])

    async def reply(
        self, message_id: str, msg_type: str, content: str, *, uuid: str, in_thread: bool = False
    ) -> str:
        """Replies to message_id; returns the new message id."""
        body: dict[str, Any] = {"content": content, "msg_type": msg_type, "uuid": uuid}
        if in_thread:
            body["reply_in_thread"] = True
        answer = await self._call("reply", "POST", f"{MESSAGES_PATH}/{_quote(message_id)}/reply", body=body)
        return str(answer.data().get("message_id"))

    async def create(self, chat_id: str, msg_type: str, content: str, *, uuid: str) -> str:
        """Posts a new message in chat_id; returns its id."""
        body = {"receive_id": chat_id, "msg_type": msg_type, "content": content, "uuid": uuid}
        answer = await self._call(
            "send", "POST", MESSAGES_PATH, params={"receive_id_type": "chat_id"}, body=body
        )
        return str(answer.data().get("message_id"))

    async def patch(self, message_id: str, content: str) -> None:
        """Replaces the card message_id with content; raises MessageGone when it cannot change any more."""
        await self._call("patch", "PATCH", f"{MESSAGES_PATH}/{_quote(message_id)}", body={"content": content})

    async def get_message(self, message_id: str) -> dict[str, Any]:
        """Returns one message as Feishu describes it (msg_type, body.content, sender, parent_id, ...)."""
        answer = await self._call("get message", "GET", f"{MESSAGES_PATH}/{_quote(message_id)}")
        items = answer.data().get("items") or [{}]
        return dict(items[0]) if isinstance(items[0], dict) else {}

    async def download_resource(self, message_id: str, key: str, *, kind: str = "image") -> Resource:
        """Returns the bytes and declared content type of a resource inside a user's message."""
        path = f"{MESSAGES_PATH}/{_quote(message_id)}/resources/{_quote(key)}"
        answer = await self._call("resource", "GET", path, params={"type": kind})
        return Resource(answer.body, answer.headers.get("Content-Type", ""))

    async def upload_image(self, data: bytes) -> str:
        """Uploads an image for use in messages; returns its image_key."""

        def form() -> aiohttp.FormData:
            fields = aiohttp.FormData()
            fields.add_field("image_type", "message")
            fields.add_field("image", data, filename="upload", content_type="application/octet-stream")
            return fields

        answer = await self._call("image upload", "POST", "/open-apis/im/v1/images", form=form)
        return str(answer.data().get("image_key"))

    async def upload_video(self, data: bytes, *, file_name: str = "video.mp4") -> str:
        """Uploads an mp4 (at most 30 MB); returns its file_key."""

        def form() -> aiohttp.FormData:
            fields = aiohttp.FormData()
            fields.add_field("file_type", "mp4")
            fields.add_field("file_name", file_name)
            fields.add_field("file", data, filename="upload", content_type="application/octet-stream")
            return fields

        answer = await self._call("file upload", "POST", "/open-apis/im/v1/files", form=form)
        return str(answer.data().get("file_key"))
