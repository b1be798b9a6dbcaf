"""FeishuAdapter: lifecycle, the two event transports, and the Messenger side (cards, patches, media)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.core import (
    Attachment,
    AttachmentRejected,
    IntentHandler,
    MessageGone,
    Notice,
    NoticeKind,
    Origin,
    PlatformError,
)

from . import render, webhook
from .api import FeishuApi, RetryPolicy
from .convert import CARD_ACTION_EVENT, Context, Unsupported, event_type, sniff_image, split_handle, to_intent
from .pacing import PatchGates
from .ws import WsTransport

log = logging.getLogger(__name__)

TRANSPORTS = ("ws", "webhook")
FINAL = frozenset({NoticeKind.SUCCESS, NoticeKind.FAILURE, NoticeKind.CANCELLED})
MAX_COVER_BYTES = 10 * 1024 * 1024  # im/v1/images limit
MAX_VIDEO_BYTES = 30 * 1024 * 1024  # im/v1/files limit
MAX_CONCURRENT_INTENTS = 16


@dataclass(frozen=True)
class FeishuSettings:
    app_id: str
    app_secret: str = field(repr=False)
    domain: str = "https://open.feishu.cn"
    transport: str = "ws"  # "ws" | "webhook"
    encrypt_key: str = field(default="", repr=False)
    verification_token: str = field(default="", repr=False)
    chat_allowlist: frozenset[str] = frozenset()  # chat ids or user open_ids; empty admits all
    send_video_file: bool = False  # also post the mp4 as an in-chat video when it is <= 30 MB
    max_image_bytes: int = 20 * 1024 * 1024
    min_patch_interval: float = 10.0  # progress patches closer than this (per card) are dropped
    patch_floor: float = 0.25  # any two patches of one card are at least this far apart (5/s limit)
    retry_base: float = 1.0  # first backoff on rate limits / 5xx, doubled per attempt
    retry_attempts: int = 3
    notify_on_finish: bool = True  # a short reply pinging the user when a patched card turns final
    http_timeout: float = 30.0


class FeishuAdapter:
    """Feishu/Lark bot: group @-mentions and DMs in, one patched interactive card per job out."""

    platform = "feishu"

    def __init__(
        self,
        settings: FeishuSettings,
        *,
        texts: Callable[..., str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if settings.transport not in TRANSPORTS:
            raise ValueError(f"feishu.transport must be one of {TRANSPORTS}, not {settings.transport!r}")
        self._settings, self._texts, self._clock = settings, texts, clock
        self._gates = PatchGates(clock, min_interval=settings.min_patch_interval, floor=settings.patch_floor)
        self._covers: OrderedDict[str, str] = OrderedDict()
        self._labels: dict[str, dict[str, str]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._api: FeishuApi | None = None
        self._ctx: Context | None = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._ws: WsTransport | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_INTENTS)
        self._started, self._stopping, self._done = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._running = False
        self._fatal: BaseException | None = None
        self._toast_body: dict[str, Any] = {}
        # Feishu events carry no locale: adapter-own texts without user text use the domain's language.
        self.default_locale = "en" if "larksuite" in settings.domain else "zh"

    @property
    def connected(self) -> bool:
        if not self._started.is_set() or self._stopping.is_set():
            return False
        return self._ws.connected if self._ws is not None else True

    async def wait_started(self) -> None:
        """Returns once run() has the token, the bot identity and a transport listening."""
        await self._started.wait()

    # ---- lifecycle -------------------------------------------------------------------------------

    async def run(self, handler: IntentHandler) -> None:
        """Connects and delivers intents to handler until close(); raises PlatformError on a fatal start."""
        if self._running:
            raise RuntimeError("FeishuAdapter.run() is already running")
        self._running, s = True, self._settings
        self._done.clear()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=s.http_timeout))
        try:
            retry = RetryPolicy(attempts=s.retry_attempts, base=s.retry_base)
            self._api = FeishuApi(
                self._session,
                domain=s.domain,
                app_id=s.app_id,
                app_secret=s.app_secret,
                clock=self._clock,
                timeout=s.http_timeout,
                retry=retry,
            )
            self._ctx = Context(await self._api.fetch_bot_open_id(), s.chat_allowlist)
            self._toast_body = self._make_toast()
            self._queue = asyncio.Queue()
            self._spawn(self._consume(handler))
            if s.transport == "ws":
                self._ws = WsTransport(
                    app_id=s.app_id,
                    app_secret=s.app_secret,
                    domain=s.domain,
                    deliver=self._enqueue,
                    toast=lambda: self._toast_body,
                    on_failure=self._fail,
                )
                self._ws.start(asyncio.get_running_loop())
            elif not (s.encrypt_key or s.verification_token):
                log.warning(
                    "feishu webhook has no encrypt_key and no verification_token: anyone can post events"
                )
            self._started.set()
            await self._stopping.wait()
            if self._fatal is not None:
                raise PlatformError(f"feishu long connection failed: {type(self._fatal).__name__}")
        finally:
            await self._teardown()

    async def close(self) -> None:
        """Stops run() and releases the socket, thread, tasks and HTTP session; idempotent."""
        self._stopping.set()
        if self._running:
            await self._done.wait()

    async def _teardown(self) -> None:
        self._started.clear()
        self._queue = None
        if self._ws is not None:
            await asyncio.to_thread(self._ws.stop)
            self._ws = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._running = False
        self._done.set()

    def _fail(self, exc: BaseException) -> None:
        self._fatal = exc
        self._stopping.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("feishu task failed", exc_info=task.exception())

    # ---- intake ----------------------------------------------------------------------------------

    def _enqueue(self, raw: dict[str, Any]) -> None:
        # The only thing an ack waits for: Feishu re-pushes events not acked within 3 s.
        if self._queue is not None:
            self._queue.put_nowait(raw)

    async def _consume(self, handler: IntentHandler) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            self._spawn(self._process(await queue.get(), handler))

    async def _process(self, raw: dict[str, Any], handler: IntentHandler) -> None:
        async with self._limit:
            assert self._ctx is not None
            intent = to_intent(raw, self._ctx)
            if intent is None:
                return
            if isinstance(intent, Unsupported):
                loc = self.default_locale
                notice = Notice(NoticeKind.ERROR, "", (self._texts("feishu.unsupported", loc),), locale=loc)
                await self._answer(intent.origin, notice, f"unsupported:{intent.origin.message_id}")
                return
            notice = await handler(intent)
            if notice is not None:
                await self._answer(intent.origin, notice, "answer:" + ",".join(intent.event_keys))

    async def _answer(self, origin: Origin, notice: Notice, key: str) -> None:
        try:
            await self.send(origin, notice, key=key)
        except PlatformError as exc:
            log.warning("feishu answer not delivered: %s", exc)

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """The /feishu/events route: checks, then queues the event and acks at once."""
        s = self._settings
        if s.transport != "webhook":
            return web.json_response({"msg": "webhook transport disabled"}, status=404)
        body = await request.read()
        try:
            payload = webhook.open_envelope(
                body, request.headers, encrypt_key=s.encrypt_key, verification_token=s.verification_token
            )
        except webhook.Rejected as exc:
            log.warning("feishu webhook rejected: %s", exc.reason)
            return web.json_response({"msg": exc.reason}, status=exc.status)
        if webhook.is_challenge(payload):
            return web.json_response({"challenge": str(payload.get("challenge") or "")})
        if self._queue is None:
            return web.json_response({"msg": "starting"}, status=503)  # Feishu retries later
        self._enqueue(payload)
        if event_type(payload) == CARD_ACTION_EVENT:
            return web.json_response({"toast": self._toast_body})
        return web.json_response({"msg": "success"})

    def _make_toast(self) -> dict[str, Any]:
        en, zh = self._texts("feishu.toast", "en"), self._texts("feishu.toast", "zh")
        shown = zh if self.default_locale == "zh" else en
        return {"type": "info", "content": shown, "i18n": {"zh_cn": zh, "en_us": en}}

    # ---- Messenger -------------------------------------------------------------------------------

    async def send(self, origin: Origin, notice: Notice, *, key: str) -> str:
        """Posts notice as a card replying to the user's message; returns the card's message id."""
        content = render.content_of(await self._card(notice))
        ref = await self._post(origin, "interactive", content, uuid=render.uuid_for(key))
        self._gates.shown(ref, render.digest(content))
        if notice.kind in FINAL:
            await self._finish(origin, ref, notice, ping=False)
        return ref

    async def edit(self, origin: Origin, ref: str, notice: Notice) -> str:
        """Patches card ref (paced per card); raises MessageGone when it can no longer change."""
        content = render.content_of(await self._card(notice))
        digest = render.digest(content)
        state = self._gates.state(ref)
        async with state.lock:
            wait = self._gates.plan(state, digest, droppable=notice.kind is NoticeKind.PROGRESS)
            if wait is None:
                return ref
            if wait:
                await asyncio.sleep(wait)
            await self._require_api().patch(ref, content)
            self._gates.shown(ref, digest)
        if notice.kind in FINAL:
            await self._finish(origin, ref, notice, ping=True)
        return ref

    async def read_attachment(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """Downloads an image of a user's message; raises AttachmentRejected."""
        cap = min(max_bytes, self._settings.max_image_bytes)
        name = attachment.filename or attachment.handle.rpartition("/")[2]

        def too_large(size: int) -> AttachmentRejected:
            mb = 1024 * 1024
            return AttachmentRejected(
                "attachment_too_large", name=name, size_mb=round(size / mb, 1), limit_mb=round(cap / mb, 1)
            )

        if attachment.size is not None and attachment.size > cap:
            raise too_large(attachment.size)
        try:
            message_id, key = split_handle(attachment.handle)
            resource = await self._require_api().download_resource(message_id, key, kind="image")
        except (ValueError, PlatformError) as exc:
            raise AttachmentRejected(
                "attachment_download_failed", f"feishu resource: {exc}", name=name
            ) from None
        if len(resource.data) > cap:
            raise too_large(len(resource.data))
        if not sniff_image(resource.data):
            declared = resource.content_type or "no content type"
            raise AttachmentRejected("attachment_not_image", f"feishu resource is {declared}", name=name)
        return resource.data

    # ---- helpers ---------------------------------------------------------------------------------

    def _require_api(self) -> FeishuApi:
        if self._api is None:
            raise PlatformError("feishu adapter is not running")
        return self._api

    def _labels_for(self, locale: str) -> dict[str, str]:
        if locale not in self._labels:
            self._labels[locale] = {k: self._texts(f"feishu.{k}", locale) for k in render.LABEL_KEYS}
        return self._labels[locale]

    async def _card(self, notice: Notice) -> dict[str, Any]:
        image_key = await self._cover_key(notice.cover_url) if notice.cover_url else ""
        return render.render_card(notice, self._labels_for(notice.locale), image_key=image_key)

    async def _post(self, origin: Origin, msg_type: str, content: str, *, uuid: str) -> str:
        api = self._require_api()
        if origin.message_id:
            try:
                return await api.reply(
                    origin.message_id,
                    msg_type,
                    content,
                    uuid=uuid,
                    in_thread=bool(origin.extra.get("thread_id")),
                )
            except MessageGone:
                log.info("feishu reply target %s is gone; posting in the chat", origin.message_id)
        return await api.create(origin.chat_id, msg_type, content, uuid=uuid)

    async def _finish(self, origin: Origin, ref: str, notice: Notice, *, ping: bool) -> None:
        state = self._gates.state(ref)
        if state.finished:
            return
        state.finished = True
        stem = notice.job_id or ref
        try:
            sent_video = notice.kind is NoticeKind.SUCCESS and await self._send_video(origin, notice, stem)
            if (
                ping
                and not sent_video
                and self._settings.notify_on_finish
                and notice.kind is not NoticeKind.CANCELLED
            ):
                text = self._texts(f"feishu.ping.{notice.kind.value}", notice.locale)
                who = "" if origin.is_direct else notice.mention_user_id or origin.user_id
                await self._post(
                    origin, "text", render.text_content(text, who), uuid=render.uuid_for(f"{stem}:ping")
                )
        except PlatformError as exc:
            log.warning("feishu follow-up for %s not delivered: %s", stem, exc)

    async def _send_video(self, origin: Origin, notice: Notice, stem: str) -> bool:
        if not (self._settings.send_video_file and notice.video_url):
            return False
        data = await self._download(notice.video_url, MAX_VIDEO_BYTES)
        if data is None:
            return False
        file_key = await self._require_api().upload_video(data)
        image_key = await self._cover_key(notice.cover_url) if notice.cover_url else ""
        content = render.media_content(file_key, image_key)
        await self._post(origin, "media", content, uuid=render.uuid_for(f"{stem}:media"))
        return True

    async def _cover_key(self, url: str) -> str:
        """Returns the image_key of an uploaded cover ("" when it cannot be had: the card omits it)."""
        if url in self._covers:
            return self._covers[url]
        data = await self._download(url, MAX_COVER_BYTES)
        key = ""
        if data is not None and sniff_image(data):
            try:
                key = await self._require_api().upload_image(data)
            except PlatformError as exc:
                log.warning("feishu cover upload failed: %s", exc)
        self._covers[url] = key
        while len(self._covers) > 256:
            self._covers.popitem(last=False)
        return key

    async def _download(self, url: str, cap: int) -> bytes | None:
        """Returns the bytes at url, or None when it fails or exceeds cap bytes."""
        if self._session is None:
            return None
        try:
            async with self._session.get(url) as resp:
                if resp.status != 200 or (resp.content_length or 0) > cap:
                    return None
                data = bytearray()
                async for chunk in resp.content.iter_chunked(1 << 16):
                    data += chunk
                    if len(data) > cap:
                        return None
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("feishu download of a result file failed: %s", type(exc).__name__)
            return None
