"""Webhook envelope checks (pure) against the fake's Feishu-style encryption and lark-oapi's own cipher."""

from __future__ import annotations

import hashlib
import json

import lark_oapi as lark
import pytest

from bot.adapters.feishu import webhook
from tests.fakes.feishu_events import encrypt, text_event

KEY = "kE9xQ2"


def test_fake_envelope_matches_lark_and_ours() -> None:
    plain = json.dumps({"hello": "飞书"}, ensure_ascii=False).encode()
    blob = encrypt(plain, KEY)
    assert lark.AESCipher(KEY).decrypt_str(blob) == plain.decode()  # the fake encrypts as Feishu does
    assert webhook.decrypt(blob, KEY) == plain


@pytest.mark.parametrize("blob", [encrypt(b"{}", "other-key"), "not base64!", "YWJj"])
def test_undecryptable_envelopes_are_rejected(blob: str) -> None:
    with pytest.raises(webhook.Rejected) as err:
        webhook.decrypt(blob, KEY)
    assert err.value.status == 400


def signed(body: bytes, key: str = KEY) -> dict[str, str]:
    ts, nonce = "1700000000", "n0nce"
    sig = hashlib.sha256((ts + nonce + key).encode() + body).hexdigest()
    return {"X-Lark-Request-Timestamp": ts, "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": sig}


def test_open_envelope_accepts_a_genuine_push() -> None:
    event = text_event("hi")
    event["header"]["token"] = "vt"
    body = json.dumps({"encrypt": encrypt(json.dumps(event).encode(), KEY)}).encode()
    assert webhook.open_envelope(body, signed(body), encrypt_key=KEY, verification_token="vt") == event


def test_token_only_mode_checks_the_token() -> None:
    event = text_event("hi")
    event["header"]["token"] = "vt"
    body = json.dumps(event).encode()
    assert webhook.open_envelope(body, {}, encrypt_key="", verification_token="vt")["header"]["token"] == "vt"
    with pytest.raises(webhook.Rejected) as err:
        webhook.open_envelope(body, {}, encrypt_key="", verification_token="other")
    assert err.value.status == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"not json", 400), (b"[1, 2]", 400), (json.dumps({"encrypt": "x"}).encode(), 400)],
)
def test_malformed_bodies_are_400(body: bytes, status: int) -> None:
    with pytest.raises(webhook.Rejected) as err:
        webhook.open_envelope(body, {}, encrypt_key="", verification_token="")
    assert err.value.status == status


def test_a_signed_body_cannot_be_swapped() -> None:
    body = json.dumps(text_event("a")).encode()
    other = json.dumps(text_event("b")).encode()
    with pytest.raises(webhook.Rejected) as err:
        webhook.open_envelope(other, signed(body), encrypt_key=KEY, verification_token="")
    assert err.value.status == 401
