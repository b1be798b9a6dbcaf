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


NOW = 1_700_000_000.0


def signed(body: bytes, key: str = KEY, ts: str = "1700000000") -> dict[str, str]:
    nonce = "n0nce"
    sig = hashlib.sha256((ts + nonce + key).encode() + body).hexdigest()
    return {"X-Lark-Request-Timestamp": ts, "X-Lark-Request-Nonce": nonce, "X-Lark-Signature": sig}


def test_open_envelope_accepts_a_genuine_push() -> None:
    event = text_event("hi")
    event["header"]["token"] = "vt"
    body = json.dumps({"encrypt": encrypt(json.dumps(event).encode(), KEY)}).encode()
    assert (
        webhook.open_envelope(body, signed(body), encrypt_key=KEY, verification_token="vt", now=NOW) == event
    )


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
        webhook.open_envelope(other, signed(body), encrypt_key=KEY, verification_token="", now=NOW)
    assert err.value.status == 401


@pytest.mark.parametrize(
    ("stamp", "accepted"),
    [
        ("1700000000", True),
        ("1699999701", True),
        ("1700000299", True),
        ("1699999699", False),
        ("1700000301", False),
        ("1699740800", False),
        ("", False),
        ("soon", False),
        ("1e9", False),
    ],
)
def test_signed_pushes_must_be_stamped_within_the_window(stamp: str, accepted: bool) -> None:
    body = json.dumps(text_event("a")).encode()

    def open_it() -> dict:
        return webhook.open_envelope(
            body, signed(body, ts=stamp), encrypt_key=KEY, verification_token="", now=NOW, max_age=300
        )

    if accepted:
        assert open_it()["header"]["event_type"] == "im.message.receive_v1"
        return
    with pytest.raises(webhook.Rejected) as err:
        open_it()
    assert err.value.status == 401


def test_the_window_is_configurable() -> None:
    body = json.dumps(text_event("a")).encode()
    headers = signed(body, ts="1699999000")  # 1000 s old
    opened = webhook.open_envelope(
        body, headers, encrypt_key=KEY, verification_token="", now=NOW, max_age=1200
    )
    assert opened["header"]["event_type"] == "im.message.receive_v1"
    with pytest.raises(webhook.Rejected):
        webhook.open_envelope(body, headers, encrypt_key=KEY, verification_token="", now=NOW, max_age=900)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # the C decoder's own recursion guard trips
        b'{"a":' * 40 + b"1" + b"}" * 40,  # decodes, but deeper than any genuine push
        json.dumps({"header": ["token", "x"], "event": {}}).encode(),
        json.dumps({"header": {}, "event": "text"}).encode(),
        json.dumps({"type": ["url_verification"], "challenge": "c"}).encode(),
        json.dumps({"type": "url_verification", "challenge": {"x": 1}}).encode(),
        json.dumps({"encrypt": ["x"]}).encode(),
        json.dumps({"token": 5, "header": None}).encode(),
    ],
)
def test_hostile_envelopes_are_400(body: bytes) -> None:
    with pytest.raises(webhook.Rejected) as err:
        webhook.open_envelope(body, {}, encrypt_key="", verification_token="")
    assert err.value.status == 400


def test_lone_surrogates_are_dropped_from_every_string() -> None:
    body = b'{"header": {"event_id": "e\\ud800v"}, "event": {"message": {"content": "x\\udfffy"}}}'
    opened = webhook.open_envelope(body, {}, encrypt_key="", verification_token="")
    assert opened == {"header": {"event_id": "ev"}, "event": {"message": {"content": "xy"}}}
    json.dumps(opened, ensure_ascii=False).encode("utf-8")  # encodable now (it raised before)
    assert webhook.nesting({"a": [1, {"b": "[[[["}]}) == 3
