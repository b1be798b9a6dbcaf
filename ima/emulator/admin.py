"""The admin API under /_emulator/: lets another process (CLI tests, kill tests) drive the emulator."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from aiohttp import web

from .config import CoverField, DurationType, EmulatorConfigError, PendingStatus, ResolutionCase
from .faults import Fault, FaultError
from .replies import get_state
from .state import mask

_VARIANT_TYPES: dict[str, Any] = {
    "cover_field": CoverField,
    "duration_type": DurationType,
    "resolution_case": ResolutionCase,
    "pending_resource_status": PendingStatus,
}


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None


async def get_overview(request: web.Request) -> web.Response:
    """GET /_emulator/state: time, mode, variants, balances (masked keys) and counts."""
    state = get_state(request)
    return web.json_response(
        {
            "now": state.now(),
            "speed": state.config.speed,
            "mirror_status": state.mirror_status,
            "verify_status": state.verify_status,
            "variants": {
                k: (v.value if hasattr(v, "value") else v) for k, v in asdict(state.variants).items()
            },
            "balances": {mask(k): v for k, v in state.balances.items()},
            "tasks": len(state.tasks),
            "requests": len(state.requests),
            "faults": len(state.faults),
        }
    )


async def get_requests(request: web.Request) -> web.Response:
    """GET /_emulator/requests?path=&method=: the masked request log."""
    state = get_state(request)
    records = state.requests.find(request.query.get("path"), request.query.get("method"))
    return web.json_response([r.to_json() for r in records])


async def clear_requests(request: web.Request) -> web.Response:
    get_state(request).requests.clear()
    return web.json_response({"ok": True})


async def get_tasks(request: web.Request) -> web.Response:
    """GET /_emulator/tasks: every task with its phase now (owner keys left out)."""
    state = get_state(request)
    now = state.now()
    return web.json_response([t.to_json(now) for t in state.tasks.values()])


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response([a.to_json() for a in get_state(request).faults])


async def add_faults(request: web.Request) -> web.Response:
    """POST /_emulator/faults: install one fault (an object) or several (a list); 201 with their ids."""
    state = get_state(request)
    body = await _body(request)
    items = body if isinstance(body, list) else [body]
    try:
        faults = [Fault.from_mapping(item) for item in items]
    except FaultError as exc:
        return _error(exc.message)
    armed = [state.faults.add(f) for f in faults]
    return web.json_response([a.to_json() for a in armed], status=201)


async def clear_faults(request: web.Request) -> web.Response:
    get_state(request).faults.clear()
    return web.json_response({"ok": True})


async def remove_fault(request: web.Request) -> web.Response:
    try:
        fault_id = int(request.match_info["id"])
    except ValueError:
        return _error("fault id must be an integer")
    if not get_state(request).faults.remove(fault_id):
        return _error("no such fault", 404)
    return web.json_response({"ok": True})


async def reset(request: web.Request) -> web.Response:
    """POST /_emulator/reset: back to the configured state (balances, faults, mode), no tasks or log."""
    get_state(request).reset()
    return web.json_response({"ok": True})


async def advance(request: web.Request) -> web.Response:
    """POST /_emulator/advance {"seconds": s}: move emulator time forward."""
    body = await _body(request)
    seconds = body.get("seconds") if isinstance(body, Mapping) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return _error("seconds must be a non-negative number")
    return web.json_response({"now": get_state(request).advance(seconds)})


async def set_mode(request: web.Request) -> web.Response:
    """POST /_emulator/mode {"mirror_status"?, "verify_status"?, "variants"?}: switch at runtime."""
    state = get_state(request)
    body = await _body(request)
    if not isinstance(body, Mapping):
        return _error("body must be an object")
    unknown = set(body) - {"mirror_status", "verify_status", "variants"}
    if unknown:
        return _error(f"unknown key(s): {', '.join(sorted(unknown))}")
    variants = body.get("variants") or {}
    try:
        changes = _variant_changes(variants)
    except EmulatorConfigError as exc:
        return _error(exc.message)
    if "mirror_status" in body:
        if not isinstance(body["mirror_status"], bool):
            return _error("mirror_status must be true or false")
        state.mirror_status = body["mirror_status"]
    if "verify_status" in body:
        state.verify_status = str(body["verify_status"])
    state.set_variants(**changes)
    return await get_overview(request)


def _variant_changes(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise EmulatorConfigError("variants must be an object")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _VARIANT_TYPES:
            text = "null" if value is None else ("empty" if value == "" else str(value))
            try:
                out[key] = _VARIANT_TYPES[key](text)
            except ValueError:
                raise EmulatorConfigError(f"bad value for variants.{key}") from None
        elif key == "success_code" and value in (0, 200) and not isinstance(value, bool):
            out[key] = value
        elif key == "root_level" and isinstance(value, bool):
            out[key] = value
        else:
            raise EmulatorConfigError(f"bad variant {key}")
    return out


async def set_balance(request: web.Request) -> web.Response:
    """POST /_emulator/balances {"key", "balance"}: set (or add) a key's balance."""
    state = get_state(request)
    body = await _body(request)
    key = body.get("key") if isinstance(body, Mapping) else None
    balance = body.get("balance") if isinstance(body, Mapping) else None
    if not isinstance(key, str) or not key or isinstance(balance, bool) or not isinstance(balance, int):
        return _error("need a string key and an integer balance")
    state.balances[key] = balance
    return web.json_response({"key": mask(key), "balance": balance})


def add_admin_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_emulator/state", get_overview)
    r.add_get("/_emulator/requests", get_requests)
    r.add_delete("/_emulator/requests", clear_requests)
    r.add_get("/_emulator/tasks", get_tasks)
    r.add_get("/_emulator/faults", get_faults)
    r.add_post("/_emulator/faults", add_faults)
    r.add_delete("/_emulator/faults", clear_faults)
    r.add_delete("/_emulator/faults/{id}", remove_fault)
    r.add_post("/_emulator/reset", reset)
    r.add_post("/_emulator/advance", advance)
    r.add_post("/_emulator/mode", set_mode)
    r.add_post("/_emulator/balances", set_balance)
