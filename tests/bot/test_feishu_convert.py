"""Golden Feishu payloads → intents (tests/data/feishu/*.json), plus the converter's small helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.feishu.convert import (
    Context,
    Unsupported,
    legacy_kind,
    make_handle,
    sniff_image,
    split_handle,
    to_intent,
)
from bot.core import ActionIntent, CommandIntent, GenerationIntent

DATA = Path(__file__).resolve().parents[1] / "data" / "feishu"
CASES = sorted(DATA.glob("*.json"))


def as_dict(result: Any) -> dict[str, Any] | None:
    """The converter's result in the golden files' JSON shape."""
    if result is None:
        return None
    origin = result.origin
    out: dict[str, Any] = {
        "origin": {
            "platform": origin.platform,
            "chat_id": origin.chat_id,
            "user_id": origin.user_id,
            "message_id": origin.message_id,
            "guild_id": origin.guild_id,
            "is_direct": origin.is_direct,
            "extra": dict(origin.extra),
        },
        "event_keys": list(result.event_keys),
    }
    quoted = getattr(result, "reply_to", None)
    if quoted is not None:
        out["reply_to"] = {
            "message_id": quoted.message_id,
            "ref": quoted.ref,
            "from_bot": quoted.from_bot,
            "text": quoted.text,
            "attachments": [a.handle for a in quoted.attachments],
        }
    if isinstance(result, GenerationIntent):
        out.update(
            kind="generation",
            text=result.text,
            locale=result.locale,
            options=dict(result.options),
            attachments=[a.handle for a in result.attachments],
        )
    elif isinstance(result, ActionIntent):
        out.update(kind="action", job_id=result.job_id, action=result.action.value, locale=result.locale)
    elif isinstance(result, CommandIntent):
        out.update(kind="command", command=result.command.value, args=dict(result.args), locale=result.locale)
    elif isinstance(result, Unsupported):
        out.update(kind="unsupported", message_type=result.message_type)
    return out


def test_the_golden_set_covers_every_outcome() -> None:
    kinds = {(json.loads(p.read_text())["expected"] or {}).get("kind") for p in CASES}
    assert kinds == {None, "generation", "action", "command", "unsupported"}
    assert len(CASES) >= 20


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_payload_converts_to_expected_intent(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    ctx = Context(case["context"]["bot_open_id"], frozenset(case["context"]["chat_allowlist"]))
    assert as_dict(to_intent(case["payload"], ctx)) == case["expected"], case["description"]
    assert legacy_kind(case["payload"]) == case.get("legacy", ""), case["description"]


def test_redelivered_event_yields_identical_event_keys() -> None:
    case = json.loads((DATA / "group_mention_text.json").read_text(encoding="utf-8"))
    ctx = Context(case["context"]["bot_open_id"])
    first, second = to_intent(case["payload"], ctx), to_intent(json.loads(json.dumps(case["payload"])), ctx)
    assert first is not None and second is not None
    assert first.event_keys == second.event_keys
    assert first.event_keys[0].startswith("feishu:event:") and first.event_keys[1].startswith(
        "feishu:message:"
    )


def test_handles_round_trip_and_reject_garbage() -> None:
    assert split_handle(make_handle("om_1", "img_v3_2")) == ("om_1", "img_v3_2")
    for bad in ("", "om_1", "/img", "om_1/", "om_1/a/b"):
        with pytest.raises(ValueError):
            split_handle(bad)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(8), "image/png"),
        (b"\xff\xd8\xff\xdb" + bytes(8), "image/jpeg"),
        (b"GIF89a" + bytes(8), "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic" + bytes(8), "image/heic"),
        (b"<html><body>login</body></html>", ""),
        (b'{"code": 234003}', ""),
        (b"", ""),
    ],
)
def test_sniff_image_reads_magic_bytes(data: bytes, mime: str) -> None:
    assert sniff_image(data) == mime


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden_payload_through_the_long_connections_sdk_objects(path: Path) -> None:
    """The long connection hands the converter what lark-oapi unmarshalled and marshalled again."""
    from lark_oapi.core.exception import UnmarshalException
    from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTriggerResponse

    from bot.adapters.feishu.ws import build_event_handler, to_raw

    case = json.loads(path.read_text(encoding="utf-8"))
    got: list[dict[str, Any]] = []

    def on_card(event: Any) -> P2CardActionTriggerResponse:
        got.append(to_raw(event))
        return P2CardActionTriggerResponse({})

    handler = build_event_handler(lambda e: got.append(to_raw(e)), on_card)
    if case.get("sdk_refuses"):
        with pytest.raises(UnmarshalException):
            handler._do_without_validation(json.dumps(case["payload"]).encode())
        return
    try:
        handler._do_without_validation(json.dumps(case["payload"]).encode())  # what lark's ws client calls
    except Exception as exc:  # the SDK refuses events nobody registered (as it does on the socket)
        assert "processor not found" in str(exc), exc
        assert case["expected"] is None, case["description"]
        return
    if not got:  # an event registered as ignored
        assert case["expected"] is None
        return
    ctx = Context(case["context"]["bot_open_id"], frozenset(case["context"]["chat_allowlist"]))
    (raw,) = got
    assert as_dict(to_intent(raw, ctx)) == case["expected"], case["description"]
    assert legacy_kind(raw) == case.get("legacy", ""), case["description"]


QUOTED = sorted((DATA / "quoted").glob("*.json"))


@pytest.mark.parametrize("path", QUOTED, ids=[p.stem for p in QUOTED])
def test_a_fetched_parent_message_becomes_the_quoted_message(path: Path) -> None:
    from bot.adapters.feishu.convert import quoted_message

    case = json.loads(path.read_text(encoding="utf-8"))
    item = case["response"]["data"]["items"][0]
    q = quoted_message(item, item["message_id"])
    got = {
        "message_id": q.message_id,
        "ref": q.ref,
        "from_bot": q.from_bot,
        "text": q.text,
        "attachments": [a.handle for a in q.attachments],
    }
    assert got == case["expected"], case["description"]


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b"GIF87a" + bytes(8), "image/gif"),
        (b"BM" + bytes(30), "image/bmp"),
        (b"BM" + bytes(10), ""),  # too short for a bitmap header
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", ""),
        (b"\x00\x00\x00\x1cftypavif" + bytes(8), "image/avif"),
        (b"\x00\x00\x00\x1cftypmif1" + bytes(8), "image/heic"),
        (b"\x00\x00\x00\x1cftypheix" + bytes(8), "image/heic"),
        (b"\x00\x00\x00\x1cftypmsf1" + bytes(8), "image/heic"),
        (b"\x00\x00\x00\x1cftypisom" + bytes(8), ""),  # an mp4
    ],
)
def test_sniff_image_edges(data: bytes, mime: str) -> None:
    assert sniff_image(data) == mime


def _text(text: str, **msg: Any) -> dict[str, Any]:
    message = {
        "message_id": "om_1",
        "chat_id": "oc_1",
        "chat_type": "p2p",
        "message_type": "text",
        "content": json.dumps({"text": text}),
        **msg,
    }
    return {
        "header": {"event_type": "im.message.receive_v1", "event_id": "e1"},
        "event": {"sender": {"sender_id": {"open_id": "ou_u"}, "sender_type": "user"}, "message": message},
    }


CTX = Context("ou_bot")


@pytest.mark.parametrize(
    ("text", "command", "args"),
    [
        ("/HELP", "help", {}),
        ("／任务", "jobs", {}),
        (
            "/settings model=pro duration=10 please",
            "settings",
            {"model": "pro", "duration": "10", "text": "please"},
        ),
        ("/cancel job42 now", "cancel", {"job_id": "job42", "text": "now"}),
        ("/设置 =x", "settings", {"text": "=x"}),
    ],
)
def test_text_commands(text: str, command: str, args: dict[str, str]) -> None:
    got = to_intent(_text(text), CTX)
    assert isinstance(got, CommandIntent) and (got.command.value, dict(got.args)) == (command, args)


@pytest.mark.parametrize("text", ["/video a cat", "a /help in the middle", "help"])
def test_not_commands(text: str) -> None:
    assert isinstance(to_intent(_text(text), CTX), GenerationIntent)


def test_messages_without_a_chat_or_id_or_from_apps_are_ignored() -> None:
    assert to_intent(_text("a cat", chat_id=""), CTX) is None
    assert to_intent(_text("a cat", message_id=""), CTX) is None
    app = _text("a cat")
    app["event"]["sender"]["sender_type"] = "app"
    assert to_intent(app, CTX) is None
    blank = _text("a cat")
    blank["event"]["sender"]["sender_type"] = ""
    assert isinstance(to_intent(blank, CTX), GenerationIntent)


def test_post_tags_links_code_and_mentions() -> None:
    post = {
        "title": "T",
        "content": [
            [
                {"tag": "text", "text": "a "},
                {"tag": "a", "text": "link", "href": "https://x"},
                {"tag": "md", "text": " md"},
                {"tag": "code_block", "text": " code"},
                {"tag": "emotion", "emoji_type": "SMILE"},
                {"tag": "at", "user_id": "@_all"},
                {"tag": "at", "user_id": "@_user_2", "user_name": "Bob"},
                {"tag": "at", "user_id": "ou_bot", "user_name": "VideoBot"},
                "junk",
            ]
        ],
    }
    raw = _text("")
    raw["event"]["message"].update(message_type="post", content=json.dumps(post))
    got = to_intent(raw, CTX)
    assert isinstance(got, GenerationIntent) and got.text == "T\na link md code"


def test_card_actions_read_the_chat_and_message_from_either_place() -> None:
    event = {
        "operator": {"open_id": "ou_u"},
        "action": {"value": {"action": "cancel", "job_id": "j1"}},
        "open_chat_id": "oc_top",
        "open_message_id": "om_top",
    }
    raw = {"header": {"event_type": "card.action.trigger", "event_id": "e9"}, "event": event}
    got = to_intent(raw, CTX)
    assert isinstance(got, ActionIntent)
    assert (got.origin.chat_id, got.origin.message_id, got.action.value) == ("oc_top", "om_top", "cancel")
    assert got.event_keys == ("feishu:event:e9",)
    event["action"] = {"value": {"action": "delete", "job_id": "j1"}}
    assert to_intent(raw, CTX) is None
    fenced = Context("ou_bot", frozenset({"oc_other"}))
    event["action"] = {"value": {"action": "retry", "job_id": "j1"}}
    assert to_intent(raw, fenced) is None


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"schema": "2.0", "header": {}, "event": {}}, ""),
        ({"schema": "2.0", "uuid": "u", "event": {"type": "message"}}, ""),
        ({"header": {"event_type": "x"}}, ""),
        ({"uuid": "u", "event": {"type": "message"}}, "event_v1"),
        ({"type": "event_callback", "event": {}}, "event_v1"),
        ({"uuid": "u", "event": "not an object"}, ""),
        ({"action": {"value": {}}, "open_message_id": "om_1"}, "card_v1"),
        ({"action": {"value": {}}, "open_id": "ou_1"}, "card_v1"),
        ({"action": {"value": {}}}, ""),
        ({"action": "x", "open_id": "ou_1"}, ""),
        ({"type": "url_verification", "challenge": "c"}, ""),
    ],
)
def test_legacy_kinds(payload: dict[str, Any], kind: str) -> None:
    assert legacy_kind(payload) == kind


def test_a_locale_wrapped_post_takes_the_locale_that_has_content() -> None:
    wrapped = {
        "zh_cn": {"title": "空"},
        "en_us": {"title": "T", "content": [[{"tag": "text", "text": "a boat"}]]},
    }
    raw = _text("")
    raw["event"]["message"].update(message_type="post", content=json.dumps(wrapped))
    got = to_intent(raw, CTX)
    assert isinstance(got, GenerationIntent) and got.text == "T\na boat"
