"""How the emulator answers: the JSON envelope, the mirrored-status mapping, the request log, drops."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .state import LOGGED_HEADERS, SECRET_QUERY, EmulatorState, RequestRecord, mask, mask_json, mask_text

STATE: web.AppKey[EmulatorState] = web.AppKey("ima_emulator_state", EmulatorState)
RECORD: web.RequestKey[RequestRecord] = web.RequestKey("ima_emulator_record", RequestRecord)
DROPPED: web.RequestKey[bool] = web.RequestKey("ima_emulator_dropped", bool)
ADMIN_PREFIX = "/_emulator/"

# Mirrored-status mode: the HTTP status that accompanies each business code.
STATUS_FOR_CODE: dict[int, int] = {
    400: 400,
    401: 401,
    403: 403,
    404: 404,
    4008: 402,
    4014: 403,
    6006: 400,
    6009: 400,
    6010: 400,
    500: 500,
}


def http_status_for(code: int) -> int:
    """The mirrored HTTP status of a business code: the table, a 4xx/5xx code itself, else 400."""
    if code in (0, 200):
        return 200
    if code in STATUS_FOR_CODE:
        return STATUS_FOR_CODE[code]
    return code if 400 <= code <= 599 else 400


def get_state(request: web.Request) -> EmulatorState:
    return request.app[STATE]


def reply(
    request: web.Request, code: int | None = None, message: str = "success", data: Any = None
) -> web.Response:
    """The envelope `{code, message, data}`; code None means success (0 or 200 as the variant says).

    In mirrored mode a business error carries `http_status_for(code)`; otherwise HTTP is always 200.
    """
    state = get_state(request)
    if code is None:
        code = state.variants.success_code
    status = http_status_for(code) if state.mirror_status else 200
    record = request.get(RECORD)
    if record is not None:
        record.code = code
    return web.json_response({"code": code, "message": message, "data": data}, status=status)


def note_fault(request: web.Request, name: str) -> None:
    """Mark the logged request with the fault that shaped its answer."""
    record = request.get(RECORD)
    if record is not None:
        record.fault = name


def drop(request: web.Request) -> web.Response:
    """Abort the connection without answering; the returned response is never sent."""
    request[DROPPED] = True
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)


async def pause(state: EmulatorState, seconds: float) -> None:
    """Wait `seconds` of real time, cut short when the emulator stops (so shutdown never hangs)."""
    try:
        await asyncio.wait_for(state.stopping.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        pass


def bearer_key(request: web.Request) -> str | None:
    """The API key of an `Authorization: Bearer <key>` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def log_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every non-admin request (masked) before handling it, and its HTTP status after."""
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    state = get_state(request)
    presented = [bearer_key(request), *(request.query.get(k) for k in ("appUid", "cmimToken"))]
    secrets = state.secrets(*presented)
    headers = {}
    for name in LOGGED_HEADERS:
        if name in request.headers:
            value = request.headers[name]
            if name == "authorization":
                scheme, _, token = value.partition(" ")
                value = f"{scheme} {mask(token)}" if token else mask(value)
            headers[name] = mask_text(value, secrets)
    query = {
        k: mask(v) if k.lower() in SECRET_QUERY else mask_text(v, secrets) for k, v in request.query.items()
    }
    record = state.requests.add(
        at=state.now(),
        method=request.method,
        path=request.path,
        query=query,
        headers=headers,
        body=await _logged_body(request, secrets),
    )
    request[RECORD] = record
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        record.status = exc.status
        raise
    record.status = None if request.get(DROPPED) else response.status
    return response


async def _logged_body(request: web.Request, secrets: list[str]) -> Any:
    if not request.can_read_body:
        return None
    raw = await request.read()
    if request.method == "PUT":
        return {"bytes": len(raw)}
    try:
        return mask_json(json.loads(raw), secrets)
    except (ValueError, UnicodeDecodeError):
        return {"bytes": len(raw)}
