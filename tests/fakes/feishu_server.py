"""A fake Feishu Open API subset plus the long connection, served from its own thread and event loop."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import feishu_cards
from .feishu_events import APP_ID, BOT_OPEN_ID, Ack, LongConnection

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
MAX_IMAGE = 10 * 1024 * 1024
MAX_FILE = 30 * 1024 * 1024
MAX_CARD = 30 * 1024
MESSAGES = "/open-apis/im/v1/messages"
FOURTEEN_DAYS = 14 * 24 * 3600
RAW_SIZE = web.RequestKey("raw_size", int)
FIELDS = web.RequestKey("fields", dict)  # parsed multipart fields, for the upload handlers


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON, a dict of multipart fields, or None
    status: int = 0
    code: int | None = None
    at: float = 0.0


@dataclass
class Message:
    message_id: str
    chat_id: str
    msg_type: str
    content: str
    sender: str  # "bot" or the user's open_id
    parent_id: str = ""
    uuid: str = ""
    thread: bool = False
    created: float = field(default_factory=time.time)
    patches: list[str] = field(default_factory=list)
    recalled: bool = False
    deleted: bool = False

    @property
    def card(self) -> dict[str, Any]:
        return json.loads(self.content)


@dataclass
class _Fault:
    method: str
    path_re: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int
    after: bool = False  # True: the request is carried out, only its answer is replaced (a lost reply)


def _err(status: int, code: int, msg: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"code": code, "msg": msg, "error": {"log_id": "fake"}}, status=status, headers=dict(headers or {})
    )


class Hold:
    """Requests matching (method, path regex) hang until release(): a platform that takes its time.

    `waiting` counts the requests held now, `held` every request held so far.
    """

    def __init__(self, method: str, path_re: re.Pattern[str], containing: str = "") -> None:
        self.method, self.path_re, self.containing = method, path_re, containing
        self.waiting = self.held = 0
        self._gate = asyncio.Event()  # waited on (and set) on the fake's loop only
        self._loop: asyncio.AbstractEventLoop | None = None

    def release(self) -> None:
        """Lets every held request, and every later one, through; call it from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._gate.set)


class FakeFeishu:
    """Runs in its own thread and loop: lark-oapi's ws bootstrap (and its sync token fetch) are blocking
    `requests` calls, so a fake on the caller's loop would deadlock.

    Knobs: token_ttl (s), patch_limit per patch_window (s) per message (Feishu: 5 per 1 s), clock
    (for that window).

    Driver: register, add_resource, add_cdn, invalidate_tokens, rate_limit_next, fail_next, hold_requests,
    recall, delete, age, push_event, drop_ws, wait_ws_connected, wait_until; state: calls, messages, images,
    files, token_fetches, ws (the LongConnection: acks, connects, endpoint_calls, drop()).
    """

    def __init__(
        self,
        *,
        app_id: str = APP_ID,
        app_secret: str = "test-secret",
        bot_open_id: str = BOT_OPEN_ID,
        bot_name: str = "VideoBot",
        token_ttl: int = 7200,
        patch_limit: int = 5,
        patch_window: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app_id, self.app_secret, self.bot_open_id, self.bot_name = (
            app_id,
            app_secret,
            bot_open_id,
            bot_name,
        )
        self.token_ttl, self.patch_limit, self.patch_window = token_ttl, patch_limit, patch_window
        self.clock = clock  # the patch-rate window reads it; inject one to make rate tests exact
        self.ws = LongConnection(app_id=app_id, app_secret=app_secret)
        self.ws.on_change = self._notify
        self.calls: list[Call] = []
        self.messages: dict[str, Message] = {}
        self.resources: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.images: dict[str, bytes] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.cdn: dict[str, tuple[bytes, str]] = {}
        self.token_fetches = 0
        self._tokens: set[str] = set()
        self._uuids: dict[str, str] = {}
        self._patch_times: dict[str, deque[float]] = {}
        self._faults: list[_Fault] = []
        self._holds: list[Hold] = []
        self._ids = itertools.count(1)
        self._waiters: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- lifecycle ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeFeishu:
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # pragma: no cover - start-up failure is reported to start()
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-feishu", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    def __enter__(self) -> FakeFeishu:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        r = app.router
        r.add_post(TOKEN_PATH, self._token)
        r.add_get("/open-apis/bot/v3/info", self._bot_info)
        r.add_post("/open-apis/im/v1/messages", self._create)
        r.add_post("/open-apis/im/v1/messages/{mid}/reply", self._reply)
        r.add_patch("/open-apis/im/v1/messages/{mid}", self._patch)
        r.add_get("/open-apis/im/v1/messages/{mid}", self._get)
        r.add_get("/open-apis/im/v1/messages/{mid}/resources/{key}", self._resource)
        r.add_post("/open-apis/im/v1/images", self._upload_image)
        r.add_post("/open-apis/im/v1/files", self._upload_file)
        r.add_get("/cdn/{name}", self._cdn)
        self.ws.mount(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        await self.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- driver ------------------------------------------------------------------------------------

    def register(
        self,
        payload: Mapping[str, Any],
        images: Mapping[str, bytes] | None = None,
        content_type: str = "image/png",
    ) -> dict[str, Any]:
        """Records a user's message event (so replies to it work) and its image resources; returns payload."""
        msg = (payload.get("event") or {}).get("message") or {}
        if msg.get("message_id"):
            sender = ((payload["event"].get("sender") or {}).get("sender_id") or {}).get("open_id", "")
            self.messages[msg["message_id"]] = Message(
                msg["message_id"],
                msg.get("chat_id", ""),
                msg.get("message_type", ""),
                msg.get("content", ""),
                sender,
            )
            for key, data in (images or {}).items():
                self.add_resource(msg["message_id"], key, data, content_type)
        return dict(payload)

    def add_resource(self, message_id: str, key: str, data: bytes, content_type: str = "image/png") -> None:
        self.resources[(message_id, key)] = (data, content_type)

    def add_cdn(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Serves data at /cdn/<name>; returns its URL (for cover and video URLs)."""
        self.cdn[name] = (data, content_type)
        return f"{self.url}/cdn/{name}"

    def invalidate_tokens(self) -> None:
        """Every token issued so far is refused with 99991663 from now on (a token expiring mid-job)."""
        with self._lock:
            self._tokens.clear()

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        *,
        status: int,
        body: dict[str, Any],
        headers: Mapping[str, str] | None = None,
        times: int = 1,
        after: bool = False,
    ) -> None:
        """The next `times` requests matching method and the path regex get this answer instead.

        after=True carries the request out first and only replaces its answer (the reply got lost).
        """
        with self._lock:
            self._faults.append(
                _Fault(
                    method.upper(), re.compile(path_pattern), status, body, dict(headers or {}), times, after
                )
            )

    def hold_requests(self, method: str, path_pattern: str, *, containing: str = "") -> Hold:
        """Every request matching method and the path regex (and whose body, as JSON text, contains
        `containing`) hangs until the returned Hold is released."""
        hold = Hold(method.upper(), re.compile(path_pattern), containing)
        hold._loop = self._loop
        with self._lock:
            self._holds.append(hold)
        return hold

    async def _hold(self, request: web.Request, body: Any) -> None:
        text = (
            json.dumps(body, ensure_ascii=False) if body is not None and not isinstance(body, bytes) else ""
        )
        with self._lock:
            holds = [
                h
                for h in self._holds
                if h.method == request.method
                and h.path_re.search(request.path)
                and (not h.containing or h.containing in text)
            ]
        for hold in holds:
            hold.waiting, hold.held = hold.waiting + 1, hold.held + 1
            self._notify()
            try:
                await hold._gate.wait()
            finally:
                hold.waiting -= 1

    def clear_faults(self) -> None:
        """Drops every pending fail_next/rate_limit_next answer (the outage is over)."""
        with self._lock:
            self._faults.clear()

    def rate_limit_next(
        self,
        method: str = "PATCH",
        path_pattern: str = "/im/v1/messages",
        *,
        times: int = 1,
        reset: str = "0",
    ) -> None:
        """The next matching requests get 429 / 99991400 with x-ogw-ratelimit-reset: reset."""
        self.fail_next(
            method,
            path_pattern,
            status=429,
            body={"code": 99991400, "msg": "request trigger frequency limit"},
            headers={"x-ogw-ratelimit-reset": reset},
            times=times,
        )

    def recall(self, message_id: str) -> None:
        self.messages[message_id].recalled = True

    def delete(self, message_id: str) -> None:
        self.messages[message_id].deleted = True

    def age(self, message_id: str, days: float) -> None:
        self.messages[message_id].created -= days * 24 * 3600

    def bot_messages(self, msg_type: str | None = None) -> list[Message]:
        return [
            m for m in list(self.messages.values()) if m.sender == "bot" and msg_type in (None, m.msg_type)
        ]

    def calls_to(self, method: str, path_pattern: str = "") -> list[Call]:
        rx = re.compile(path_pattern)
        return [c for c in list(self.calls) if c.method == method.upper() and rx.search(c.path)]

    async def push_event(self, payload: Mapping[str, Any], *, within: float = 5.0) -> Ack:
        """Pushes payload over the long connection (from any loop); returns the client's ack."""
        assert self._loop is not None
        self.register(payload)
        future = asyncio.run_coroutine_threadsafe(self.ws.push(payload, within=within), self._loop)
        return await asyncio.wrap_future(future)

    async def drop_ws(self) -> None:
        """Closes the long connection's client sockets from the server side (the SDK reconnects)."""
        assert self._loop is not None
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.ws.drop(), self._loop))

    async def wait_ws_connected(self, within: float = 5.0) -> None:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self.ws.wait_connected(within), self._loop)
        await asyncio.wrap_future(future)

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Returns once predicate() holds, re-checking after every request; raises TimeoutError."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def poke() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(changed.set)

        with self._lock:
            self._waiters.append(poke)
        try:
            async with asyncio.timeout(within):
                while True:
                    changed.clear()
                    if predicate():
                        return
                    await changed.wait()
        finally:
            with self._lock:
                self._waiters.remove(poke)

    # ---- plumbing ----------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        body = await self._body(request)
        await self._hold(request, body)  # hold_requests: hangs until the test releases it
        response = (
            self._fault(request, after=False)
            or self._auth(request)
            or self._too_big(request)
            or await handler(request)
        )
        if response.status < 300:
            response = self._fault(request, after=True) or response
        code = None
        if (
            isinstance(response, web.Response)
            and response.content_type == "application/json"
            and response.body
        ):
            code = json.loads(response.body).get("code")
        self.calls.append(
            Call(
                request.method,
                request.path,
                dict(request.query),
                body,
                response.status,
                code,
                time.monotonic(),
            )
        )
        self._notify()
        return response

    def _too_big(self, request: web.Request) -> web.Response | None:
        """Feishu measures the whole request body of a send or PATCH (the card escaped inside it)."""
        if request.path.startswith(MESSAGES) and request.get(RAW_SIZE, 0) > MAX_CARD:
            return _err(400, 230025, "The length of the message content reaches its limit.")
        return None

    def _notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for poke in waiters:
            poke()

    async def _body(self, request: web.Request) -> Any:
        if request.path.startswith("/ws") or request.method == "GET":
            return None
        if request.content_type.startswith("multipart/"):
            fields: dict[str, Any] = {}
            async for part in await request.multipart():
                data = await part.read()  # type: ignore[union-attr]
                fields[part.name or ""] = (
                    {"filename": part.filename, "data": bytes(data)} if part.filename else data.decode()
                )  # type: ignore[union-attr]
            request[FIELDS] = fields
            return {
                k: (v if isinstance(v, str) else {"filename": v["filename"], "size": len(v["data"])})
                for k, v in fields.items()
            }
        raw = await request.read()
        request[RAW_SIZE] = len(raw)
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw

    def _fault(self, request: web.Request, *, after: bool) -> web.Response | None:
        with self._lock:
            for fault in self._faults:
                if (
                    fault.after is after
                    and fault.method in ("", request.method)
                    and fault.path_re.search(request.path)
                ):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        return None

    def _auth(self, request: web.Request) -> web.Response | None:
        if not request.path.startswith("/open-apis/") or request.path == TOKEN_PATH:
            return None
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            ok = token in self._tokens
        return None if ok else _err(400, 99991663, "Invalid access token for authorization.")

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    # ---- handlers ----------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.token_fetches += 1
        if body.get("app_id") != self.app_id or body.get("app_secret") != self.app_secret:
            return web.json_response({"code": 10014, "msg": "app secret invalid"})
        token = self._new_id("t-fake")
        with self._lock:
            self._tokens.add(token)
        return web.json_response(
            {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": self.token_ttl}
        )

    async def _bot_info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "code": 0,
                "msg": "ok",
                "bot": {
                    "activate_status": 2,
                    "app_name": self.bot_name,
                    "avatar_url": "",
                    "ip_white_list": [],
                    "open_id": self.bot_open_id,
                },
            }
        )

    def _message_json(self, m: Message) -> dict[str, Any]:
        ts = str(int(m.created * 1000))
        return {
            "message_id": m.message_id,
            "root_id": m.parent_id,
            "parent_id": m.parent_id,
            "msg_type": m.msg_type,
            "create_time": ts,
            "update_time": ts,
            "deleted": m.deleted,
            "updated": bool(m.patches),
            "chat_id": m.chat_id,
            "sender": (
                {"id": self.app_id, "id_type": "app_id", "sender_type": "app", "tenant_key": "tk_test"}
                if m.sender == "bot"
                else {"id": m.sender, "id_type": "open_id", "sender_type": "user", "tenant_key": "tk_test"}
            ),
            "body": {"content": m.content},
        }

    def _check_content(self, msg_type: str, content: Any) -> web.Response | None:
        try:
            parsed = json.loads(content)
        except (TypeError, ValueError):
            return _err(400, 230001, "invalid content: not a JSON string")
        if msg_type == "interactive" and (bad := feishu_cards.problem(parsed)) is not None:
            return _err(400, feishu_cards.CARD_ERROR_CODE, bad)
        if msg_type == "text" and not parsed.get("text"):
            return _err(400, 230001, "invalid text content")
        if msg_type == "media" and (
            parsed.get("file_key") not in self.files
            or (parsed.get("image_key") and parsed["image_key"] not in self.images)
        ):
            return _err(400, 230001, "invalid file_key or image_key")
        if msg_type == "interactive" and len(content.encode()) > MAX_CARD:
            return _err(400, 230025, "The length of the message content reaches its limit.")
        return None

    def _deliver(self, chat_id: str, body: dict[str, Any], parent: str = "") -> web.Response:
        uuid = body.get("uuid") or ""
        if uuid and uuid in self._uuids:  # Feishu de-duplicates sends by uuid for an hour
            return web.json_response(
                {"code": 0, "msg": "success", "data": self._message_json(self.messages[self._uuids[uuid]])}
            )
        msg_type, content = body.get("msg_type", ""), body.get("content")
        bad = self._check_content(msg_type, content)
        if bad is not None:
            return bad
        m = Message(
            self._new_id("om_bot"),
            chat_id,
            msg_type,
            content,
            "bot",
            parent,
            uuid,
            thread=bool(body.get("reply_in_thread")),
        )
        self.messages[m.message_id] = m
        if uuid:
            self._uuids[uuid] = m.message_id
        return web.json_response({"code": 0, "msg": "success", "data": self._message_json(m)})

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        kind = request.query.get("receive_id_type", "")
        if kind not in ("chat_id", "open_id", "user_id", "union_id", "email"):
            return _err(400, 230001, "invalid receive_id_type")
        chat_id = body.get("receive_id", "") if kind == "chat_id" else f"oc_p2p_{body.get('receive_id', '')}"
        return self._deliver(chat_id, body)

    async def _reply(self, request: web.Request) -> web.Response:
        parent = self.messages.get(request.match_info["mid"])
        if parent is None:
            return _err(400, 230001, "invalid message_id")
        if parent.recalled:
            return _err(400, 230011, "The message was withdrawn.")
        if parent.deleted:
            return _err(400, 230110, "Action unavailable as the message has been deleted.")
        return self._deliver(parent.chat_id, await request.json(), parent.message_id)

    async def _get(self, request: web.Request) -> web.Response:
        m = self.messages.get(request.match_info["mid"])
        if m is None:
            return _err(400, 230001, "invalid message_id")
        return web.json_response({"code": 0, "msg": "success", "data": {"items": [self._message_json(m)]}})

    async def _patch(self, request: web.Request) -> web.Response:
        m = self.messages.get(request.match_info["mid"])
        content = (await request.json()).get("content")
        if m is None:
            return _err(400, 230001, "invalid message_id")
        if m.recalled:
            return _err(400, 230011, "The message was withdrawn.")
        if m.deleted:
            return _err(400, 230110, "Action unavailable as the message has been deleted.")
        if time.time() - m.created > FOURTEEN_DAYS:
            return _err(400, 230031, "The message is older than 14 days and cannot be updated.")
        if m.msg_type != "interactive":
            return _err(400, 230001, "Your request contains an invalid request parameter (only cards).")
        bad = self._check_content("interactive", content)
        if bad is not None:
            return bad
        if not (
            m.card.get("config", {}).get("update_multi")
            and json.loads(content).get("config", {}).get("update_multi")
        ):
            return _err(400, 230099, "update_multi must be true before and after the update")
        now = self.clock()
        window = self._patch_times.setdefault(m.message_id, deque())
        while window and now - window[0] >= self.patch_window:
            window.popleft()
        if len(window) >= self.patch_limit:
            return _err(400, 230020, "This message has reached its update frequency limit.")
        window.append(now)
        m.content = content
        m.patches.append(content)
        return web.json_response({"code": 0, "msg": "success", "data": {}})

    async def _resource(self, request: web.Request) -> web.Response:
        key = (request.match_info["mid"], request.match_info["key"])
        if request.query.get("type") not in ("image", "file"):
            return _err(400, 234001, "Invalid request param: type.")
        if key not in self.resources:
            return _err(400, 234003, "File not in msg.")
        data, content_type = self.resources[key]
        return web.Response(
            body=data,
            headers={
                "Content-Type": content_type,
                "Content-Disposition": f'attachment; filename="{key[1]}.png"',
            },
        )

    async def _upload_image(self, request: web.Request) -> web.Response:
        fields = request.get(FIELDS, {})
        image = fields.get("image")
        if fields.get("image_type") not in ("message", "avatar") or not isinstance(image, dict):
            return _err(400, 234001, "Invalid request param.")
        if len(image["data"]) > MAX_IMAGE:
            return _err(400, 234006, "The file size exceeds the limit.")
        key = self._new_id("img_v3_fake")
        self.images[key] = image["data"]
        return web.json_response({"code": 0, "msg": "success", "data": {"image_key": key}})

    async def _upload_file(self, request: web.Request) -> web.Response:
        fields = request.get(FIELDS, {})
        file = fields.get("file")
        if not fields.get("file_type") or not fields.get("file_name") or not isinstance(file, dict):
            return _err(400, 234001, "Invalid request param.")
        if len(file["data"]) > MAX_FILE:
            return _err(400, 234006, "The file size exceeds the limit.")
        key = self._new_id("file_v3_fake")
        self.files[key] = (file["data"], fields["file_type"])
        return web.json_response({"code": 0, "msg": "success", "data": {"file_key": key}})

    async def _cdn(self, request: web.Request) -> web.Response:
        item = self.cdn.get(request.match_info["name"])
        if item is None:
            return web.Response(status=404)
        return web.Response(body=item[0], headers={"Content-Type": item[1]})
