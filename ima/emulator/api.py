"""The API host: product list, task create, task detail and asset verify under /open/v1."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .faults import DETAIL_KINDS, FaultKind
from .products import render_tree
from .replies import bearer_key, drop, get_state, note_fault, pause, reply
from .rules import INSUFFICIENT, Rejection, check_create

UNAUTHORIZED = 401
DEFAULT_MESSAGES = {
    401: "unauthorized",
    4008: "Insufficient points",
    4014: "This model requires a subscription",
    500: "Internal server error",
    6006: "Credit does not match the rule's points",
    6009: "No matching credit rule for the given parameters",
    6010: "Attribute ID does not match the calculated rule",
}


def _message(code: int, given: str) -> str:
    return given or DEFAULT_MESSAGES.get(code, f"error {code}")


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None


def _inner(body: Any) -> Mapping[str, Any]:
    try:
        inner = body["parameters"][0]["parameters"]
    except (KeyError, IndexError, TypeError):
        return {}
    return inner if isinstance(inner, Mapping) else {}


async def product_list(request: web.Request) -> web.Response:
    """GET /open/v1/product/list: the category's V2 tree, optionally filtered by `model_ids`."""
    state = get_state(request)
    if not state.known_key(bearer_key(request)):
        return reply(request, UNAUTHORIZED, "unauthorized")
    query = request.query
    if query.get("app") not in ("ima", "webAgent") or query.get("platform") != "web":
        return reply(request, state.config.codes.bad_request, "app must be 'ima' and platform 'web'")
    tree = state.trees.get(query.get("category", ""))
    if tree is None:
        return reply(request, state.config.codes.bad_request, "unknown category")
    model_ids = [m.strip() for m in query.get("model_ids", "").split(",") if m.strip()]
    return reply(request, data=render_tree(tree, state.variants, model_ids))


async def create_task(request: web.Request) -> web.Response:
    """POST /open/v1/tasks/create: checks in contract order, bills, and returns the new task id."""
    state = get_state(request)
    key = bearer_key(request)
    if key is None or not state.known_key(key):
        return reply(request, UNAUTHORIZED, "unauthorized")
    body = await _json_body(request)
    inner = _inner(body)
    prompt = inner.get("prompt") if isinstance(inner.get("prompt"), str) else None
    slow = state.faults.take([FaultKind.CREATE_DELAY], params=inner, prompt=prompt)
    if slow is not None:
        note_fault(request, slow.kind)
        await pause(state, slow.seconds or 0.0)
    forced = state.faults.take([FaultKind.CREATE_CODE], params=inner, prompt=prompt)
    if forced is not None and forced.code is not None:
        note_fault(request, forced.kind)
        return reply(request, forced.code, _message(forced.code, forced.message))
    try:
        order = check_create(body, state.trees, state.config.codes)
    except Rejection as exc:
        return reply(request, exc.code, exc.message)
    if state.balances[key] < order.cost:
        return reply(request, INSUFFICIENT, _message(INSUFFICIENT, ""))
    task = state.open_task(key, order)
    dropped = state.faults.take([FaultKind.CREATE_DROP], params=inner, prompt=prompt)
    if dropped is not None:
        note_fault(request, dropped.kind)
        return drop(request)
    return reply(
        request,
        data={
            "id": task.id,
            "biz_id": task.biz_id,
            "task_type": task.task_type,
            "medias": [],
            "generate_count": task.n,
            "created_at": task.created_ms,
            "timeout_at": task.timeout_ms,
        },
    )


async def task_detail(request: web.Request) -> web.StreamResponse:
    """POST /open/v1/tasks/detail: the task's medias at emulator time, or an injected failure."""
    state = get_state(request)
    key = bearer_key(request)
    if key is None or not state.known_key(key):
        return reply(request, UNAUTHORIZED, "unauthorized")
    body = await _json_body(request)
    task_id = body.get("task_id") if isinstance(body, Mapping) else None
    fault = state.faults.take(
        DETAIL_KINDS,
        task_id=str(task_id) if task_id is not None else None,
    )
    if fault is not None:
        note_fault(request, fault.kind)
        if fault.kind is FaultKind.DETAIL_DROP:
            return drop(request)
        if fault.kind is FaultKind.DETAIL_HTTP:
            status = fault.code or 503
            return web.Response(
                status=status,
                text=f"<html><body>{status} upstream error</body></html>",
                content_type="text/html",
            )
        if fault.kind is FaultKind.DETAIL_CODE and fault.code is not None:
            return reply(request, fault.code, _message(fault.code, fault.message))
        await pause(state, fault.seconds or 0.0)
    task = state.tasks.get(str(task_id)) if task_id is not None else None
    if task is None or task.key != key:
        return reply(request, state.config.codes.unknown_task, "task not found")
    return reply(request, data=task.get_detail(state.now(), str(request.url.origin()), state.variants))


async def verify_asset(request: web.Request) -> web.Response:
    """POST /open/v1/assets/verify: a compliance result whose status the config or admin API sets."""
    state = get_state(request)
    if not state.known_key(bearer_key(request)):
        return reply(request, UNAUTHORIZED, "unauthorized")
    body = await _json_body(request)
    url = body.get("url") if isinstance(body, Mapping) else None
    if not isinstance(url, str) or not url:
        return reply(request, state.config.codes.bad_request, "url is required")
    status = state.verify_status
    result = {
        "id": "asset_" + hashlib.sha1(url.encode()).hexdigest()[:12],
        "name": str(body.get("name") or ""),
        "url": url,
        "asset_type": "image",
        "status": status,
        "error": {"code": "", "message": ""}
        if status.lower() != "failed"
        else {"code": "InvalidAsset", "message": "asset rejected"},
    }
    return reply(request, data={"result": result})


def add_api_routes(app: web.Application) -> None:
    app.router.add_get("/open/v1/product/list", product_list)
    app.router.add_post("/open/v1/tasks/create", create_task)
    app.router.add_post("/open/v1/tasks/detail", task_detail)
    app.router.add_post("/open/v1/assets/verify", verify_asset)
