"""FeishuAdapter: lifecycle, the two event transports (long connection, webhook) and attachments."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from bot.core import (
    ActionIntent,
    Attachment,
    AttachmentRejected,
    GenerationIntent,
    IntentHandler,
    Notice,
    NoticeKind,
    Origin,
    PlatformError,
)

from . import webhook
from .api import FeishuApi, RetryPolicy
from .convert import (
    CARD_ACTION_EVENT,
    LEGACY_CARD,
    LEGACY_EVENT,
    Context,
    Unsupported,
    event_type,
    legacy_kind,
    quoted_message,
    sniff_image,
    split_handle,
    to_intent,
)
from .forms import continue_card, wants_form
from .outbox import Outbox
from .settings import TRANSPORTS, FeishuSettings
from .ws import WsTransport

__all__ = ["FeishuAdapter", "FeishuSettings"]

log = logging.getLogger(__name__)

MAX_CONCURRENT_INTENTS = 16
INTAKE_DRAIN_S = 10.0  # how long a graceful stop waits for acked events to reach the handler
# Said once per process and kind: what the operator must change in the Feishu developer console.
LEGACY_WARNINGS = {
    LEGACY_EVENT: (
        "feishu sent a schema 1.0 event (the old 'Receive message' v1.0 event), which imabot does not read: "
        "in the Feishu developer console, Events & Callbacks → Event Configuration, remove the v1.0 "
        "'Receive message' event and add 'Message received' (im.message.receive_v1, v2.0)"
    ),
    LEGACY_CARD: (
        "feishu sent an old-style message-card callback (the card request URL), which imabot does not read: "
        "in the Feishu developer console, Events & Callbacks → Callback Configuration, subscribe to "
        "'card.action.trigger' (card interaction, new version) and clear the old card request URL"
    ),
}


class FeishuAdapter:
    """Feishu/Lark bot: group @-mentions and DMs in, one patched interactive card per job out."""

    platform = "feishu"
    # The result replaces the job's card (the pipeline edits it to the final state instead of posting).
    final_in_place = True

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
        self._outbox = Outbox(settings, texts, clock)
        self._session: aiohttp.ClientSession | None = None
        self._ctx: Context | None = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        # Why events cannot be recorded now ("" when they can): the webhook then answers 503 instead of
        # acking, so Feishu pushes the event again later (the App points it at the store's health).
        self.refuse_reason: Callable[[], str] = lambda: ""
        self._ws: WsTransport | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_INTENTS)
        self._started, self._stopping, self._done = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self._intake_closed = False  # stop_intake(): no event is taken any more
        self._running = False
        self._fatal: BaseException | None = None
        self._toast: dict[str, Any] = {}
        self._warned: set[str] = set()
        # Feishu events carry no locale: the adapter's own texts without user text use the domain's language.
        self.default_locale = "en" if "larksuite" in settings.domain else "zh"

    @property
    def connected(self) -> bool:
        if not self._started.is_set() or self._stopping.is_set() or self._intake_closed:
            return False
        return self._ws.connected if self._ws is not None else True

    async def wait_started(self) -> None:
        """Returns once run() has a token, the bot's identity and a transport listening."""
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
            api = FeishuApi(
                self._session,
                domain=s.domain,
                app_id=s.app_id,
                app_secret=s.app_secret,
                clock=self._clock,
                timeout=s.http_timeout,
                retry=retry,
            )
            self._outbox.attach(api, self._session)
            self._ctx = Context(await api.fetch_bot_open_id(), s.chat_allowlist)
            en, zh = self._texts("feishu.toast", "en"), self._texts("feishu.toast", "zh")
            self._toast = {
                "type": "info",
                "content": zh if self.default_locale == "zh" else en,
                "i18n": {"zh_cn": zh, "en_us": en},
            }
            self._queue = asyncio.Queue()
            self._spawn(self._consume(handler))
            if s.transport == "ws":
                self._ws = WsTransport(
                    app_id=s.app_id,
                    app_secret=s.app_secret,
                    domain=s.domain,
                    deliver=self._enqueue,
                    toast=lambda: self._toast,
                    on_failure=self._fail,
                    refuse=lambda: self.refuse_reason(),  # read on the client thread: the store's str
                )
                self._ws.start(asyncio.get_running_loop())
            elif not (s.encrypt_key or s.verification_token):
                log.warning(
                    "feishu webhook has no encrypt_key and no verification_token: anyone can post events"
                )
            self._started.set()
            log.info("feishu adapter ready (%s)", s.transport)  # operators and tests wait on this line
            await self._stopping.wait()
            if self._fatal is not None:
                raise PlatformError(f"feishu long connection failed: {type(self._fatal).__name__}")
        finally:
            await self._teardown()

    async def stop_intake(self, drain: float = INTAKE_DRAIN_S) -> None:
        """Takes no new event: the long connection closes (Feishu then hands events to another replica's
        connection, or holds them), the webhook answers 503 (Feishu pushes the event again). Events acked
        already are handed on first (up to `drain` seconds): nothing acked is dropped. Sends and edits
        keep working until close(). Idempotent."""
        if self._intake_closed:
            return
        self._intake_closed = True
        if self._ws is not None:
            ws, self._ws = self._ws, None
            await asyncio.to_thread(ws.stop)
        queue = self._queue
        if queue is not None:
            try:
                async with asyncio.timeout(drain):
                    await queue.join()
            except TimeoutError:
                log.warning(
                    "feishu: %d acked events not handled within %.0f s of the stop", queue.qsize(), drain
                )

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
        self._outbox.attach(None, None)
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
            log.error("feishu intent handling failed", exc_info=task.exception())

    # ---- intake ----------------------------------------------------------------------------------

    def _enqueue(self, raw: dict[str, Any]) -> None:
        # All an ack waits for: Feishu re-pushes what is not acked within 3 s.
        if self._queue is not None:
            self._queue.put_nowait(raw)

    async def _consume(self, handler: IntentHandler) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            self._spawn(self._process(await queue.get(), handler, queue))

    async def _process(
        self, raw: dict[str, Any], handler: IntentHandler, queue: asyncio.Queue[dict[str, Any]]
    ) -> None:
        try:
            await self._handle(raw, handler)
        finally:
            queue.task_done()  # stop_intake() waits for every queued event to get here

    async def _handle(self, raw: dict[str, Any], handler: IntentHandler) -> None:
        async with self._limit:
            assert self._ctx is not None
            intent = to_intent(raw, self._ctx)
            if intent is None:
                self._warn_legacy(legacy_kind(raw))
                return
            if isinstance(intent, Unsupported):
                loc = self.default_locale
                notice = Notice(NoticeKind.ERROR, "", (self._texts("feishu.unsupported", loc),), locale=loc)
                await self._answer(intent.origin, notice, f"unsupported:{intent.origin.message_id}")
                return
            if isinstance(intent, ActionIntent) and wants_form(raw):  # issue 14: Continue ▶ asks first
                await self._open_form(intent)
                return
            if (
                isinstance(intent, GenerationIntent)
                and intent.reply_to is not None
                and not intent.attachments
            ):
                intent = await self._with_quoted(intent)
            notice = await handler(intent)
            if notice is not None:
                await self._answer(intent.origin, notice, "answer:" + ",".join(intent.event_keys))

    async def _open_form(self, intent: ActionIntent) -> None:
        """Answers a press on Continue ▶ with the card asking what happens next (forms.py); its submit
        comes back as the press with the typed text. Keyed by the event, so a redelivery posts nothing."""
        card = continue_card(intent.job_id, self._texts, self.default_locale)
        key = "form:" + ",".join(intent.event_keys)
        try:
            await self._outbox.send_card(intent.origin, card, key=key)
        except PlatformError as exc:
            log.warning("feishu continue form not delivered: %s", exc)

    def _warn_legacy(self, kind: str) -> None:
        if kind and kind not in self._warned:
            self._warned.add(kind)
            log.warning(LEGACY_WARNINGS[kind])

    async def _with_quoted(self, intent: GenerationIntent) -> GenerationIntent:
        """intent with the message it replies to fetched (text and images); as it was when that fails."""
        assert intent.reply_to is not None
        parent = intent.reply_to.message_id
        try:
            item = await self._outbox.api().get_message(parent)
        except PlatformError as exc:
            log.info("feishu quoted message %s not readable: %s", parent, exc)
            return intent
        return replace(intent, reply_to=quoted_message(item, parent))

    async def _answer(self, origin: Origin, notice: Notice, key: str) -> None:
        try:
            await self.send(origin, notice, key=key)
        except PlatformError as exc:
            log.warning("feishu answer not delivered: %s", exc)

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """The /feishu/events route: checks the push, queues the event and acks at once."""
        s = self._settings
        if s.transport != "webhook":
            return web.json_response({"msg": "webhook transport disabled"}, status=404)
        body = await request.read()
        if _legacy_card_callback(body):
            # Its `token` is a per-click update token, not the verification token: checking it would
            # answer 401 "invalid verification token" and hide the real cause.
            self._warn_legacy(LEGACY_CARD)
            return web.json_response({})
        try:
            payload = webhook.open_envelope(
                body,
                request.headers,
                encrypt_key=s.encrypt_key,
                verification_token=s.verification_token,
                now=time.time(),
                max_age=s.webhook_max_age,  # wall time: Feishu stamps Unix seconds
            )
        except webhook.Rejected as exc:
            log.warning("feishu webhook rejected: %s", exc.reason)
            return web.json_response({"msg": exc.reason}, status=exc.status)
        if webhook.is_challenge(payload):
            return web.json_response({"challenge": str(payload.get("challenge") or "")})
        if self._queue is None or self._intake_closed:  # Feishu pushes it again later
            return web.json_response({"msg": "stopping" if self._intake_closed else "starting"}, status=503)
        if reason := self.refuse_reason():
            log.warning("feishu event not accepted, the bot cannot record it now: %s", reason)
            return web.json_response({"msg": "cannot record events now"}, status=503)
        self._enqueue(payload)
        if event_type(payload) == CARD_ACTION_EVENT:
            return web.json_response({"toast": self._toast})
        return web.json_response({"msg": "success"})

    # ---- Messenger -------------------------------------------------------------------------------

    async def send(self, origin: Origin, notice: Notice, *, key: str) -> str:
        """Posts notice as a card replying to the user's message; returns the card's message id.

        key becomes the send's `uuid` (hashed past 50 chars), so a retried send never posts twice.
        Raises PlatformError when Feishu refuses.
        """
        return await self._outbox.send(origin, notice, key=key)

    async def edit(self, origin: Origin, ref: str, notice: Notice) -> str:
        """Patches card ref (paced per card; progress inside min_patch_interval and repeats skipped).

        Returns the card now showing notice: ref, or a new card when a final patch was refused.
        Raises MessageGone when the card was recalled, deleted or is over 14 days old.
        """
        return await self._outbox.edit(origin, ref, notice)

    async def read_attachment(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """Returns the bytes of an image in a user's message; raises AttachmentRejected."""
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
            resource = await self._outbox.api().download_resource(message_id, key, kind="image")
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


def _legacy_card_callback(body: bytes) -> bool:
    """Whether a webhook body is an old-style (unencrypted) message-card callback."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # deep nesting: open_envelope answers 400
        return False
    return isinstance(payload, dict) and legacy_kind(payload) == LEGACY_CARD
