"""The fake Discord's HTTP routes: the REST subset discord.py uses, interaction webhooks, gateway, CDN."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import discord_checks as checks
from . import discord_modals
from . import discord_payloads as shapes

if TYPE_CHECKING:
    from .discord_server import FakeDiscord, FakeInteraction

API = "/api/v10"
BODY = web.RequestKey("body", object)
FILES = web.RequestKey("files", list)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status)


async def _read_body(request: web.Request) -> tuple[Any, list[dict[str, Any]]]:
    """Returns (json payload, uploaded files) for a JSON or multipart (payload_json + files[n]) request."""
    ctype = request.headers.get("Content-Type", "")
    if ctype.startswith("multipart/"):
        form = await request.post()
        payload = json.loads(str(form.get("payload_json") or "{}"))
        files = []
        for key, value in form.items():
            if key.startswith("files[") and isinstance(value, web.FileField):
                data = value.file.read()
                files.append(
                    {
                        "field": key,
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "data": data,
                    }
                )
        return payload, files
    raw = await request.read()
    return (json.loads(raw) if raw else None), []


def _refused(method: str, path: str, body: Any, files: list[dict[str, Any]]) -> web.Response | None:
    """Discord's 400 for a message create or edit that breaks a documented limit (see discord_checks)."""
    parts = path.strip("/").split("/")
    if parts[0] == "interactions" and method == "POST" and isinstance(body, dict):
        kind = body.get("type")
        if kind not in (4, 7):
            return None
        body, creating = body.get("data") or {}, kind == 4
    elif parts[0] == "channels" and parts[2:3] == ["messages"] and method in ("POST", "PATCH"):
        creating = method == "POST"
    elif parts[0] == "webhooks" and (method, len(parts)) in (("POST", 3), ("PATCH", 5)):
        creating = method == "POST"
    else:
        return None
    answer = checks.problem(body, files=len(files), creating=creating)
    return None if answer is None else _json(answer, 400)


def build_app(fake: FakeDiscord) -> web.Application:
    """Returns the aiohttp application serving fake's state."""

    @web.middleware
    async def api(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(API):
            return await handler(request)
        from .discord_server import Logged

        body, files = await _read_body(request)
        entry = Logged(request.method, request.path[len(API) :], dict(request.query), body, files)
        request[BODY], request[FILES] = body, files
        fake.requests.append(entry)
        rule = fake.take_rule(request.method, entry.path)
        auth_free = entry.path.startswith(("/interactions/", "/webhooks/"))
        if rule is not None:
            response: web.StreamResponse = _json(rule.body, rule.status, rule.headers)
        elif not auth_free and request.headers.get("Authorization") != f"Bot {fake.token}":
            response = _error(401, 0, "401: Unauthorized")
        elif (refused := _refused(request.method, entry.path, body, files)) is not None:
            response = refused
        else:
            try:
                response = await handler(request)
            except Exception as exc:  # a bug in the fake: make it visible to the test, not a silent 500
                fake.errors.append(f"{request.method} {entry.path}: {exc!r}")
                raise
        entry.status = response.status
        await fake.notify()
        return response

    # login ---------------------------------------------------------------------------------------

    async def me(request: web.Request) -> web.Response:
        return _json(fake.users[fake.bot_id])

    async def application(request: web.Request) -> web.Response:
        return _json(
            {
                "id": fake.app_id,
                "name": "imabot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": fake.users[fake.user_id],
                "team": None,
                "verify_key": "00" * 32,
                "flags": 0,
                "summary": "",
                "rpc_origins": [],
            }
        )

    async def put_commands(request: web.Request) -> web.Response:
        scope = request.match_info.get("guild", "global")
        known = {c["name"]: c["id"] for c in fake.commands.get(scope, [])}
        registered = [
            {
                **cmd,
                "id": known.get(cmd["name"]) or fake.next_id(),
                "application_id": fake.app_id,
                "version": "1",
            }
            for cmd in request[BODY]
        ]
        if scope != "global":
            registered = [{**c, "guild_id": scope} for c in registered]
        fake.commands[scope] = registered
        return _json(registered)

    # messages with the bot token -----------------------------------------------------------------

    def new_message(channel_id: str, body: dict[str, Any], files: list[dict[str, Any]]) -> dict[str, Any]:
        nonce = str(body.get("nonce") or "")
        if nonce and body.get("enforce_nonce"):  # Discord answers a repeated nonce with the first message
            seen = fake.nonces.get((channel_id, nonce))
            if seen in fake.messages:
                return fake.messages[seen]
        attachments = [store_upload(f) for f in files]
        reference = body.get("message_reference")
        if reference:  # Discord answers with snowflakes as strings whatever the request used
            reference = {k: str(v) if k.endswith("_id") else v for k, v in reference.items()}
        msg = shapes.message(
            fake.next_id(),
            channel_id,
            fake.users[fake.bot_id],
            content=body.get("content") or "",
            attachments=attachments,
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            flags=int(body.get("flags") or 0),
            reference=reference,
        )
        fake.messages[msg["id"]] = msg
        if nonce and body.get("enforce_nonce"):
            fake.nonces[(channel_id, nonce)] = msg["id"]
        return msg

    def store_upload(file: dict[str, Any]) -> dict[str, Any]:
        att_id = fake.next_id()
        fake.uploads[att_id] = file["data"]
        url = f"{fake.base_url}/cdn/attachments/{att_id}/{file['filename']}"
        return shapes.attachment(att_id, file["filename"], len(file["data"]), url, file["content_type"])

    def edit_message(
        msg: dict[str, Any], body: dict[str, Any], files: list[dict[str, Any]]
    ) -> dict[str, Any]:
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                msg[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        if "attachments" in body:
            existing = {a["id"]: a for a in msg["attachments"]}
            kept = [existing[str(a["id"])] for a in body["attachments"] if str(a["id"]) in existing]
            msg["attachments"] = kept + [store_upload(f) for f in files]
        msg["edited_timestamp"] = shapes.now_iso()
        return msg

    async def post_message(request: web.Request) -> web.Response:
        channel_id = request.match_info["channel"]
        if channel_id not in fake.channels:
            return _error(404, 10003, "Unknown Channel")
        if channel_id in fake.forbidden_channels:
            return _error(403, 50013, "Missing Permissions")
        return _json(new_message(channel_id, request[BODY] or {}, request[FILES]))

    async def channel_message(request: web.Request) -> web.Response:
        msg = fake.messages.get(request.match_info["message"])
        if msg is None or msg["channel_id"] != request.match_info["channel"]:
            return _error(404, 10008, "Unknown Message")
        if request.method == "DELETE":
            fake.delete_message(msg["id"])
            return web.Response(status=204)
        if request.method == "PATCH":
            if msg["author"]["id"] != fake.bot_id:
                return _error(403, 50005, "Cannot edit a message authored by another user")
            edit_message(msg, request[BODY] or {}, request[FILES])
        return _json(msg)

    async def create_dm(request: web.Request) -> web.Response:
        recipient = str((request[BODY] or {}).get("recipient_id"))
        if recipient not in fake.users:
            return _error(400, 50033, "Invalid Recipients")
        return _json(fake.channels[fake.dm_channel_id(recipient)])

    # interactions --------------------------------------------------------------------------------

    async def callback(request: web.Request) -> web.Response:
        inter = fake.interactions.get(request.match_info["id"])
        if inter is None or inter.token != request.match_info["token"]:
            return _error(404, 10062, "Unknown interaction")
        if fake.clock() - inter.created > fake.ack_deadline:
            return _error(404, 10062, "Unknown interaction")
        if inter.acked_type is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        body = request[BODY] or {}
        kind, data = body.get("type"), body.get("data") or {}
        if kind == 9:  # MODAL: only an answer to a command or a component, and a well-formed one
            bad = discord_modals.problem(data) if inter.type in (2, 3) else "a modal cannot answer this"
            if bad:
                return _error(400, 50035, f"Invalid Form Body: {bad}")
            inter.modal = data
        inter.acked_type, inter.acked_at = kind, fake.clock()
        channel_id = inter.payload["channel_id"]
        msg = None
        if kind == 4:
            msg = new_message(channel_id, data, request[FILES])
        elif kind == 5:
            msg = new_message(channel_id, {"flags": (int(data.get("flags") or 0) & 64) | 128}, [])
            inter.loading = True
        elif kind == 7:
            msg = edit_message(fake.messages[inter.payload["message"]["id"]], data, request[FILES])
        if msg is not None and kind != 7:
            inter.original_id = msg["id"]
        resource: dict[str, Any] = {"type": kind}
        if msg is not None:
            resource["message"] = msg
        answer = {
            "interaction": {
                "id": inter.id,
                "type": inter.type,
                "response_message_id": msg["id"] if msg else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(msg and msg["flags"] & 64),
            },
            "resource": resource,
        }
        return _json(answer)

    def by_token(request: web.Request) -> FakeInteraction | web.Response:
        token = request.match_info["token"]
        inter = next((i for i in fake.interactions.values() if i.token == token), None)
        if inter is None or request.match_info["app"] != fake.app_id:
            return _error(404, 10015, "Unknown Webhook")
        if fake.clock() - inter.created > fake.token_ttl:
            return _error(401, 50027, "Invalid Webhook Token")
        return inter

    async def webhook_message(request: web.Request) -> web.Response:
        inter = by_token(request)
        if isinstance(inter, web.Response):
            return inter
        message_id = request.match_info["message"]
        if message_id == "@original":
            message_id = inter.original_id or (inter.payload.get("message") or {}).get("id") or ""
        msg = fake.messages.get(message_id)
        if msg is None:
            return _error(404, 10008, "Unknown Message")
        if request.method == "DELETE":
            fake.delete_message(message_id)
            return web.Response(status=204)
        if request.method == "PATCH":
            edit_message(msg, request[BODY] or {}, request[FILES])
            msg["flags"] &= ~128
            if message_id == inter.original_id:
                inter.loading = False
        return _json(msg)

    async def followup(request: web.Request) -> web.Response:
        inter = by_token(request)
        if isinstance(inter, web.Response):
            return inter
        body = request[BODY] or {}
        if inter.loading and inter.original_id in fake.messages:
            # Discord's documented quirk: the first followup after a deferred response edits the "thinking" one.
            inter.loading = False
            msg = edit_message(fake.messages[inter.original_id], body, request[FILES])
            msg["flags"] &= ~128
            return _json(msg)
        return _json(new_message(inter.payload["channel_id"], body, request[FILES]))

    # CDN and gateway -----------------------------------------------------------------------------

    async def cdn(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        fake.cdn_log.append((request.method, name))
        await fake.notify()
        if name.startswith("attachments/"):
            att_id = name.split("/")[1]
            if att_id in fake.uploads:
                return web.Response(body=fake.uploads[att_id], headers={"Content-Type": "video/mp4"})
        if name not in fake.cdn_files:
            return web.Response(status=404, text="not found")
        data, ctype = fake.cdn_files[name]
        return web.Response(body=data, headers={"Content-Type": ctype})

    app = web.Application(middlewares=[api], client_max_size=64 * 1024 * 1024)
    r = app.router
    r.add_get(f"{API}/users/@me", me)
    r.add_get(f"{API}/oauth2/applications/@me", application)
    r.add_put(f"{API}/applications/{{app}}/commands", put_commands)
    r.add_put(f"{API}/applications/{{app}}/guilds/{{guild}}/commands", put_commands)
    r.add_post(f"{API}/channels/{{channel}}/messages", post_message)
    r.add_route("*", f"{API}/channels/{{channel}}/messages/{{message}}", channel_message)
    r.add_post(f"{API}/users/@me/channels", create_dm)
    r.add_post(f"{API}/interactions/{{id}}/{{token}}/callback", callback)
    r.add_route("*", f"{API}/webhooks/{{app}}/{{token}}/messages/{{message}}", webhook_message)
    r.add_post(f"{API}/webhooks/{{app}}/{{token}}", followup)
    r.add_get("/cdn/{name:.+}", cdn)
    r.add_get("/gateway", fake.handle_gateway)
    return app
