"""Feishu Open API calls through lark-oapi: tenant token, messages, resources, uploads, error mapping."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import lark_oapi as lark
from lark_oapi.api.im.v1 import (
    CreateFileRequest,
    CreateFileRequestBody,
    CreateImageRequest,
    CreateImageRequestBody,
    CreateMessageRequest,
    CreateMessageRequestBody,
    GetMessageResourceRequest,
    PatchMessageRequest,
    PatchMessageRequestBody,
    ReplyMessageRequest,
    ReplyMessageRequestBody,
)

from bot.core import MessageGone, PlatformError

log = logging.getLogger(__name__)

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
BOT_INFO_PATH = "/open-apis/bot/v3/info"
TOKEN_INVALID = frozenset({99991661, 99991663})
RATE_LIMITED = frozenset({99991400, 230020})
# Recalled (230011), older than 14 days (230031), deleted (230110): the card can no longer change.
GONE = frozenset({230011, 230031, 230110})


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


def is_rate_limited(exc: PlatformError) -> bool:
    """Returns True when exc is Feishu's frequency limit (230020, 99991400 or HTTP 429)."""
    return exc.code in RATE_LIMITED or exc.status == 429


def error_of(op: str, status: int, body: bytes, headers: Mapping[str, str]) -> PlatformError | None:
    """Returns the PlatformError a raw Feishu answer means, or None for success.

    The one place that decides success vs. failure, for JSON and binary answers alike.
    """
    code: int | None = None
    msg = ""
    try:
        parsed = json.loads(body) if body[:1] == b"{" else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        code, msg = parsed.get("code"), str(parsed.get("msg") or "")
    if 200 <= status < 300 and not code:
        return None
    reset = {k.lower(): v for k, v in headers.items()}.get("x-ogw-ratelimit-reset")
    retry_after = _float(reset)
    text = f"feishu {op} failed: status={status} code={code} msg={msg[:200]}"
    cls = MessageGone if code in GONE else PlatformError
    return cls(text, retry_after=retry_after, status=status, code=code)


def _float(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _retryable(exc: PlatformError) -> bool:
    return is_rate_limited(exc) or exc.status is None or exc.status >= 500


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
        async with self._lock:
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
            # Never hand the SDK an empty token: it would fall back to its own blocking fetch.
            raise PlatformError("feishu tenant token answer has no token")
        # Refresh 5 min before expiry (half way for short-lived tokens), never mid-request.
        self._token, self._expires_at = token, self._clock() + max(0.0, expire - min(300.0, expire / 2))


class FeishuApi:
    """The Open API calls the adapter makes; each raises PlatformError / MessageGone on refusal."""

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
        self.token = TenantToken(session, domain=domain, app_id=app_id, app_secret=app_secret, clock=clock)
        # enable_set_token: the SDK's own token fetch is blocking `requests`; we pass ours per call.
        self._client = (
            lark.Client.builder()
            .app_id(app_id)
            .app_secret(app_secret)
            .domain(domain)
            .enable_set_token(True)
            .timeout(timeout)
            .log_level(lark.LogLevel.WARNING)
            .build()
        )
        self._retry = retry

    async def _call(self, op: str, fn: Callable[[lark.RequestOption], Awaitable[Any]]) -> Any:
        refreshed = False
        attempt = 0
        while True:
            token = await self.token.get()
            option = lark.RequestOption.builder().tenant_access_token(token).build()
            try:
                resp = await fn(option)
                raw = resp.raw
                err = error_of(op, raw.status_code, raw.content or b"", raw.headers or {})
            except Exception as exc:  # the SDK raises whatever httpx or its JSON parser raise
                resp, err = None, PlatformError(f"feishu {op} failed: {type(exc).__name__}")
            if err is None:
                return resp
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
        request = (
            lark.BaseRequest.builder()
            .http_method(lark.HttpMethod.GET)
            .uri(BOT_INFO_PATH)
            .token_types({lark.AccessTokenType.TENANT})
            .build()
        )
        resp = await self._call("bot info", lambda o: self._client.arequest(request, o))
        bot = json.loads(resp.raw.content).get("bot") or {}
        if not bot.get("open_id"):
            raise PlatformError("feishu bot info has no open_id: is the bot capability enabled?")
        return str(bot["open_id"])

    async def reply(
        self, message_id: str, msg_type: str, content: str, *, uuid: str, in_thread: bool = False
    ) -> str:
        """Replies to message_id; returns the new message id."""
        body = ReplyMessageRequestBody.builder().msg_type(msg_type).content(content).uuid(uuid)
        if in_thread:
            body = body.reply_in_thread(True)
        request = ReplyMessageRequest.builder().message_id(message_id).request_body(body.build()).build()
        resp = await self._call("reply", lambda o: self._client.im.v1.message.areply(request, o))
        return str(resp.data.message_id)

    async def create(self, chat_id: str, msg_type: str, content: str, *, uuid: str) -> str:
        """Posts a new message in chat_id; returns its id."""
        body = (
            CreateMessageRequestBody.builder()
            .receive_id(chat_id)
            .msg_type(msg_type)
            .content(content)
            .uuid(uuid)
        )
        request = CreateMessageRequest.builder().receive_id_type("chat_id").request_body(body.build()).build()
        resp = await self._call("send", lambda o: self._client.im.v1.message.acreate(request, o))
        return str(resp.data.message_id)

    async def patch(self, message_id: str, content: str) -> None:
        """Replaces the card message_id with content; raises MessageGone when it cannot change any more."""
        body = PatchMessageRequestBody.builder().content(content).build()
        request = PatchMessageRequest.builder().message_id(message_id).request_body(body).build()
        await self._call("patch", lambda o: self._client.im.v1.message.apatch(request, o))

    async def download_resource(self, message_id: str, key: str, *, kind: str = "image") -> Resource:
        """Returns the bytes and declared content type of a resource inside a user's message."""
        request = GetMessageResourceRequest.builder().message_id(message_id).file_key(key).type(kind).build()
        # aget loses the headers' case and the error body; error_of reads resp.raw itself.
        resp = await self._call("resource", lambda o: self._client.im.v1.message_resource.aget(request, o))
        headers = {k.lower(): v for k, v in (resp.raw.headers or {}).items()}
        return Resource(resp.raw.content or b"", headers.get("content-type", ""))

    async def upload_image(self, data: bytes) -> str:
        """Uploads an image for use in messages; returns its image_key."""

        def call(option: lark.RequestOption) -> Awaitable[Any]:
            body = CreateImageRequestBody.builder().image_type("message").image(io.BytesIO(data)).build()
            return self._client.im.v1.image.acreate(
                CreateImageRequest.builder().request_body(body).build(), option
            )

        resp = await self._call("image upload", call)
        return str(resp.data.image_key)

    async def upload_video(self, data: bytes, *, file_name: str = "video.mp4") -> str:
        """Uploads an mp4 (at most 30 MB); returns its file_key."""

        def call(option: lark.RequestOption) -> Awaitable[Any]:
            body = (
                CreateFileRequestBody.builder()
                .file_type("mp4")
                .file_name(file_name)
                .file(io.BytesIO(data))
                .build()
            )
            return self._client.im.v1.file.acreate(
                CreateFileRequest.builder().request_body(body).build(), option
            )

        resp = await self._call("file upload", call)
        return str(resp.data.file_key)
