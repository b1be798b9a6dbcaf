"""Webhook envelope checks: decryption (encrypt_key), signature, verification token, url_verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from Crypto.Cipher import AES

URL_VERIFICATION = "url_verification"
MAX_DEPTH = 32  # a genuine push nests about 6 deep; deeper is hostile (a RecursionError waiting to happen)
MAX_AGE_S = 300.0  # Feishu's guidance: a signed push stamped further than 5 minutes from now is a replay
# Envelope fields and the type each must have when present (a list for `header` used to crash the bot).
_FIELDS = {"header": dict, "event": dict, "type": str, "token": str, "challenge": str, "schema": str}


class Rejected(Exception):
    """The request is not a genuine Feishu push; .status is the HTTP answer to give."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def decrypt(encrypted: str, encrypt_key: str) -> bytes:
    """Returns the plaintext of Feishu's AES-256-CBC envelope; raises Rejected when it is not one."""
    try:
        blob = base64.b64decode(encrypted, validate=True)
        key = hashlib.sha256(encrypt_key.encode()).digest()
        if len(blob) < 32 or len(blob) % 16:
            raise ValueError("bad length")
        plain = AES.new(key, AES.MODE_CBC, blob[:16]).decrypt(blob[16:])
        pad = plain[-1]
        if not 1 <= pad <= 16 or plain[-pad:] != bytes([pad]) * pad:
            raise ValueError("bad padding")
        return plain[:-pad]
    except ValueError:
        raise Rejected(400, "undecryptable body") from None


def signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """Returns the X-Lark-Signature Feishu computes for a push."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def is_challenge(payload: Mapping[str, Any]) -> bool:
    """Returns True for the url_verification handshake."""
    return payload.get("type") == URL_VERIFICATION


def open_envelope(
    body: bytes,
    headers: Mapping[str, str],
    *,
    encrypt_key: str,
    verification_token: str,
    now: float | None = None,
    max_age: float = MAX_AGE_S,
) -> dict[str, Any]:
    """Returns the event (or challenge) a webhook body carries, after every configured check. With an
    encrypt_key, a signed push must also be stamped (X-Lark-Request-Timestamp, Unix seconds) within
    max_age of now (default: the wall clock), so a captured request cannot be replayed once its dedup key
    has expired. Strings in the result carry no lone surrogates (they could not be stored or sent).

    Raises Rejected: 400 malformed (not JSON, nested deeper than MAX_DEPTH, an envelope field of the wrong
    type) or undecryptable, 401 bad signature, stale timestamp or wrong verification token.
    """
    outer = _json(body)
    if "encrypt" in outer:
        if not encrypt_key:
            raise Rejected(400, "encrypted push but no encrypt_key configured")
        if not isinstance(outer["encrypt"], str):
            raise Rejected(400, "encrypt is not a string")
        payload = _json(decrypt(outer["encrypt"], encrypt_key))
    else:
        payload = outer
    for name, kind in _FIELDS.items():
        if name in payload and payload[name] is not None and not isinstance(payload[name], kind):
            raise Rejected(400, f"{name} is not a{'n object' if kind is dict else ' string'}")
    challenge = is_challenge(payload)
    # Feishu signs events, not the url_verification handshake.
    if encrypt_key and not challenge:
        got = headers.get("X-Lark-Signature", "")
        want = signature(
            headers.get("X-Lark-Request-Timestamp", ""),
            headers.get("X-Lark-Request-Nonce", ""),
            encrypt_key,
            body,
        )
        if not got or not hmac.compare_digest(got.encode(), want.encode()):
            raise Rejected(401, "signature verification failed")
        _check_fresh(
            headers.get("X-Lark-Request-Timestamp", ""), time.time() if now is None else now, max_age
        )
    if verification_token:
        token = (payload.get("header") or {}).get("token") or payload.get("token") or ""
        if not hmac.compare_digest(str(token).encode(), verification_token.encode()):
            raise Rejected(401, "invalid verification token")
    return payload


def _check_fresh(stamp: str, now: float, max_age: float) -> None:
    try:
        sent = int(stamp.strip())
    except ValueError:
        raise Rejected(401, "request timestamp missing or not a number") from None
    if abs(now - sent) > max_age:
        raise Rejected(
            401, f"request timestamp {sent} is {now - sent:+.0f} s from now (replay or clock skew)"
        )


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "body is not JSON") from None
    except RecursionError:  # the C decoder guards its own stack: this is a (very) deep nesting
        raise Rejected(400, f"body nests deeper than {MAX_DEPTH} levels") from None
    if not isinstance(value, dict):
        raise Rejected(400, "body is not a JSON object")
    if nesting(value) > MAX_DEPTH:
        raise Rejected(400, f"body nests deeper than {MAX_DEPTH} levels")
    return _scrub(value)


def nesting(value: Any) -> int:
    """How deep lists and objects nest in a decoded JSON value (a scalar is 0); iterative, no recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:  # deeper is refused anyway: no need to walk further
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _scrub(value: Any) -> Any:
    """value with lone surrogates ("\\ud800" is valid JSON, not valid UTF-8) dropped from every string.
    Called only on values nesting at most MAX_DEPTH deep, so the recursion is bounded."""
    if isinstance(value, str):
        return value.encode("utf-8", "ignore").decode("utf-8") if _has_surrogate(value) else value
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
