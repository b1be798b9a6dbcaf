"""Feishu's pushing side: payload builders, the long-connection server (protobuf frames), a webhook poster."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from Crypto.Cipher import AES
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

APP_ID = "cli_test_app"
BOT_OPEN_ID = "ou_bot000000000000000000000000000"
_ids = itertools.count(1)


def _next(prefix: str) -> str:
    return f"{prefix}{next(_ids):08d}{os.urandom(4).hex()}"


# ---- payload builders (pure: they return dicts) -----------------------------------------------------


def mention(key: str, open_id: str, name: str) -> dict[str, Any]:
    """Returns one entry of message.mentions."""
    return {
        "key": key,
        "id": {"union_id": "on_" + open_id[3:], "user_id": "", "open_id": open_id},
        "name": name,
        "tenant_key": "tk_test",
    }


def message_event(
    message_type: str,
    content: Mapping[str, Any],
    *,
    chat_id: str = "oc_group0001",
    chat_type: str = "group",
    sender: str = "ou_user0001",
    mentions: Sequence[Mapping[str, Any]] = (),
    message_id: str | None = None,
    event_id: str | None = None,
    thread_id: str = "",
    sender_type: str = "user",
    token: str = "",
    app_id: str = APP_ID,
    parent_id: str = "",
) -> dict[str, Any]:
    """Returns an im.message.receive_v1 event (schema 2.0) as Feishu pushes it; parent_id makes it a
    reply to that message (Feishu then sets root_id to the thread's first message, here the parent)."""
    now = str(int(time.time() * 1000))
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id or _next("ev_"),
            "event_type": "im.message.receive_v1",
            "create_time": now,
            "token": token,
            "app_id": app_id,
            "tenant_key": "tk_test",
        },
        "event": {
            "sender": {
                "sender_id": {
                    "union_id": "on_" + sender[3:],
                    "user_id": "u_" + sender[3:],
                    "open_id": sender,
                },
                "sender_type": sender_type,
                "tenant_key": "tk_test",
            },
            "message": {
                "message_id": message_id or _next("om_"),
                "root_id": parent_id,
                "parent_id": parent_id,
                "create_time": now,
                "update_time": now,
                "chat_id": chat_id,
                "thread_id": thread_id,
                "chat_type": chat_type,
                "message_type": message_type,
                "content": json.dumps(content, ensure_ascii=False),
                "mentions": list(mentions),
                "user_agent": "fake",
            },
        },
    }


def text_event(
    text: str,
    *,
    mention_bot: str = "",
    bot_name: str = "VideoBot",
    others: Mapping[str, str] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Returns a text message; mention_bot=<open_id> prefixes an @-mention of the bot (@_user_1).

    others maps extra open_ids to names; each is mentioned as @_user_N after the bot.
    """
    mentions, prefix = [], ""
    n = 1
    if mention_bot:
        mentions.append(mention(f"@_user_{n}", mention_bot, bot_name))
        prefix, n = f"@_user_{n} ", n + 1
    for open_id, name in (others or {}).items():
        mentions.append(mention(f"@_user_{n}", open_id, name))
        n += 1
    return message_event("text", {"text": prefix + text}, mentions=kw.pop("mentions", mentions), **kw)


def image_event(image_key: str, **kw: Any) -> dict[str, Any]:
    """Returns an image message (DM by default)."""
    kw.setdefault("chat_type", "p2p")
    kw.setdefault("chat_id", "oc_p2p0001")
    return message_event("image", {"image_key": image_key}, **kw)


def post_event(
    paragraphs: Sequence[Sequence[Mapping[str, Any]]], *, title: str = "", locale: str = "", **kw: Any
) -> dict[str, Any]:
    """Returns a post (rich text) message; locale="zh_cn" wraps it the locale-keyed way."""
    kw.setdefault("chat_type", "p2p")
    kw.setdefault("chat_id", "oc_p2p0001")
    body: dict[str, Any] = {"title": title, "content": [list(p) for p in paragraphs]}
    return message_event("post", {locale: body} if locale else body, **kw)


def card_action_event(
    action: str,
    job_id: str,
    *,
    open_message_id: str,
    open_chat_id: str = "oc_group0001",
    operator: str = "ou_user0001",
    event_id: str | None = None,
    token: str = "",
    value: Any = None,
    form_value: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Returns a card.action.trigger callback for a button whose value is {"action", "job_id"}; with
    form_value, the submit button (named "submit") of a card form, carrying what was typed by input name."""
    pressed: dict[str, Any] = {
        "value": value if value is not None else {"action": action, "job_id": job_id},
        "tag": "button",
    }
    if form_value is not None:
        pressed.update(form_value=form_value, name="submit")
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id or _next("ev_"),
            "event_type": "card.action.trigger",
            "create_time": str(int(time.time() * 1_000_000)),
            "token": token,
            "app_id": APP_ID,
            "tenant_key": "tk_test",
        },
        "event": {
            "operator": {
                "tenant_key": "tk_test",
                "user_id": "u_" + operator[3:],
                "open_id": operator,
                "union_id": "on_" + operator[3:],
            },
            "token": _next("c-"),
            "action": pressed,
            "host": "im_message",
            "context": {"open_message_id": open_message_id, "open_chat_id": open_chat_id},
        },
    }


def url_verification(challenge: str, token: str = "") -> dict[str, Any]:
    return {"challenge": challenge, "token": token, "type": "url_verification"}


# ---- long connection ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """What the client answered to one pushed frame."""

    code: int  # 200 handled, 500 the handler raised
    biz_rt_ms: int | None  # the client's own handler time (header biz_rt)
    elapsed: float  # seconds from our send to the ack, measured here
    data: Any = None  # decoded callback response (card toasts), if any


class LongConnection:
    """The long-connection endpoint and protobuf ws server; serve it on an aiohttp app with mount().

    Knobs: ping_interval, reconnect_interval, reconnect_nonce (sent to the client as its ClientConfig).
    """

    def __init__(
        self,
        *,
        app_id: str = APP_ID,
        app_secret: str = "test-secret",
        ping_interval: float = 120,
        reconnect_interval: float = 0.05,
        reconnect_nonce: int = 0,
    ) -> None:
        self.app_id, self.app_secret = app_id, app_secret
        self.ping_interval, self.reconnect_interval, self.reconnect_nonce = (
            ping_interval,
            reconnect_interval,
            reconnect_nonce,
        )
        self.endpoint_calls = 0
        self.connects = 0
        self.pings = 0
        self.acks: list[Ack] = []
        self._sockets: set[web.WebSocketResponse] = set()
        self._pending: dict[str, tuple[asyncio.Future[Ack], float]] = {}
        self._connected: asyncio.Event | None = None
        self._seq = itertools.count(1)
        self._turn = itertools.count()  # several clients (replicas): events go to each in turn
        self.on_change: Callable[[], None] = lambda: None  # called when a client connects or leaves

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/callback/ws/endpoint", self._endpoint)
        app.router.add_get("/ws", self._socket)

    def _client_config(self) -> dict[str, Any]:
        return {
            "ReconnectCount": -1,
            "ReconnectInterval": self.reconnect_interval,
            "ReconnectNonce": self.reconnect_nonce,
            "PingInterval": self.ping_interval,
        }

    async def _endpoint(self, request: web.Request) -> web.Response:
        self.endpoint_calls += 1
        body = await request.json()
        if body.get("AppID") != self.app_id or body.get("AppSecret") != self.app_secret:
            # Any code but "busy"/"internal" makes the SDK give up instead of reconnecting forever.
            return web.json_response({"code": 403, "msg": "app credentials invalid"})
        host = request.host
        url = f"ws://{host}/ws?device_id=dev{self.endpoint_calls}&service_id=7"
        return web.json_response(
            {"code": 0, "msg": "ok", "data": {"URL": url, "ClientConfig": self._client_config()}}
        )

    def _event(self) -> asyncio.Event:
        if self._connected is None:
            self._connected = asyncio.Event()
        return self._connected

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        self.connects += 1
        self._event().set()
        self.on_change()
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await self._on_frame(ws, msg.data)
        finally:
            self._sockets.discard(ws)
            if not self._sockets:
                self._event().clear()
            self.on_change()
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, data: bytes) -> None:
        frame = Frame()
        frame.ParseFromString(data)
        headers = {h.key: h.value for h in frame.headers}
        if frame.method == 0 and headers.get("type") == "ping":
            self.pings += 1
            pong = Frame(
                SeqID=0,
                LogID=0,
                service=frame.service,
                method=0,
                payload=json.dumps(self._client_config()).encode(),
            )
            h = pong.headers.add()
            h.key, h.value = "type", "pong"
            await ws.send_bytes(pong.SerializeToString())
        elif frame.method == 1:
            pending = self._pending.pop(headers.get("message_id", ""), None)
            if pending is None or pending[0].done():
                return
            future, sent_at = pending
            body = json.loads(frame.payload or b"{}")
            data_field = body.get("data")
            decoded = json.loads(base64.b64decode(data_field)) if data_field else None
            biz = headers.get("biz_rt")
            future.set_result(
                Ack(
                    int(body.get("code", 0)),
                    int(biz) if biz is not None else None,
                    time.perf_counter() - sent_at,
                    decoded,
                )
            )

    async def wait_connected(self, within: float = 5.0) -> None:
        await asyncio.wait_for(self._event().wait(), within)

    async def push(self, payload: Mapping[str, Any], *, within: float = 5.0) -> Ack:
        """Sends one event frame to a connected client and returns its ack."""
        await self.wait_connected(within)
        clients = sorted(self._sockets, key=id)
        ws = clients[next(self._turn) % len(clients)]
        seq = next(self._seq)
        message_id = f"wsmsg_{seq}"
        frame = Frame(SeqID=seq, LogID=seq, service=7, method=1, payload=json.dumps(payload).encode())
        for key, value in (
            ("type", "event"),
            ("message_id", message_id),
            ("trace_id", f"trace{seq}"),
            ("sum", "1"),
            ("seq", "0"),
        ):
            h = frame.headers.add()
            h.key, h.value = key, value
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = (future, time.perf_counter())
        await ws.send_bytes(frame.SerializeToString())
        ack = await asyncio.wait_for(future, within)
        self.acks.append(ack)
        return ack

    async def drop(self) -> None:
        """Closes every client socket (the SDK then re-bootstraps and reconnects)."""
        for ws in list(self._sockets):
            await ws.close()

    @property
    def connected_clients(self) -> int:
        return len(self._sockets)

    async def close(self) -> None:
        await self.drop()


# ---- webhook ------------------------------------------------------------------------------------------


def encrypt(plaintext: bytes, encrypt_key: str) -> str:
    """Returns Feishu's envelope for plaintext: base64(iv + AES-256-CBC(PKCS7)) keyed by sha256(encrypt_key)."""
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = os.urandom(16)
    pad = 16 - len(plaintext) % 16
    return base64.b64encode(
        iv + AES.new(key, AES.MODE_CBC, iv).encrypt(plaintext + bytes([pad]) * pad)
    ).decode()


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: Any
    elapsed: float


class WebhookPoster:
    """Posts events to a webhook URL the way Feishu does: encrypted, signed, with the verification token."""

    def __init__(self, url: str, *, encrypt_key: str = "", verification_token: str = "") -> None:
        self.url, self.encrypt_key, self.verification_token = url, encrypt_key, verification_token
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WebhookPoster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self,
        payload: Mapping[str, Any],
        *,
        token: str | None = None,
        encrypted: bool | None = None,
        sign: bool = True,
        bad_signature: bool = False,
    ) -> WebhookReply:
        """Posts payload; token overrides the verification token put into it."""
        body_obj = copy.deepcopy(dict(payload))
        tok = self.verification_token if token is None else token
        if "header" in body_obj:
            body_obj["header"]["token"] = tok
        else:
            body_obj["token"] = tok
        raw = json.dumps(body_obj, ensure_ascii=False).encode()
        if self.encrypt_key if encrypted is None else encrypted:
            raw = json.dumps({"encrypt": encrypt(raw, self.encrypt_key)}).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if sign and self.encrypt_key:
            ts, nonce = str(int(time.time())), os.urandom(8).hex()
            sig = hashlib.sha256((ts + nonce + self.encrypt_key).encode() + raw).hexdigest()
            if bad_signature:
                sig = sig[:-4] + ("0000" if not sig.endswith("0000") else "1111")
            headers.update(
                {"X-Lark-Request-Timestamp": ts, "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": sig}
            )
        if self._session is None:
            self._session = aiohttp.ClientSession()
        started = time.perf_counter()
        async with self._session.post(self.url, data=raw, headers=headers) as resp:
            text = await resp.text()
            elapsed = time.perf_counter() - started
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text
        return WebhookReply(resp.status, parsed, elapsed)

    async def challenge(self, challenge: str = "challenge-123", *, token: str | None = None) -> WebhookReply:
        return await self.post(url_verification(challenge), token=token)
