"""Fuzzing (hypothesis) of everything that reads user or platform input: the parser, the Discord and
Feishu converters, and the Feishu webhook route of the running bot. No crash, bounded output, and
nothing is created for invalid input."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters.discord.convert import interaction_intent, message_intent
from bot.adapters.feishu.convert import Context, Unsupported, to_intent
from bot.core import Action, ActionIntent, CommandIntent, GenerationIntent
from bot.parsing import parse
from bot.parsing.parser import MAX_NOTES, MAX_TEXT
from ima.models import TaskType
from tests.fakes.feishu_events import BOT_OPEN_ID, card_action_event, text_event

from .feishu import feishu_app

FUZZ = settings(max_examples=150, deadline=None, database=None)
WORDS = [
    "竖屏",
    "横屏",
    "方形",
    "10秒",
    "五秒",
    "十五秒",
    "5s",
    "12 seconds",
    "twenty seconds",
    "16:9",
    "9:16",
    "１６：９",
    "21:9",
    "1:1",
    "1080p",
    "720P",
    "4k",
    "高清",
    "pro",
    "fast",
    "ima pro",
    "ima-pro-fast",
    "Sevio 1.0",
    "极速",
    "专业版",
    "首帧",
    "尾帧",
    "参考图",
    "first frame",
    "last frame",
    "as reference",
    "this image",
    "这张图",
    "<@123456789>",
    "<@!42>",
    "@_user_1",
    "@_all",
    "/video",
    "/生成视频",
    "请帮我生成一个视频：",
    "make a video of",
    "默认",
    "auto",
    "5秒后",
    "\n",
    " ",
    "，",
    "。",
    "!",
    "0",
    "-3s",
    "99999秒",
    "1e9",
    "\u200b",
    "🐕",
]
messages = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=20)), max_size=25).map(" ".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


# ---- the parser ------------------------------------------------------------------------------------


@FUZZ
@given(text=st.one_of(messages, st.text(max_size=400)), images=st.integers(0, 12))
def test_parser_never_fails_and_stays_bounded(text: str, images: int) -> None:
    parse("warm", 0)  # the tables compile on first use (about 0.4 s of CPU): not part of the bound
    started = time.thread_time()  # CPU of this thread: a loaded machine does not stretch it
    r = parse(text, images)
    assert time.thread_time() - started < 1.0  # no pathological regex backtracking
    assert isinstance(r.task_type, TaskType)
    assert len(r.prompt) <= min(len(text), MAX_TEXT)
    assert len(r.notes) <= MAX_NOTES
    assert len(r.image_roles) == images
    assert r.duration is None or isinstance(r.duration, int)
    if images == 0:
        assert r.task_type is TaskType.TEXT_TO_VIDEO


# ---- the Discord converter ------------------------------------------------------------------------

snowflakes = st.integers(1, 2**63 - 1).map(str)
attachments = st.fixed_dictionaries(
    {"id": snowflakes, "filename": st.text(max_size=40), "url": st.text(max_size=60)},
    optional={
        "size": st.integers(0, 2**40),
        "content_type": st.text(max_size=30),
        "proxy_url": st.text(max_size=30),
    },
)
discord_messages = st.fixed_dictionaries(
    {"id": snowflakes, "channel_id": snowflakes, "content": st.one_of(messages, st.text(max_size=300))},
    optional={
        "type": st.sampled_from([0, 0, 7, 19, 20, 999]),
        "guild_id": st.one_of(st.none(), snowflakes),
        "author": st.fixed_dictionaries({"id": snowflakes}, optional={"bot": st.booleans()}),
        "mentions": st.lists(
            st.fixed_dictionaries({"id": st.one_of(snowflakes, st.just("4242"))}), max_size=3
        ),
        "attachments": st.lists(attachments, max_size=10),
    },
)
options = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(
                [
                    "prompt",
                    "model",
                    "duration",
                    "aspect_ratio",
                    "image",
                    "first_frame",
                    "job_id",
                    "language",
                    "x",
                ]
            ),
            "value": st.one_of(st.text(max_size=40), st.integers(), st.none()),
        }
    ),
    max_size=6,
)
interactions = st.fixed_dictionaries(
    {"id": snowflakes, "type": st.sampled_from([1, 2, 3, 4, 5])},
    optional={
        "locale": st.sampled_from(["zh-CN", "en-US", "fr", ""]),
        "guild_id": snowflakes,
        "channel_id": snowflakes,
        "member": st.fixed_dictionaries({"user": st.fixed_dictionaries({"id": snowflakes})}),
        "data": st.fixed_dictionaries(
            {},
            optional={
                "name": st.sampled_from(["video", "jobs", "settings", "cancel", "help", "other"]),
                "custom_id": st.one_of(
                    st.text(max_size=90),
                    st.sampled_from(
                        [
                            "imabot:retry:abc123",
                            "imabot:cancel:",
                            "imabot:other_model:a/b",
                            "imabot:retry:" + "x" * 81,
                        ]
                    ),
                ),
                "options": options,
                "resolved": st.fixed_dictionaries(
                    {"attachments": st.dictionaries(snowflakes, attachments, max_size=3)}
                ),
            },
        ),
        "message": st.fixed_dictionaries({"id": snowflakes}),
    },
)


@FUZZ
@given(payload=discord_messages)
def test_discord_messages_convert_without_failing(payload: dict[str, Any]) -> None:
    intent = message_intent(payload, bot_id="4242")
    author = payload.get("author") or {}
    addressed = (
        not payload.get("guild_id")
        or "<@4242>" in payload["content"]
        or "<@!4242>" in payload["content"]
        or any(m["id"] == "4242" for m in payload.get("mentions", ()))
    )
    if author.get("bot") or payload.get("type", 0) not in (0, 19) or not addressed:
        assert intent is None  # other bots, system messages and chatter create nothing
        return
    assert isinstance(intent, GenerationIntent)
    assert len(intent.text) <= len(payload["content"])
    assert len(intent.attachments) == len(payload.get("attachments", ()))
    assert "<@4242>" not in intent.text and "<@!4242>" not in intent.text


@FUZZ
@given(payload=interactions)
def test_discord_interactions_convert_without_failing(payload: dict[str, Any]) -> None:
    intent = interaction_intent(payload)
    if payload["type"] not in (2, 3, 5):
        assert intent is None
    if isinstance(intent, ActionIntent):
        assert 1 <= len(intent.job_id) <= 80 and payload["type"] in (3, 5)
        # a modal submit is only ever the answer to Continue's form (bot/adapters/discord/modals.py)
        assert payload["type"] == 3 or intent.action is Action.CONTINUE
    if isinstance(intent, GenerationIntent | CommandIntent):
        assert payload["type"] == 2
        assert all(len(v) <= 40 for v in getattr(intent, "options", {}).values())


# ---- the Feishu converter -------------------------------------------------------------------------

CTX = Context(BOT_OPEN_ID)
feishu_texts = st.one_of(messages, st.text(max_size=200))


def _garbled(event: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """The event with a few of its inner values replaced by arbitrary JSON (a type-confused push)."""
    msg = event["event"]["message"]
    for key in data.draw(st.lists(st.sampled_from(sorted(msg)), max_size=3, unique=True)):
        msg[key] = data.draw(json_values)
    if data.draw(st.booleans()):
        event["event"]["sender"] = data.draw(json_values)
    return event


@FUZZ
@given(text=feishu_texts, mention=st.booleans(), data=st.data())
def test_feishu_messages_convert_without_failing(text: str, mention: bool, data: st.DataObject) -> None:
    event = text_event(text, mention_bot=BOT_OPEN_ID if mention else "")
    clean = to_intent(event, CTX)
    if mention:
        assert isinstance(clean, GenerationIntent | CommandIntent)
    else:
        assert clean is None  # group chatter not addressed to the bot
    result = to_intent(_garbled(event, data), CTX)
    assert result is None or isinstance(result, GenerationIntent | CommandIntent | ActionIntent | Unsupported)
    if isinstance(result, GenerationIntent):
        assert len(result.text) <= 100_000


@FUZZ
@given(
    raw=st.dictionaries(st.sampled_from(["schema", "header", "event", "type", "x"]), json_values, max_size=4),
    value=json_values,
    action=st.text(max_size=20),
)
def test_feishu_arbitrary_json_and_card_actions_never_fail(
    raw: dict[str, Any], value: Any, action: str
) -> None:
    assert to_intent(raw, CTX) is None or raw.get("header")
    result = to_intent(card_action_event(action, "job1", open_message_id="om_1", value=value), CTX)
    assert result is None or isinstance(result, ActionIntent)


# ---- the webhook route of the running bot -----------------------------------------------------------


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Hook:
    post: Any  # async (bytes) -> (status, body text)
    # False: no body posted may become a job. True: a body whose odd field the webhook may ignore (no token
    # is configured, so a wrong `token` is not checked) can be a real request and become a job.
    may_make_jobs: bool = False


@pytest.fixture
async def open_webhook(tmp_path: Path) -> AsyncIterator[Hook]:
    """A running bot whose Feishu webhook has no encrypt key and no token (every body reaches the
    converter). At the end a genuine push must become the only job, with no error logged on the way."""
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    try:
        async with feishu_app(tmp_path, encrypt_key="", verification_token="") as (r, fake, poster):

            async def post(body: bytes) -> tuple[int, str]:
                async with r.http.post(r.url + "/feishu/events", data=body) as resp:
                    return resp.status, await resp.text()

            hook = Hook(post)
            yield hook
            sentinel = fake.register(text_event("/video 5s the one real request", mention_bot=BOT_OPEN_ID))
            assert (await poster.post(sentinel)).status == 200

            async def jobs() -> list[Any]:
                assert r.app.store is not None
                made = await r.app.store.recent_jobs("feishu:ou_user0001", limit=500)
                return made if any(j.spec.prompt == "the one real request" for j in made) else []

            made = await r.wait_for(jobs)
            if not hook.may_make_jobs:
                assert [j.spec.prompt for j in made] == ["the one real request"]
            assert r.app.dispatcher.deduplicated == 0
    finally:
        logging.getLogger().removeHandler(errors)
    assert [e.getMessage() for e in errors.records] == []


def _answer_ok(status: int, body: str) -> None:
    assert status < 500, body
    assert 200 <= status < 500
    assert len(body) <= 1024 and "Traceback" not in body


@settings(
    max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(st.binary(max_size=600), json_values.map(lambda v: json.dumps(v).encode())))
async def test_webhook_bytes_get_a_bounded_4xx_or_2xx(open_webhook: Hook, body: bytes) -> None:
    _answer_ok(*await open_webhook.post(body))


@settings(
    max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=feishu_texts, data=st.data())
async def test_webhook_garbled_events_create_nothing(
    open_webhook: Hook, text: str, data: st.DataObject
) -> None:
    event = _garbled(text_event(text, sender_type=data.draw(st.sampled_from(["app", "bot", "system"]))), data)
    if data.draw(st.booleans()):
        event["header"]["event_type"] = data.draw(st.text(max_size=30))
    _answer_ok(*await open_webhook.post(json.dumps(event).encode()))


# ---- hostile bodies (issue 17): deep nesting, envelope fields of the wrong type, unencodable text ------

ENVELOPE_FIELDS = ["header", "event", "type", "token", "challenge", "encrypt", "schema"]


def _deep(depth: int, kind: str) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


hostile_texts = st.lists(
    st.one_of(
        st.sampled_from(WORDS),
        st.sampled_from(["\ud800", "\udfff", "\x00", "\x1b[31m", "\u202e", "\r", "\x7f", "\ufeff"]),
        st.text(max_size=10),
    ),
    max_size=20,
).map("".join)


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    depth=st.one_of(st.integers(33, 200), st.integers(900, 3000), st.just(100_000)),
    kind=st.sampled_from(["list", "dict"]),
    where=st.sampled_from(["body", "header", "event", "content"]),
)
async def test_webhook_deep_nesting_gets_a_4xx(open_webhook: Hook, depth: int, kind: str, where: str) -> None:
    if depth > 500:  # too deep for json.dumps: raw bytes
        nest = (b"[" * depth + b"]" * depth) if kind == "list" else (b'{"k":' * depth + b"1" + b"}" * depth)
        body = nest if where == "body" else b'{"schema": "2.0", "' + where.encode() + b'": ' + nest + b"}"
        status, text = await open_webhook.post(body)
        _answer_ok(status, text)
        assert status == 400 or where == "content", text
        return
    event = text_event("/video a fox", mention_bot=BOT_OPEN_ID)
    if where == "body":
        payload: Any = _deep(depth, kind)
    elif where == "content":  # nested inside the message's own JSON string
        event["event"]["message"]["content"] = json.dumps({"text": _deep(depth, kind)})
        payload = event
    else:
        event[where] = _deep(depth, kind)
        payload = event
    status, text = await open_webhook.post(json.dumps(payload).encode())
    _answer_ok(status, text)
    if where != "content":
        assert status == 400, text


@settings(
    max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(field=st.sampled_from(ENVELOPE_FIELDS), value=json_values, text=hostile_texts)
async def test_webhook_envelope_fields_of_any_type_and_unencodable_text_never_fail(
    open_webhook: Hook, field: str, value: Any, text: str
) -> None:
    open_webhook.may_make_jobs = True  # e.g. a string `token`, unchecked without one configured
    event = text_event(text, mention_bot=BOT_OPEN_ID)
    event[field] = value
    # ASCII-escaped JSON: a lone surrogate travels as "\ud800", which json.loads accepts.
    _answer_ok(*await open_webhook.post(json.dumps(event).encode()))
