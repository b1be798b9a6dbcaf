"""Golden Feishu payloads → intents (tests/data/feishu/*.json), plus the converter's small helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.feishu.convert import (
    Context,
    Unsupported,
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
    if isinstance(result, GenerationIntent):
        out.update(kind="generation", text=result.text, locale=result.locale, options=dict(result.options),
                   attachments=[a.handle for a in result.attachments])  # fmt: skip
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
