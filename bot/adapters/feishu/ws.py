"""The long-connection transport: lark's ws client isolated in its own daemon thread and event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import lark_oapi as lark
from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTriggerResponse
from lark_oapi.ws import client as ws_client

from .convert import MESSAGE_EVENT

log = logging.getLogger(__name__)

# Subscribed events the bot does not act on still get a 200 ack, so Feishu does not re-push them.
IGNORED_EVENTS = (
    "im.message.message_read_v1",
    "im.message.reaction.created_v1",
    "im.message.reaction.deleted_v1",
    "im.chat.access_event.bot_p2p_chat_entered_v1",
    "im.chat.member.bot.added_v1",
    "im.chat.member.bot.deleted_v1",
)


class EventRefused(RuntimeError):
    """Raised to the SDK for a push the bot cannot record now: the SDK acks it 500 (Feishu re-pushes)."""


def build_event_handler(
    on_event: Callable[[Any], None], on_card: Callable[[Any], P2CardActionTriggerResponse]
) -> lark.EventDispatcherHandler:
    """Returns the SDK dispatcher the long connection feeds: messages and card clicks to our callbacks."""
    builder = lark.EventDispatcherHandler.builder("", "")
    builder.register_p2_customized_event(MESSAGE_EVENT, on_event)
    builder.register_p2_card_action_trigger(on_card)
    # Schema 1.0 "message" events are handed on too, so the adapter can tell the operator.
    builder.register_p1_customized_event("message", on_event)
    for name in IGNORED_EVENTS:
        builder.register_p2_customized_event(name, lambda _e: None)
    return builder.build()


def to_raw(event: Any) -> dict[str, Any]:
    """Returns the event JSON an SDK event object carries (what the converter reads)."""
    return json.loads(lark.JSON.marshal(event))


class WsTransport:
    """Receives events over the long connection and hands each one to the bot's loop at once.

    lark_oapi.ws.client captures a module-global loop at import and its start() blocks forever; the
    SDK has no public stop(). So the client runs in a dedicated thread whose loop we install as that
    module global, and stop() cancels every task on that loop, closes the socket and lets the thread
    end. Limits: one long connection per process (the module global), and a stop() that arrives while
    the SDK sits in its blocking bootstrap POST waits for that POST (bounded by stop's timeout).
    """

    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        domain: str,
        deliver: Callable[[dict[str, Any]], None],
        toast: Callable[[], dict[str, Any]],
        on_failure: Callable[[BaseException], None],
        refuse: Callable[[], str] = lambda: "",
    ) -> None:
        self._app_id, self._app_secret, self._domain = app_id, app_secret, domain
        self._deliver, self._toast, self._on_failure = deliver, toast, on_failure
        # Why events cannot be recorded now ("" when they can); read on the client thread (a str).
        self._refuse = refuse
        self._main: asyncio.AbstractEventLoop | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: ws_client.Client | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._shutdown_task: asyncio.Task[None] | None = None
        self._closing = False  # set on the client thread once _run winds down

    @property
    def connected(self) -> bool:
        client = self._client
        # _conn is the SDK's private socket attribute: the only sign of a live connection it gives.
        return bool(self._thread and self._thread.is_alive() and client and client._conn is not None)

    def start(self, main_loop: asyncio.AbstractEventLoop) -> None:
        """Starts the client thread; events go to deliver() on main_loop."""
        self._main = main_loop
        self._thread = threading.Thread(target=self._run, name="feishu-ws", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Blocks until the client thread has ended (or timeout); call it through asyncio.to_thread."""
        self._stopping = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._begin_shutdown)
            except RuntimeError:
                pass  # the loop already closed
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("feishu long connection thread did not stop within %.1fs", timeout)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        previous, ws_client.loop = ws_client.loop, loop
        self._loop = loop
        try:
            self._client = ws_client.Client(
                self._app_id,
                self._app_secret,
                event_handler=build_event_handler(self._on_event, self._on_card),
                domain=self._domain,
                log_level=lark.LogLevel.WARNING,
            )
            if not self._stopping:
                self._client.start()
        except BaseException as exc:
            if not self._stopping and self._main is not None:
                self._report(exc)
        finally:
            # From here on a late stop() adds no task (one created while the loop winds down would be
            # destroyed pending); the shutdown runs here instead, closing the socket before the rest.
            self._closing = True
            closing = self._shutdown_task or loop.create_task(self._shutdown())
            loop.run_until_complete(asyncio.gather(closing, return_exceptions=True))
            for _ in range(5):  # SDK tasks may still spawn others while the first ones wind down
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                if not asyncio.all_tasks(loop):
                    break
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            ws_client.loop = previous

    def _report(self, exc: BaseException) -> None:
        try:
            self._main.call_soon_threadsafe(self._on_failure, exc)  # type: ignore[union-attr]
        except RuntimeError:
            log.warning("feishu long connection failed after the bot loop closed: %s", type(exc).__name__)

    def _begin_shutdown(self) -> None:
        assert self._loop is not None
        if self._closing or self._shutdown_task is not None:
            return
        self._shutdown_task = self._loop.create_task(self._shutdown())

    async def _shutdown(self) -> None:
        client = self._client
        if client is not None:
            client._auto_reconnect = False  # private, but the SDK offers no other way to stop
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        conn = client._conn if client is not None else None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except Exception as exc:
                log.debug("feishu long connection close: %s", type(exc).__name__)

    # The SDK calls these on the client thread; the ack goes out as soon as they return.
    def _on_event(self, event: lark.CustomizedEvent) -> None:
        self._hand_off(event)

    def _on_card(self, event: Any) -> P2CardActionTriggerResponse:
        self._hand_off(event)
        return P2CardActionTriggerResponse({"toast": self._toast()})

    def _hand_off(self, event: Any) -> None:
        # A push the bot cannot record now (the store fails writes) is refused, not acked: the SDK acks
        # 500 and Feishu pushes it again later, as the webhook's 503 does.
        if reason := self._refuse():
            log.warning("feishu event not accepted, the bot cannot record it now: %s", reason)
            raise EventRefused("cannot record events now")
        # Raises RuntimeError once the bot loop is closed: the SDK then acks 500 and Feishu re-pushes.
        # The event becomes JSON on the bot's loop, not here: the SDK reads frames one by one and acks
        # each when this returns, so work done here delays every later ack of a burst.
        self._main.call_soon_threadsafe(self._deliver_event, event)  # type: ignore[union-attr]

    def _deliver_event(self, event: Any) -> None:
        self._deliver(to_raw(event))
