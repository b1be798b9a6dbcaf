"""A tiny scriptable IMA server for the client tests, written from the wire contract (not the emulator)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

DATA = Path(__file__).parent / "data"
API_KEY = "ima_contract_test_key_0123456789"
TOKEN_PARAMS = {
    "appUid",
    "appId",
    "appKey",
    "cmimToken",
    "sign",
    "timestamp",
    "nonce",
    "fService",
    "fType",
    "fSuffix",
    "fContentType",
}


def load_tree() -> list[Any]:
    return json.loads((DATA / "contract_products.json").read_text(encoding="utf-8"))["tree"]


@dataclass
class Reply:
    """One scripted answer: a JSON body (or raw bytes) with a status, or a dropped connection, or a
    handler that holds the request until `hold` is set."""

    body: Any = None
    status: int | None = None  # None: 200, or the mirrored code when the server mirrors
    raw: bytes | None = None
    drop: bool = False
    hold: asyncio.Event | None = None


@dataclass
class Seen:
    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ContractServer:
    tree: list[Any] = field(default_factory=load_tree)
    mirror_status: bool = False  # business errors with an HTTP status mirroring the code
    success_code: int = 0
    create_replies: list[Reply] = field(default_factory=list)
    detail_replies: dict[str, list[Reply]] = field(default_factory=dict)
    token_replies: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    objects: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _pending_types: dict[str, str] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    @property
    def upload_base_url(self) -> str:
        return self.base_url + "/uploads"

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def start(self) -> ContractServer:
        app = web.Application()
        app.router.add_get("/open/v1/product/list", self._products)
        app.router.add_post("/open/v1/tasks/create", self._create)
        app.router.add_post("/open/v1/tasks/detail", self._detail)
        app.router.add_get("/uploads/api/rest/oss/getuploadtoken", self._token)
        app.router.add_put("/oss/{name}", self._put)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- helpers -------------------------------------------------------------------------------

    def status_for(self, code: Any) -> int:
        if not self.mirror_status or code in (0, 200):
            return 200
        return code if isinstance(code, int) and 400 <= code < 600 else 400

    def envelope(self, code: int, message: str = "", data: Any = None) -> web.Response:
        body = {"code": code, "message": message, "data": data}
        return web.json_response(body, status=self.status_for(code))

    async def _record(self, request: web.Request) -> Seen:
        seen = Seen(
            request.method, request.path, dict(request.headers), dict(request.query), await request.read()
        )
        self.seen.append(seen)
        return seen

    async def _play(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.hold is not None:
            await reply.hold.wait()
        if reply.drop:
            request.transport.close()
            raise web.HTTPInternalServerError()  # never reaches the client: the connection is gone
        if reply.raw is not None:
            return web.Response(body=reply.raw, status=reply.status or 200, content_type="text/html")
        status = reply.status
        if status is None:
            status = self.status_for(reply.body.get("code")) if isinstance(reply.body, Mapping) else 200
        return web.json_response(reply.body, status=status)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {API_KEY}"

    # ---- routes --------------------------------------------------------------------------------

    async def _products(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if not self._authorized(request):
            return self.envelope(401, "unauthorized")
        return self.envelope(self.success_code, "success", self.tree)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        if self.create_replies:
            return await self._play(request, self.create_replies.pop(0))
        if not self._authorized(request):
            return self.envelope(401, "unauthorized")
        number = len(self.requests("/open/v1/tasks/create"))
        data = {
            "id": f"task_{number}",
            "biz_id": f"biz_{number}",
            "medias": [],
            "created_at": 1,
            "timeout_at": 2,
        }
        return self.envelope(self.success_code, "success", data)

    async def _detail(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        task_id = seen.json().get("task_id", "")
        replies = self.detail_replies.get(task_id)
        if not replies:
            return self.envelope(404, "task not found")
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return await self._play(request, reply)

    async def _token(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        if self.token_replies:
            return await self._play(request, self.token_replies.pop(0))
        q = seen.query
        if set(q) != TOKEN_PARAMS or q["fService"] != "privite" or q["appUid"] != API_KEY:
            return self.envelope(400, "bad parameters")
        text = f"{q['appId']}|{q['appKey']}|{q['timestamp']}|{q['nonce']}"
        if q["sign"] != hashlib.sha1(text.encode()).hexdigest().upper():
            return self.envelope(400, "bad sign")
        name = f"obj{len(self._pending_types) + 1}.{q['fSuffix']}"
        self._pending_types[name] = q["fContentType"]
        # The signature holds %2B and %3D: a client that re-quotes the URL breaks it.
        ful = f"{self.base_url}/oss/{name}?Expires=1999999999&OSSAccessKeyId=k&Signature=ab%2Bc%2Fd%3D"
        data = {"ful": ful, "fdl": f"https://cdn.example.test/{name}", "ful_expire": "x", "fdl_expire": "y"}
        return self.envelope(self.success_code, "ok", data)

    async def _put(self, request: web.Request) -> web.StreamResponse:
        seen = await self._record(request)
        name = request.match_info["name"]
        expected = self._pending_types.get(name)
        if (
            request.raw_path.partition("?")[2]
            != "Expires=1999999999&OSSAccessKeyId=k&Signature=ab%2Bc%2Fd%3D"
        ):
            return web.Response(status=403, text="SignatureDoesNotMatch (query)")
        if expected is None or request.headers.get("Content-Type") != expected:
            return web.Response(status=403, text="SignatureDoesNotMatch (content type)")
        self.objects[name] = (expected, seen.body)
        return web.Response(status=200)
