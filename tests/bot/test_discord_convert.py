"""Golden Discord payloads → intents (one loop over tests/data/discord), plus the pure helpers of convert."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.discord.convert import (
    CHOICES,
    custom_id,
    get_attachment,
    get_locale,
    interaction_intent,
    is_allowed,
    message_intent,
    parse_custom_id,
    strip_bot_mention,
)
from bot.core import Action, ActionIntent, Origin

GOLDEN = sorted((Path(__file__).parents[1] / "data" / "discord").glob("*.json"))


def _as_dict(intent: Any) -> dict[str, Any] | None:
    if intent is None:
        return None
    out = {"intent": type(intent).__name__, **dataclasses.asdict(intent)}
    return json.loads(json.dumps(out))  # tuples → lists, StrEnums → strings, like the JSON side


def test_there_are_golden_payloads_of_every_kind() -> None:
    kinds = {json.loads(p.read_text(encoding="utf-8"))["kind"] for p in GOLDEN}
    assert len(GOLDEN) >= 15 and kinds == {"interaction", "message"}


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_payload_becomes_the_expected_intent(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    if case["kind"] == "interaction":
        intent = interaction_intent(case["payload"])
    else:
        limit = {"upload_limit": case["upload_limit"]} if "upload_limit" in case else {}
        intent = message_intent(
            case["payload"], bot_id=case["bot_id"], bot_role_ids=case.get("bot_role_ids", ()), **limit
        )
    assert _as_dict(intent) == case["expected"], case["description"]


def test_no_golden_intent_carries_the_interaction_token() -> None:
    for path in GOLDEN:
        case = json.loads(path.read_text(encoding="utf-8"))
        token = case["payload"].get("token")
        if token and case["expected"]:
            assert token not in json.dumps(case["expected"]), path.stem


@pytest.mark.parametrize(
    ("discord_locale", "expected"),
    [
        ("zh-CN", "zh"),
        ("zh-TW", "zh"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("ja", None),
        ("", None),
        (None, None),
    ],
)
def test_locale_mapping(discord_locale: str | None, expected: str | None) -> None:
    assert get_locale(discord_locale) == expected


def test_custom_id_round_trip_and_limits() -> None:
    value = custom_id(Action.OTHER_MODEL, "j_7f3a9c")
    assert value == "imabot:other_model:j_7f3a9c"
    assert parse_custom_id(value) == (Action.OTHER_MODEL, "j_7f3a9c")
    assert len(custom_id(Action.CANCEL, "x" * 80)) <= 100  # Discord's custom_id limit
    for bad in ("x" * 81, "a b", "", "j:1"):
        with pytest.raises(ValueError):
            custom_id(Action.RETRY, bad)
    for foreign in ("imabot:delete:j1", "imabot:retry:", "video:retry:j1", "imabot:retry:j1:extra"):
        assert parse_custom_id(foreign) is None


def test_strip_bot_mention_keeps_other_mentions_and_lines() -> None:
    text = "<@42>  make   it <@!42> dance with <@7>\n  second line  "
    assert strip_bot_mention(text, "42") == "make it dance with <@7>\nsecond line"
    assert strip_bot_mention("<@420> hi", "42") == "<@420> hi"


def test_attachment_content_type_is_declared_or_guessed_from_an_image_extension() -> None:
    assert get_attachment({"url": "u", "filename": "a.GIF", "size": 3}).content_type == "image/gif"
    assert get_attachment({"url": "u", "filename": "a.txt"}).content_type == ""
    declared = get_attachment({"url": "u", "filename": "a.png", "content_type": "Image/PNG; charset=x"})
    assert declared.content_type == "image/png" and declared.size is None


@pytest.mark.parametrize(
    ("origin", "guilds", "channels", "parent", "allow_dm", "allowed"),
    [
        (Origin("discord", "c1", "u", guild_id="g1"), set(), set(), "", True, True),
        (Origin("discord", "c1", "u", guild_id="g1"), {"g1"}, set(), "", True, True),
        (Origin("discord", "c1", "u", guild_id="g2"), {"g1"}, set(), "", True, False),
        (Origin("discord", "c1", "u", guild_id="g1"), {"g1"}, {"c2"}, "", True, False),
        (Origin("discord", "t9", "u", guild_id="g1"), set(), {"c2"}, "c2", True, True),  # thread of c2
        (Origin("discord", "d1", "u", is_direct=True), {"g1"}, {"c2"}, "", True, True),
        (Origin("discord", "d1", "u", is_direct=True), set(), set(), "", False, False),
    ],
)
def test_allowlist(
    origin: Origin, guilds: set[str], channels: set[str], parent: str, allow_dm: bool, allowed: bool
) -> None:
    assert (
        is_allowed(
            origin,
            guild_allowlist=guilds,
            channel_allowlist=channels,
            parent_channel_id=parent,
            allow_direct=allow_dm,
        )
        is allowed
    )


@pytest.mark.parametrize("field", ["model", "duration", "aspect_ratio", "resolution", "image_role"])
def test_every_slash_choice_is_understood_by_the_parser(field: str) -> None:
    from bot.parsing.parser import parse

    for value in CHOICES[field]:
        assert parse("a cat", 1, options={field: value}).notes == (), (field, value)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("a.png", "image/png"),
        ("IMG_1.JPG", "image/jpeg"),
        ("b.jpeg", "image/jpeg"),
        ("c.gif", "image/gif"),
        ("d.WEBP", "image/webp"),
        ("e.bmp", "image/bmp"),
        ("IMG_0042.HEIC", "image/heic"),
        ("f.heif", "image/heif"),
        ("g.avif", "image/avif"),
        ("my.photo.final.png", "image/png"),
        ("image0", ""),
        ("notes.txt", ""),
    ],
)
def test_every_image_extension_is_recognised_when_no_type_is_declared(filename: str, expected: str) -> None:
    assert get_attachment({"url": "u", "filename": filename}).content_type == expected


def test_the_default_upload_limit_is_discords_10_mib() -> None:
    payload = {"id": "1", "type": 0, "channel_id": "5", "author": {"id": "7"}, "content": "a cat"}
    intent = message_intent(payload, bot_id="9")
    assert intent is not None and intent.origin.extra["upload_limit"] == str(10 * 1024 * 1024)


@pytest.mark.parametrize("value", CHOICES["model"])
def test_every_model_choice_is_that_model(value: str) -> None:
    from bot.parsing.parser import parse

    model = parse("a cat", 0, options={"model": value}).model_id
    assert model is not None and model.value == value


def test_every_language_choice_is_a_locale_we_have() -> None:
    assert all(get_locale(v) == v for v in CHOICES["language"]) and set(CHOICES["language"]) == {"en", "zh"}


def test_an_attachment_without_url_falls_back_to_the_proxy_url_and_dms_are_allowed_by_default() -> None:
    att = get_attachment({"proxy_url": "https://media.discordapp.net/x.png", "filename": "x.png"})
    assert att.handle == "https://media.discordapp.net/x.png"
    dm = Origin("discord", "d1", "u", is_direct=True)
    assert is_allowed(dm, guild_allowlist={"g1"}, channel_allowlist={"c1"}) is True


def test_the_bots_role_counts_from_either_the_array_or_the_text() -> None:
    base = {"id": "1", "type": 0, "channel_id": "5", "guild_id": "3", "author": {"id": "7"}}
    by_array = message_intent(
        {**base, "content": "a cat", "mention_roles": ["77"]}, bot_id="9", bot_role_ids=["77"]
    )
    by_text = message_intent({**base, "content": "<@&77> a cat"}, bot_id="9", bot_role_ids=["77"])
    assert by_array is not None and by_text is not None and by_text.text == by_array.text == "a cat"
    assert message_intent({**base, "content": "<@&78> a cat", "mention_roles": ["78"]}, bot_id="9") is None


@pytest.mark.parametrize(("kind", "accepted"), [(0, True), (19, True), (6, False), (7, False), (8, False)])
def test_only_default_and_reply_messages_are_requests(kind: int, accepted: bool) -> None:
    # A DM "user joined", "pinned a message" or boost notice (types 6, 7, 8) carries text but asks for nothing.
    payload = {"id": "1", "type": kind, "channel_id": "5", "author": {"id": "7"}, "content": "a cat"}
    assert (message_intent(payload, bot_id="9") is not None) is accepted


def test_a_modal_submit_counts_only_as_the_answer_to_continue_s_form() -> None:
    for action in ("retry", "cancel", "other_model"):
        payload = {"id": "9", "type": 5, "data": {"custom_id": f"imabot:{action}:job1", "components": []}}
        assert interaction_intent(payload) is None  # the bot opens no other form: a forged submit is nothing
    answer = interaction_intent({"id": "9", "type": 5, "data": {"custom_id": "imabot:continue:job1"}})
    assert isinstance(answer, ActionIntent) and answer.action is Action.CONTINUE and answer.job_id == "job1"
