"""Feishu answers (success, refusal, rate limit, gone) and the calls themselves, on one session against the fake."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from bot.adapters.feishu.api import (
    TOKEN_PATH,
    FeishuApi,
    Resource,
    RetryPolicy,
    check_domain,
    error_of,
    is_rate_limited,
)
from bot.core import MessageGone, PlatformError
from tests.fakes.feishu_events import text_event
from tests.fakes.feishu_server import FakeFeishu


def test_success_answers_are_not_errors() -> None:
    assert error_of("send", 200, b'{"code":0,"msg":"success","data":{}}', {}) is None
    assert error_of("resource", 200, b"\x89PNG\r\n\x1a\n", {"content-type": "image/png"}) is None


@pytest.mark.parametrize("code", [230011, 230031, 230110])
def test_cards_that_cannot_change_are_message_gone(code: int) -> None:
    err = error_of("patch", 400, b'{"code":%d,"msg":"x"}' % code, {})
    assert isinstance(err, MessageGone) and err.code == code


def test_rate_limits_carry_the_reset_header() -> None:
    err = error_of("patch", 429, b'{"code":99991400,"msg":"limit"}', {"X-Ogw-Ratelimit-Reset": "3"})
    assert err is not None and is_rate_limited(err) and err.retry_after == 3.0
    frequency = error_of("patch", 400, b'{"code":230020,"msg":"limit"}', {})
    assert frequency is not None and is_rate_limited(frequency) and frequency.retry_after is None
    old_api = error_of("send", 400, b'{"code":99991400,"msg":"limit"}', {})  # 400 on some old APIs
    assert old_api is not None and is_rate_limited(old_api)


def test_other_refusals_are_platform_errors_with_code_and_status() -> None:
    err = error_of("send", 400, b'{"code":230002,"msg":"Bot is not in the chat"}', {})
    assert type(err) is PlatformError and (err.status, err.code) == (400, 230002)
    assert "Bot is not in the chat" in str(err)
    gateway = error_of("send", 502, b"<html>bad gateway</html>", {})
    assert gateway is not None and (gateway.status, gateway.code) == (502, None)
    business = error_of("send", 200, b'{"code":99991672,"msg":"scope missing"}', {})
    assert business is not None and business.code == 99991672


# ---- the calls, over one session against the fake Feishu ---------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeFeishu]:
    with FakeFeishu() as f:
        yield f


@contextlib.asynccontextmanager
async def api_on(fake: FakeFeishu, **kw: Any) -> AsyncIterator[tuple[FeishuApi, list[int]]]:
    """A FeishuApi on one session; yields it and a list that grows by one per new TCP connection."""
    connections: list[int] = []

    async def opened(*_: Any) -> None:
        connections.append(1)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(opened)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        kw.setdefault("retry", RetryPolicy(attempts=2, base=0.01))
        api = FeishuApi(
            session,
            domain=fake.url + "/",
            app_id=fake.app_id,
            app_secret=fake.app_secret,
            clock=time.monotonic,
            timeout=5.0,
            **kw,
        )
        yield api, connections


def user_message(fake: FakeFeishu) -> str:
    event = fake.register(text_event("x", chat_id="oc_group0001"))
    return str(event["event"]["message"]["message_id"])


CARD = json.dumps(
    {"config": {"update_multi": True}, "elements": [{"tag": "markdown", "content": "生成中 30%"}]},
    ensure_ascii=False,
)


async def test_every_call_reuses_one_connection_and_one_token(fake: FakeFeishu) -> None:
    async with api_on(fake) as (api, connections):
        assert await api.fetch_bot_open_id() == fake.bot_open_id
        parent = user_message(fake)
        card = await api.reply(parent, "interactive", CARD, uuid="u-1")
        for _ in range(5):
            await api.patch(card, CARD.replace("30%", f"{_}%"))
        await asyncio.gather(
            *(api.create("oc_group0001", "text", '{"text":"hi"}', uuid=f"c{i}") for i in range(3))
        )
    assert fake.token_fetches == 1
    assert len(fake.calls_to("PATCH", "/im/v1/messages/")) == 5
    # The sequential calls share one keep-alive connection; the 3 concurrent ones may open 2 more.
    assert 1 <= len(connections) <= 3


async def test_requests_have_the_wire_shape_lark_oapi_sends(fake: FakeFeishu) -> None:
    async with api_on(fake) as (api, _):
        parent = user_message(fake)
        first = await api.reply(parent, "interactive", CARD, uuid="job1:pre", in_thread=True)
        again = await api.reply(parent, "interactive", CARD, uuid="job1:pre")  # a retried send
        posted = await api.create("oc_group0001", "text", '{"text":"你好"}', uuid="job1:ping")
        await api.patch(first, CARD)
    assert again == first and fake.messages[first].thread and fake.messages[first].parent_id == parent
    reply, _, create, patch = [c for c in fake.calls if c.path.startswith("/open-apis/im/")]
    assert (reply.method, reply.path) == ("POST", f"/open-apis/im/v1/messages/{parent}/reply")
    assert reply.body == {
        "content": CARD,
        "msg_type": "interactive",
        "uuid": "job1:pre",
        "reply_in_thread": True,
    }
    assert (create.method, create.query) == ("POST", {"receive_id_type": "chat_id"})
    assert create.body == {
        "receive_id": "oc_group0001",
        "msg_type": "text",
        "content": '{"text":"你好"}',
        "uuid": "job1:ping",
    }
    assert fake.messages[posted].content == '{"text":"你好"}'
    assert (patch.method, patch.path, patch.body) == (
        "PATCH",
        f"/open-apis/im/v1/messages/{first}",
        {"content": CARD},
    )


async def test_uploads_are_multipart_and_resources_come_back_with_their_type(fake: FakeFeishu) -> None:
    parent = user_message(fake)
    fake.add_resource(parent, "img_in", b"\x89PNG-bytes", "image/png")
    async with api_on(fake) as (api, _):
        image_key = await api.upload_image(b"\xff\xd8\xffjpeg")
        file_key = await api.upload_video(b"mp4-bytes", file_name="clip.mp4")
        resource = await api.download_resource(parent, "img_in")
        with pytest.raises(PlatformError) as missing:
            await api.download_resource(parent, "img_gone")
    assert fake.images[image_key] == b"\xff\xd8\xffjpeg"
    assert fake.files[file_key] == (b"mp4-bytes", "mp4")
    upload = fake.calls_to("POST", "/im/v1/files")[0]
    assert upload.body["file_name"] == "clip.mp4" and upload.body["file"]["size"] == 9
    assert resource == Resource(b"\x89PNG-bytes", "image/png")
    assert (
        missing.value.code == 234003 and len(fake.calls_to("GET", "/resources/img_gone")) == 1
    )  # not retried


async def test_get_message_returns_the_message(fake: FakeFeishu) -> None:
    parent = user_message(fake)
    async with api_on(fake) as (api, _):
        message = await api.get_message(parent)
    assert message["message_id"] == parent and message["chat_id"] == "oc_group0001"


async def test_path_parameters_cannot_leave_their_segment(fake: FakeFeishu) -> None:
    async with api_on(fake) as (api, _):
        with pytest.raises(PlatformError) as refused:
            await api.patch("om_x/../../bot/v3/info?", CARD)
    assert refused.value.code == 230001  # the fake's "no such message": the id stayed one path segment
    assert [c.method for c in fake.calls if c.path != TOKEN_PATH] == ["PATCH"]


async def test_the_other_invalid_token_code_also_fetches_a_new_token(fake: FakeFeishu) -> None:
    async with api_on(fake) as (api, _):
        parent = user_message(fake)
        await api.reply(parent, "text", '{"text":"a"}', uuid="a")
        fake.fail_next("POST", "/reply$", status=400, body={"code": 99991661, "msg": "token missing"})
        await api.reply(parent, "text", '{"text":"b"}', uuid="b")
    assert fake.token_fetches == 2


async def test_an_expired_token_is_fetched_again_once(fake: FakeFeishu) -> None:
    async with api_on(fake) as (api, _):
        parent = user_message(fake)
        await api.reply(parent, "text", '{"text":"a"}', uuid="a")
        fake.invalidate_tokens()
        await api.reply(parent, "text", '{"text":"b"}', uuid="b")
    assert fake.token_fetches == 2
    assert [c.code for c in fake.calls_to("POST", "/reply")] == [0, 99991663, 0]


async def test_rate_limits_and_5xx_are_retried_then_raised(fake: FakeFeishu) -> None:
    async with api_on(fake) as (api, _):
        parent = user_message(fake)
        card = await api.reply(parent, "interactive", CARD, uuid="a")
        fake.rate_limit_next(times=1, reset="0")
        await api.patch(card, CARD.replace("30", "40"))
        fake.fail_next("PATCH", "/im/v1/messages", status=502, body={"code": 0}, times=3)
        with pytest.raises(PlatformError) as gave_up:
            await api.patch(card, CARD.replace("30", "50"))
    assert gave_up.value.status == 502
    assert [c.status for c in fake.calls_to("PATCH", "/im/v1/messages/")] == [429, 200, 502, 502, 502]


async def test_no_answer_is_a_platform_error_without_status() -> None:
    async with aiohttp.ClientSession() as session:
        api = FeishuApi(
            session,
            domain="http://127.0.0.1:9",
            app_id="a",
            app_secret="s",
            clock=time.monotonic,
            retry=RetryPolicy(attempts=0),
        )
        with pytest.raises(PlatformError) as failed:
            await api.patch("om_1", CARD)
    assert failed.value.status is None and "token" in str(failed.value)


@pytest.mark.parametrize(
    "domain",
    [
        "https://open.feishu.cn",
        "https://open.larksuite.com/",
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://[::1]:8080",
    ],
)
def test_origins_the_api_accepts(domain: str) -> None:
    assert check_domain(domain) == domain.rstrip("/")


@pytest.mark.parametrize(
    "domain",
    [
        "http://open.feishu.cn",
        "ftp://open.feishu.cn",
        "https://open.feishu.cn/api",
        "https://u:p@open.feishu.cn",
        "https://open.feishu.cn?x=1",
        "https://",
        "open.feishu.cn",
    ],
)
def test_origins_the_api_refuses(domain: str) -> None:
    with pytest.raises(ValueError, match="feishu domain"):
        check_domain(domain)
