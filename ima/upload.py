"""Media upload (contract §7): signed upload-token request, presigned PUT, and the public CDN URL."""

from __future__ import annotations

import hashlib
import mimetypes
import posixpath
import time
import uuid
from collections.abc import Callable

import aiohttp
from yarl import URL

from ._transport import Transport
from .errors import AuthError, ImaApiError, ImaTransportError, UploadError

APP_ID = "webAgent"
APP_KEY = "32jdskjdk320eew"  # public and fixed in every vendor client; not a secret
TOKEN_PATH = "/api/rest/oss/getuploadtoken"
F_SERVICE = "privite"  # sic: the misspelling is the real contract
_DEFAULTS = {"picture": ("image/jpeg", "jpeg"), "video": ("video/mp4", "mp4"), "audio": ("audio/mpeg", "mp3")}
_SUFFIXES = {"image/jpeg": "jpeg", "image/jpg": "jpeg", "video/quicktime": "mov", "audio/mpeg": "mp3"}


def sign(timestamp: str, nonce: str) -> str:
    """UPPERCASE hex SHA-1 of `webAgent|<appKey>|<timestamp>|<nonce>` (the API key is not part of it)."""
    return hashlib.sha1(f"{APP_ID}|{APP_KEY}|{timestamp}|{nonce}".encode()).hexdigest().upper()


def new_nonce() -> str:
    """A fresh 21-character nonce (the first 21 hex digits of a uuid4, as the vendor clients send)."""
    return uuid.uuid4().hex[:21]


def file_kind(content_type: str) -> str:
    """The `fType` for a MIME type: `picture`, `video` or `audio`."""
    major = content_type.split("/", 1)[0].strip().lower()
    return {"video": "video", "audio": "audio"}.get(major, "picture")


def describe_file(filename: str, content_type: str | None = None) -> tuple[str, str]:
    """(content type, suffix): the given or guessed MIME type (default image/jpeg) and the lowercase
    extension without the dot (from the name, else from the type)."""
    ext = posixpath.splitext(filename.replace("\\", "/"))[1].lstrip(".").lower()
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if not ctype:
        ctype = mimetypes.guess_type(f"x.{ext}")[0] if ext else None
        ctype = ctype or _DEFAULTS["picture"][0]
    if not ext:
        guessed = mimetypes.guess_extension(ctype) or ""
        ext = _SUFFIXES.get(ctype) or guessed.lstrip(".") or _DEFAULTS[file_kind(ctype)][1]
    return ctype, ext


def token_params(
    api_key: str, *, content_type: str, suffix: str, timestamp: str, nonce: str
) -> dict[str, str]:
    """The 11 query parameters of the upload-token request (the API key goes in twice)."""
    return {
        "appUid": api_key,
        "appId": APP_ID,
        "appKey": APP_KEY,
        "cmimToken": api_key,
        "sign": sign(timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "fService": F_SERVICE,
        "fType": file_kind(content_type),
        "fSuffix": suffix,
        "fContentType": content_type,
    }


async def upload_bytes(
    transport: Transport,
    session: aiohttp.ClientSession,
    api_key: str,
    data: bytes,
    *,
    upload_base_url: str,
    filename: str,
    content_type: str | None = None,
    token_timeout: float = 30.0,
    put_timeout: float = 60.0,
    user_agent: str = "",
    now: Callable[[], float] = time.time,
    nonce: Callable[[], str] = new_nonce,
) -> str:
    """The public CDN URL (`fdl`) of `data` after a token request and a presigned PUT with the same
    Content-Type. Raises AuthError (code 401 from the token service) or UploadError."""
    ctype, suffix = describe_file(filename, content_type)
    params = token_params(
        api_key, content_type=ctype, suffix=suffix, timestamp=str(int(now())), nonce=nonce()
    )
    headers = {"User-Agent": user_agent} if user_agent else {}
    try:
        token = await transport.request(
            "GET",
            upload_base_url.rstrip("/") + TOKEN_PATH,
            params=params,
            headers=headers,
            timeout_s=token_timeout,
            label="upload token",
        )
    except AuthError:
        raise
    except ImaApiError as exc:
        raise UploadError(f"Get upload token failed: {exc.message}", code=exc.code) from None
    except ImaTransportError as exc:
        raise UploadError(f"Get upload token failed: {exc.message}", code="transport") from None
    ful = str((token or {}).get("ful") or "") if isinstance(token, dict) else ""
    fdl = str((token or {}).get("fdl") or "") if isinstance(token, dict) else ""
    if not ful or not fdl:
        raise UploadError("The upload token answer lacks `ful` or `fdl`", code="bad_token")
    started, status = time.perf_counter(), 0
    try:
        # encoded=True: the presigned query is already percent-encoded and is part of the signature.
        async with session.put(
            URL(ful, encoded=True),
            data=data,
            headers={"Content-Type": ctype},
            timeout=aiohttp.ClientTimeout(total=put_timeout),
        ) as resp:
            await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UploadError(f"Upload PUT failed ({type(exc).__name__})", code="transport") from None
    finally:
        if transport.observe is not None:  # metrics: the PUT's path is the label "upload", never the URL
            path = URL(ful, encoded=True).path
            transport.observe("PUT", path, str(status or "error"), time.perf_counter() - started)
    if status >= 400:
        raise UploadError(f"Upload PUT answered HTTP {status}", code=status)
    return fdl
