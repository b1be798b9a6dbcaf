"""The upload host: the signed upload-token call, the presigned PUT, and the CDN that serves results."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from urllib.parse import quote

from aiohttp import web

from .faults import FaultKind
from .replies import get_state, note_fault, reply
from .state import EmulatorState, UploadSlot

APP_ID = "webAgent"
APP_KEY = "32jdskjdk320eew"
F_SERVICE = "privite"  # sic: the misspelling is the real contract
F_TYPES = frozenset({"picture", "video", "audio"})
NONCE_LENGTH = 21
TOKEN_PARAMS = (
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
)
ACCESS_KEY_ID = "EMULATOR"
_RESULT = re.compile(r"^results/(?P<task>[\w-]+)/(?P<index>\d+)\.(?P<ext>mp4|jpg)$")
_SUFFIX = re.compile(r"^[a-z0-9]{1,5}$")
_ASSET_TYPES = {"mp4": "video/mp4", "jpg": "image/jpeg"}


def expected_sign(timestamp: str, nonce: str) -> str:
    """The token signature: UPPER(hex(sha1("webAgent|<appKey>|<timestamp>|<nonce>")))."""
    return hashlib.sha1(f"{APP_ID}|{APP_KEY}|{timestamp}|{nonce}".encode()).hexdigest().upper()


def _presign(state: EmulatorState, path: str, expires: int) -> str:
    message = f"PUT\n{path}\n{expires}".encode()
    return hmac.new(state.signing_secret, message, hashlib.sha1).hexdigest()


def _oss_error(status: int, code: str) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code></Error>\n'
    return web.Response(status=status, text=body, content_type="application/xml")


async def upload_token(request: web.Request) -> web.Response:
    """GET /api/rest/oss/getuploadtoken: check the 11 signed params, hand out a PUT URL and a CDN URL."""
    state = get_state(request)
    query = request.query
    bad = state.config.codes.bad_request
    missing = [name for name in TOKEN_PARAMS if not query.get(name)]
    if missing:
        return reply(request, bad, f"missing parameter(s): {', '.join(missing)}")
    forced = state.faults.take([FaultKind.UPLOAD_CODE])
    if forced is not None and forced.code is not None:
        note_fault(request, forced.kind)
        return reply(request, forced.code, forced.message or f"error {forced.code}")
    if query["appId"] != APP_ID or query["appKey"] != APP_KEY:
        return reply(request, 403, "invalid appId or appKey")
    if query["fService"] != F_SERVICE:
        return reply(request, bad, "invalid fService")
    if query["fType"] not in F_TYPES or not _SUFFIX.match(query["fSuffix"]):
        return reply(request, bad, "invalid fType or fSuffix")
    timestamp, nonce = query["timestamp"], query["nonce"]
    if len(nonce) != NONCE_LENGTH or not timestamp.isdigit():
        return reply(request, bad, "invalid timestamp or nonce")
    settings = state.config.upload
    if settings.check_timestamp and abs(time.time() - int(timestamp)) > settings.max_skew_seconds:
        return reply(request, 403, "timestamp expired")
    if not hmac.compare_digest(query["sign"], expected_sign(timestamp, nonce)):
        return reply(request, 403, "signature mismatch")
    key = query["appUid"]
    if key != query["cmimToken"] or not state.known_key(key):
        return reply(request, 401, "unauthorized")
    now = time.gmtime()
    uid = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = (
        f"{APP_ID}/{F_SERVICE}/{now.tm_year:04d}/{now.tm_mon:02d}/{now.tm_mday:02d}/"
        f"{int(time.time())}_{uid}_{uuid.uuid4().hex}.{query['fSuffix']}"
    )
    expires = int(time.time()) + settings.url_ttl_seconds
    state.uploads[path] = UploadSlot(content_type=query["fContentType"], expires=expires)
    origin = str(request.url.origin())
    signature = quote(_presign(state, path, expires), safe="")
    data = {
        "ful": f"{origin}/oss/{path}?Expires={expires}&OSSAccessKeyId={ACCESS_KEY_ID}&Signature={signature}",
        "fdl": f"{origin}/cdn/{path}",
        "ful_expire": str(expires),
        "fdl_expire": str(expires),
        "fdl_key": path,
    }
    return reply(request, data=data)


async def put_object(request: web.Request) -> web.Response:
    """PUT /oss/<path>: store the bytes if the presigned query and the Content-Type hold (403 otherwise)."""
    state = get_state(request)
    path = request.match_info["path"]
    slot = state.uploads.get(path)
    if slot is None:
        return _oss_error(404, "NoSuchUpload")
    forced = state.faults.take([FaultKind.PUT_STATUS])
    if forced is not None:
        note_fault(request, forced.kind)
        return _oss_error(forced.code or 500, "InjectedFault")
    query = request.query
    expires = query.get("Expires", "")
    good = hmac.compare_digest(query.get("Signature", ""), _presign(state, path, slot.expires))
    if not good or expires != str(slot.expires) or query.get("OSSAccessKeyId") != ACCESS_KEY_ID:
        return _oss_error(403, "SignatureDoesNotMatch")
    if slot.expires < time.time():
        return _oss_error(403, "AccessDenied")
    given = request.headers.get("Content-Type", "").strip()
    if state.config.upload.enforce_content_type and given != slot.content_type:
        return _oss_error(403, "SignatureDoesNotMatch")
    slot.data = await request.read()
    if not state.config.upload.enforce_content_type and given:
        slot.content_type = given
    etag = hashlib.md5(slot.data, usedforsecurity=False).hexdigest().upper()
    return web.Response(status=200, headers={"ETag": f'"{etag}"'})


async def cdn_get(request: web.Request) -> web.Response:
    """GET /cdn/<path>: an uploaded object, or a finished task's video (.mp4) or cover (.jpg)."""
    state = get_state(request)
    path = request.match_info["path"]
    result = _RESULT.match(path)
    if result is not None:
        task = state.tasks.get(result["task"])
        if task is None or int(result["index"]) >= task.n or not task.has_video(state.now()):
            return _oss_error(404, "NoSuchKey")
        ext = result["ext"]
        return web.Response(body=state.assets[ext], content_type=_ASSET_TYPES[ext])
    slot = state.uploads.get(path)
    if slot is None or slot.data is None:
        return _oss_error(404, "NoSuchKey")
    return web.Response(body=slot.data, headers={"Content-Type": slot.content_type})


def add_upload_routes(app: web.Application) -> None:
    app.router.add_get("/api/rest/oss/getuploadtoken", upload_token)
    app.router.add_put("/oss/{path:.+}", put_object)


def add_cdn_routes(app: web.Application) -> None:
    app.router.add_get("/cdn/{path:.+}", cdn_get)
