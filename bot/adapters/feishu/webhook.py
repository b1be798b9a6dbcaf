"""Webhook envelope checks: decryption (encrypt_key), signature, verification token, url_verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from Crypto.Cipher import AES

URL_VERIFICATION = "url_verification"


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
    body: bytes, headers: Mapping[str, str], *, encrypt_key: str, verification_token: str
) -> dict[str, Any]:
    """Returns the event (or challenge) a webhook body carries, after every configured check.

    Raises Rejected: 400 malformed or undecryptable, 401 bad signature or verification token.
    """
    outer = _json(body)
    if "encrypt" in outer:
        if not encrypt_key:
            raise Rejected(400, "encrypted push but no encrypt_key configured")
        payload = _json(decrypt(str(outer["encrypt"]), encrypt_key))
    else:
        payload = outer
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
    if verification_token:
        token = (payload.get("header") or {}).get("token") or payload.get("token") or ""
        if not hmac.compare_digest(str(token).encode(), verification_token.encode()):
            raise Rejected(401, "invalid verification token")
    return payload


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "body is not JSON") from None
    if not isinstance(value, dict):
        raise Rejected(400, "body is not a JSON object")
    return value
