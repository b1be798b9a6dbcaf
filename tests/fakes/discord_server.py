"""A local fake Discord for discord.py: REST + interaction webhooks, gateway WebSocket, CDN, on 127.0.0.1.

Use it as an async context manager (or start()/stop()), point discord.py at it with install(monkeypatch),
then drive the user side (slash_command, send_message, click_button), inject faults (fail_next,
rate_limit_next, drop_gateway, identify_close_code, forbidden_channels, token_ttl, ack_deadline) and assert
on what users would see (messages, channel_messages) or on the request log (requests, cdn_log).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yarl
from aiohttp import WSMsgType, web

from . import discord_modals
from . import discord_payloads as shapes

JSON = {"Content-Type": "application/json"}  # exactly this: discord.py parses JSON only for this header
MiB = 1024 * 1024


@dataclass
class Logged:
    """One REST request as the fake saw it; status is filled in once answered."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any
    files: list[dict[str, Any]]
    status: int = 0


@dataclass
class FakeInteraction:
    id: str
    token: str
    type: int
    created: float
    payload: dict[str, Any]
    acked_type: int | None = None
    acked_at: float | None = None
    original_id: str | None = None
    loading: bool = False
    modal: dict[str, Any] | None = None  # the modal this interaction was answered with (callback type 9)


@dataclass
class _Rule:
    method: str
    pattern: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int = 1


@dataclass
class _Session:
    id: str
    seq: int = 0
    frames: list[dict[str, Any]] = field(default_factory=list)


class FakeDiscord:
    """The fake platform. All ids are snowflake strings; the clock drives token expiry and ack deadlines."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        clock: Callable[[], float] = time.monotonic,
        token_ttl: float = 15 * 60.0,
        ack_deadline: float = 3.0,
        attachment_size_limit: int = 10 * MiB,
        enabled_privileged_intents: int = 0,
    ) -> None:
        self.token = token
        self.clock = clock
        self.token_ttl = token_ttl
        self.ack_deadline = ack_deadline
        self.attachment_size_limit = attachment_size_limit
        self.enabled_privileged_intents = enabled_privileged_intents
        self.identify_close_code: int | None = None  # close the gateway with this code on IDENTIFY
        self.forbidden_channels: set[str] = set()  # POST messages there → 403 50013
        self.resume_gate: asyncio.Event | None = None  # when set up, RESUME waits until the event is set
        self._ids = itertools.count(950_000_000_000_000_001)
        self.app_id = self.bot_id = "900000000000000001"
        self.guild_id = "900000000000000010"
        self.bot_role_id = "900000000000000011"  # the bot's managed role in the guild
        self.channel_id, self.other_channel_id = "900000000000000020", "900000000000000021"
        self.user_id, self.other_user_id = "900000000000000030", "900000000000000031"
        self.users = {
            self.bot_id: shapes.user(self.bot_id, "imabot", bot=True),
            self.user_id: shapes.user(self.user_id, "alice"),
            self.other_user_id: shapes.user(self.other_user_id, "bob"),
        }
        self.channels: dict[str, dict[str, Any]] = {
            self.channel_id: shapes.text_channel(self.channel_id, self.guild_id, "general"),
            self.other_channel_id: shapes.text_channel(self.other_channel_id, self.guild_id, "random", 1),
        }
        self._dms: dict[str, str] = {}  # user id -> DM channel id
        self.messages: dict[str, dict[str, Any]] = {}
        self.nonces: dict[tuple[str, str], str] = {}  # (channel, enforced nonce) -> the message it made
        self.uploads: dict[str, bytes] = {}  # attachment id -> bytes the bot uploaded
        self.cdn_files: dict[str, tuple[bytes, str]] = {}
        self.interactions: dict[str, FakeInteraction] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id -> registered commands
        self.requests: list[Logged] = []
        self.cdn_log: list[tuple[str, str]] = []
        self.identifies: list[dict[str, Any]] = []
        self.gateway_ops: list[int] = []
        self.resumes = 0
        self.replayed = 0  # frames re-sent on RESUME (dispatched while the bot was disconnected)
        self.errors: list[str] = []  # exceptions inside the fake's handlers (tests assert it stays empty)
        self._rules: list[_Rule] = []
        self._session: _Session | None = None
        self._ws: web.WebSocketResponse | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        from ._discord_routes import build_app

        self._runner = web.AppRunner(build_app(self))
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> yarl.URL:
        return yarl.URL(f"ws://127.0.0.1:{self.port}/gateway")

    def install(self, monkeypatch: Any) -> None:
        """Points discord.py's REST base and gateway URL at this fake (restored by monkeypatch)."""
        import discord

        monkeypatch.setattr(discord.http.Route, "BASE", f"{self.base_url}/api/v10")
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", self.gateway_url)

    # waiting and inspecting ----------------------------------------------------------------------

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], Any], within: float = 5.0) -> Any:
        """Waits until predicate() is truthy (re-checked after every request/event); returns its value."""
        async with asyncio.timeout(within), self._changed:
            return await self._changed.wait_for(predicate)

    def requests_to(self, method: str, pattern: str) -> list[Logged]:
        """The logged REST requests with this method whose path matches the regex pattern."""
        rx = re.compile(pattern)
        return [r for r in self.requests if r.method == method and rx.search(r.path)]

    def channel_messages(self, channel_id: str) -> list[dict[str, Any]]:
        """The messages (not deleted) in a channel, oldest first."""
        return [m for m in self.messages.values() if m["channel_id"] == channel_id]

    def dm_channel_id(self, user_id: str) -> str:
        """The DM channel between the bot and user_id (created on first use)."""
        if user_id not in self._dms:
            channel_id = self.next_id()
            self._dms[user_id] = channel_id
            self.channels[channel_id] = shapes.dm_channel(channel_id, self.users[user_id])
        return self._dms[user_id]

    def next_id(self) -> str:
        return str(next(self._ids))

    # fault knobs ---------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        pattern: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answers the next `times` requests (method, path regex) with status/body instead of serving them."""
        body = body if body is not None else {"message": f"fake failure {status}", "code": 0}
        self._rules.append(_Rule(method, re.compile(pattern), status, body, headers or {}, times))

    def rate_limit_next(
        self, method: str, pattern: str, retry_after: float = 0.05, *, via: bool = True
    ) -> None:
        """A 429 on the next matching request; with `Via` discord.py waits and retries, without it it raises."""
        headers = {"Retry-After": str(retry_after), "X-RateLimit-Scope": "user"}
        if via:
            headers["Via"] = "1.1 google"
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
        self.fail_next(method, pattern, 429, body, headers)

    def take_rule(self, method: str, path: str) -> _Rule | None:
        for rule in self._rules:
            if rule.method == method and rule.pattern.search(path):
                rule.times -= 1
                if rule.times <= 0:
                    self._rules.remove(rule)
                return rule
        return None

    def delete_message(self, message_id: str) -> None:
        """Deletes a message as a moderator would; later edits get 404 10008."""
        self.messages.pop(message_id, None)

    async def drop_gateway(self, code: int = 4000) -> None:
        """Closes the live gateway socket with code (4000: resumable); events until RESUME are buffered."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close(code=code, message=b"fake drop")

    # gateway -------------------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Sends a DISPATCH to the connected bot (buffered for RESUME while it is disconnected)."""
        session = self._session
        if session is None:
            raise RuntimeError("no gateway session: the bot has not identified")
        session.seq += 1
        frame = {"op": 0, "s": session.seq, "t": event, "d": data}
        session.frames.append(frame)
        if self._ws is not None and not self._ws.closed:
            try:
                await self._ws.send_str(json.dumps(frame))
            except ConnectionError:
                pass  # replayed on RESUME
        await self.notify()

    async def handle_gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                self.gateway_ops.append(frame["op"])
                await self.notify()
                if frame["op"] == 1:
                    await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                elif frame["op"] == 2:
                    await self._identify(ws, frame["d"])
                elif frame["op"] == 6:
                    await self._resume(ws, frame["d"])
                await self.notify()
        finally:
            self._sockets.discard(ws)
            if self._ws is ws:
                self._ws = None
            await self.notify()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> None:
        self.identifies.append(d)
        if d.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        if self.identify_close_code is not None:
            await ws.close(code=self.identify_close_code, message=b"Closed by the fake.")
            return
        if d.get("intents", 0) & shapes.PRIVILEGED_INTENTS & ~self.enabled_privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        self._session = _Session(secrets.token_hex(8))
        self._ws = ws
        ready = {
            "v": 10,
            "user": self.users[self.bot_id],
            "guilds": [{"id": self.guild_id, "unavailable": True}],
            "session_id": self._session.id,
            "resume_gateway_url": str(self.gateway_url),
            "application": {"id": self.app_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "session_type": "normal",
        }
        if d.get("shard") is not None:  # Discord echoes the shard a session was identified for
            ready["shard"] = d["shard"]
        await self.dispatch("READY", ready)
        guild_channels = [c for c in self.channels.values() if c.get("guild_id") == self.guild_id]
        members = [{**shapes.member(self.users[self.bot_id]), "roles": [self.bot_role_id]}]
        role = shapes.bot_role(self.bot_role_id, self.bot_id, "imabot")
        await self.dispatch(
            "GUILD_CREATE",
            shapes.guild(self.guild_id, "test guild", guild_channels, members, self.user_id, roles=[role]),
        )

    async def _resume(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> None:
        if self.resume_gate is not None:
            await self.resume_gate.wait()
        self.resumes += 1
        session = self._session
        if session is None or d.get("session_id") != session.id or d.get("token") != self.token:
            await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        self._ws = ws
        for frame in session.frames:
            if frame["s"] > (d.get("seq") or 0):
                self.replayed += 1
                await ws.send_str(json.dumps(frame))
        await self.dispatch("RESUMED", {})

    # the user side -------------------------------------------------------------------------------

    def add_cdn_file(
        self,
        filename: str,
        data: bytes,
        content_type: str | None = "image/png",
        *,
        declared_size: int | None = None,
    ) -> dict[str, Any]:
        """Serves data at /cdn/<id>/<filename>; returns the attachment object a user upload would carry."""
        att_id = self.next_id()
        name = f"{att_id}/{filename}"
        self.cdn_files[name] = (data, content_type or "application/octet-stream")
        size = len(data) if declared_size is None else declared_size
        return shapes.attachment(att_id, filename, size, f"{self.base_url}/cdn/{name}", content_type)

    def _find_command(self, name: str, in_guild: bool) -> tuple[dict[str, Any], str | None]:
        scopes = ([self.guild_id] if in_guild else []) + ["global"]
        for scope in scopes:
            for cmd in self.commands.get(scope, []):
                if cmd["name"] == name:
                    return cmd, (scope if scope != "global" else None)
        raise KeyError(f"/{name} is not registered (registered: {self.commands})")

    def _command_data(
        self, cmd: dict[str, Any], scope: str | None, options: dict[str, Any]
    ) -> dict[str, Any]:
        schema = {o["name"]: o for o in cmd.get("options", [])}
        data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1, "options": []}
        resolved: dict[str, Any] = {}
        for name, value in options.items():
            opt = schema.get(name)
            if opt is None:
                raise ValueError(f"/{cmd['name']} has no option {name!r}")
            if opt["type"] == 11:  # attachment: value is the attachment object from add_cdn_file
                resolved[value["id"]] = value
                value = value["id"]
            elif opt.get("choices") and value not in [c["value"] for c in opt["choices"]]:
                raise ValueError(f"{value!r} is not a choice of {name!r}")
            data["options"].append({"name": name, "type": opt["type"], "value": value})
        missing = [o["name"] for o in schema.values() if o.get("required") and o["name"] not in options]
        if missing:
            raise ValueError(f"missing required options {missing}")
        if resolved:
            data["resolved"] = {"attachments": resolved}
        if scope:
            data["guild_id"] = scope
        return data

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        user_id: str | None,
        channel_id: str | None,
        dm: bool,
        locale: str,
        message_obj: dict[str, Any] | None = None,
    ) -> FakeInteraction:
        invoker = self.users[user_id or self.user_id]
        channel_id = self.dm_channel_id(invoker["id"]) if dm else (channel_id or self.channel_id)
        channel = self.channels[channel_id]
        interaction_id, token = self.next_id(), f"itok-{secrets.token_hex(6)}"
        payload = shapes.interaction(
            interaction_id,
            app_id=self.app_id,
            kind=kind,
            token=token,
            channel=channel,
            invoker=invoker,
            guild_id=channel.get("guild_id"),
            locale=locale,
            size_limit=self.attachment_size_limit,
            data=data,
            message_obj=message_obj,
        )
        inter = FakeInteraction(interaction_id, token, kind, self.clock(), payload)
        self.interactions[interaction_id] = inter
        await self.dispatch("INTERACTION_CREATE", payload)
        return inter

    async def slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user_id: str | None = None,
        channel_id: str | None = None,
        dm: bool = False,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A user runs /name with options (attachment options take add_cdn_file's object)."""
        cmd, scope = self._find_command(name, in_guild=not dm)
        data = self._command_data(cmd, scope, options or {})
        return await self._interact(2, data, user_id=user_id, channel_id=channel_id, dm=dm, locale=locale)

    async def click_button(
        self, message_id: str, custom_id: str, *, user_id: str | None = None, locale: str = "en-US"
    ) -> FakeInteraction:
        """A user clicks the button custom_id on a message the bot posted."""
        msg = self.messages[message_id]
        ids = [c.get("custom_id") for row in msg["components"] for c in row.get("components", [])]
        if custom_id not in ids:
            raise ValueError(f"message {message_id} has no button {custom_id!r} (has {ids})")
        channel = self.channels[msg["channel_id"]]
        return await self._interact(
            3,
            {"custom_id": custom_id, "component_type": 2},
            user_id=user_id,
            channel_id=msg["channel_id"],
            dm=channel["type"] == 1,
            locale=locale,
            message_obj=msg,
        )

    async def submit_modal(
        self, opened: FakeInteraction, values: dict[str, str] | None = None, *, locale: str = "en-US"
    ) -> FakeInteraction:
        """The user who got the modal `opened` was answered with submits it, typing `values` (text input
        custom_id -> text). Like Discord, the submit carries the message whose button opened it."""
        if opened.modal is None:
            raise ValueError(f"interaction {opened.id} was not answered with a modal")
        p = opened.payload
        invoker = (p.get("member") or {}).get("user") or p["user"]
        return await self._interact(
            5,
            discord_modals.submit_data(opened.modal, values or {}),
            user_id=invoker["id"],
            channel_id=p["channel_id"],
            dm="guild_id" not in p,
            locale=locale,
            message_obj=p.get("message"),
        )

    async def send_message(
        self,
        content: str,
        *,
        attachments: list[dict[str, Any]] | None = None,
        user_id: str | None = None,
        channel_id: str | None = None,
        dm: bool = False,
        mention_bot: bool = False,
        mention_role: bool = False,
        reply_to: str | None = None,
        ping: bool = True,
    ) -> dict[str, Any]:
        """A user posts a message (a DM, or in a guild channel, optionally @-mentioning the bot or, as
        Discord's mention picker often does, the bot's managed role). With reply_to (a message id) it is a
        reply (type 19, message_reference + referenced_message); ping mentions the quoted author, which is
        Discord's default for replies."""
        author = self.users[user_id or self.user_id]
        channel_id = self.dm_channel_id(author["id"]) if dm else (channel_id or self.channel_id)
        mentions: list[dict[str, Any]] = []
        if mention_bot:
            content = f"<@{self.bot_id}> {content}"
            mentions.append({**self.users[self.bot_id], "member": shapes.member(self.users[self.bot_id])})
        if mention_role:
            content = f"<@&{self.bot_role_id}> {content}"
        reference = None
        if reply_to is not None:
            quoted = self.messages[reply_to]
            reference = {"type": 0, "message_id": reply_to, "channel_id": quoted["channel_id"]}
            if not dm:
                reference["guild_id"] = self.guild_id
            if ping and quoted["author"]["id"] not in [m["id"] for m in mentions]:
                mentions.append(quoted["author"])
        msg = shapes.message(
            self.next_id(),
            channel_id,
            author,
            content=content,
            attachments=attachments,
            mentions=mentions,
            reference=reference,
        )
        if mention_role:
            msg["mention_roles"] = [self.bot_role_id]
        self.messages[msg["id"]] = msg
        event = dict(msg)
        if reply_to is not None:
            event["referenced_message"] = self.messages[reply_to]
        if not dm:
            event["guild_id"] = self.guild_id
            event["member"] = {k: v for k, v in shapes.member(author).items() if k != "user"}
        await self.dispatch("MESSAGE_CREATE", event)
        return msg
