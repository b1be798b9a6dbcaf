"""End to end: real lark-oapi against the fakes over HTTP and WebSocket, for both event transports."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.adapters.feishu import FeishuAdapter, FeishuSettings
from bot.core import Action, ActionIntent, CommandIntent, GenerationIntent, Notice, NoticeKind, PlatformError
from tests.bot.feishu_bench import JPEG, PNG, TEXTS, Script, StandIn, card_texts, running, settings_for
from tests.fakes.feishu_events import (
    BOT_OPEN_ID,
    card_action_event,
    image_event,
    message_event,
    post_event,
    text_event,
)
from tests.fakes.feishu_server import FakeFeishu

ACK_BUDGET = 0.1  # seconds: the brief's limit for acknowledging an event


@pytest.fixture
def fake() -> FakeFeishu:
    with FakeFeishu() as f:
        yield f


# ---- long connection ------------------------------------------------------------------------------


async def test_group_mention_gets_one_reply_card_patched_to_the_final_state(fake: FakeFeishu) -> None:
    standin = StandIn(Script(progress=(30, 60)))
    async with running(fake, standin):
        event = text_event("一只猫在冲浪", mention_bot=BOT_OPEN_ID)
        ack = await fake.push_event(event)
        await standin.wait_intents(1)
        await standin.finish_jobs()
    assert ack.code == 200
    (intent,) = standin.intents
    assert isinstance(intent, GenerationIntent)
    assert intent.text == "一只猫在冲浪" and intent.locale is None
    assert intent.origin.chat_id == "oc_group0001" and not intent.origin.is_direct
    user_message = event["event"]["message"]["message_id"]
    (card,) = fake.bot_messages("interactive")
    assert card.parent_id == user_message  # a reply to the user's message
    assert len(card.patches) == 3  # two progress steps, then the final state
    assert card.card["header"]["template"] == "green" and "All set" in card_texts(card.card)
    actions = [
        b["value"]
        for el in card.card["elements"]
        if el["tag"] == "action"
        for b in el["actions"]
        if "value" in b
    ]
    assert actions == [{"action": "retry", "job_id": "job1"}, {"action": "other_model", "job_id": "job1"}]
    (ping,) = fake.bot_messages("text")  # a patch notifies nobody: the finished job pings its user
    assert json.loads(ping.content)["text"].startswith('<at user_id="ou_user0001"></at>')
    reply = fake.calls_to("POST", "/reply$")[0]
    assert reply.body["uuid"] == "job1:prenotice" and reply.body["msg_type"] == "interactive"


async def test_group_message_without_the_mention_is_ignored(fake: FakeFeishu) -> None:
    standin = StandIn()
    async with running(fake, standin):
        ignored = await fake.push_event(text_event("lunch anyone?"))
        await fake.push_event(text_event("hello", chat_type="p2p", chat_id="oc_p2p0001"))  # a barrier
        await standin.wait_intents(1)
    assert ignored.code == 200  # acked, so Feishu does not push it again
    assert [i.text for i in standin.intents] == ["hello"]
    assert fake.bot_messages() == []


async def test_p2p_image_is_downloaded_through_the_message_resource_api(fake: FakeFeishu) -> None:
    standin = StandIn(Script(progress=()))
    async with running(fake, standin):
        event = fake.register(image_event("img_v3_abc"), images={"img_v3_abc": PNG})
        await fake.push_event(event)
        await standin.wait_intents(1)
        await standin.finish_jobs()
    (intent,) = standin.intents
    message_id = event["event"]["message"]["message_id"]
    assert intent.attachments[0].handle == f"{message_id}/img_v3_abc" and intent.origin.is_direct
    assert standin.images == [PNG]
    (get,) = fake.calls_to("GET", "/resources/")
    assert get.path.endswith(f"/messages/{message_id}/resources/img_v3_abc") and get.query == {
        "type": "image"
    }


@pytest.mark.parametrize("locale", ["", "zh_cn"])
async def test_p2p_post_with_text_and_images(fake: FakeFeishu, locale: str) -> None:
    standin = StandIn(Script(progress=()))
    paragraphs = [
        [{"tag": "text", "text": "first frame to last frame"}],
        [{"tag": "img", "image_key": "img_a"}, {"tag": "img", "image_key": "img_b"}],
    ]
    async with running(fake, standin):
        event = fake.register(
            post_event(paragraphs, title="Dusk", locale=locale), images={"img_a": PNG, "img_b": JPEG}
        )
        await fake.push_event(event)
        await standin.wait_intents(1)
        await standin.finish_jobs()
    (intent,) = standin.intents
    assert intent.text == "Dusk\nfirst frame to last frame"
    assert [a.handle.rsplit("/", 1)[1] for a in intent.attachments] == ["img_a", "img_b"]
    assert standin.images == [PNG, JPEG]


async def test_same_event_pushed_twice_over_ws_carries_identical_keys(fake: FakeFeishu) -> None:
    standin = StandIn()
    async with running(fake, standin):
        event = text_event("a kite", mention_bot=BOT_OPEN_ID)
        first, second = await fake.push_event(event), await fake.push_event(event)
        await standin.wait_intents(2)
    assert first.code == second.code == 200
    a, b = standin.intents
    assert a.event_keys == b.event_keys  # the pipeline's dedup drops the second one
    assert a.event_keys == (
        f"feishu:event:{event['header']['event_id']}",
        f"feishu:message:{event['event']['message']['message_id']}",
    )


async def test_ws_ack_is_immediate_while_the_handler_is_slow(fake: FakeFeishu) -> None:
    gate = asyncio.Event()
    standin = StandIn(gate=gate)
    async with running(fake, standin):
        ack = await fake.push_event(text_event("slow", mention_bot=BOT_OPEN_ID))
        await standin.wait_intents(1)
        assert ack.elapsed < ACK_BUDGET and ack.biz_rt_ms is not None and ack.biz_rt_ms < ACK_BUDGET * 1000
        assert not gate.is_set()  # the handler is still busy, the ack went out anyway
        gate.set()


async def test_card_click_over_ws_becomes_an_action_and_gets_a_toast(fake: FakeFeishu) -> None:
    standin = StandIn()
    async with running(fake, standin):
        ack = await fake.push_event(card_action_event("other_model", "job9", open_message_id="om_card1"))
        await standin.wait_intents(1)
    (intent,) = standin.actions()
    assert (intent.job_id, intent.action) == ("job9", Action.OTHER_MODEL)
    assert intent.origin.message_id == "om_card1" and intent.origin.user_id == "ou_user0001"
    assert ack.data["toast"]["i18n"] == {
        "zh_cn": TEXTS("feishu.toast", "zh"),
        "en_us": TEXTS("feishu.toast", "en"),
    }


async def test_an_unreadable_dm_gets_a_hint_and_no_intent(fake: FakeFeishu) -> None:
    standin = StandIn()
    async with running(fake, standin):
        await fake.push_event(
            message_event("audio", {"file_key": "f"}, chat_type="p2p", chat_id="oc_p2p0001")
        )
        await fake.wait_until(lambda: bool(fake.bot_messages()))
    assert standin.intents == []
    (hint,) = fake.bot_messages("interactive")
    assert TEXTS("feishu.unsupported", "zh") in card_texts(hint.card)


async def test_a_returned_notice_is_the_direct_answer(fake: FakeFeishu) -> None:
    standin = StandIn(answer=Notice(NoticeKind.INFO, "How to make a video", ("Describe it.",)))
    async with running(fake, standin):
        event = text_event("/help", chat_type="p2p", chat_id="oc_p2p0001")
        await fake.push_event(event)
        await fake.wait_until(lambda: bool(fake.bot_messages()))
    assert isinstance(standin.intents[0], CommandIntent)
    (answer,) = fake.bot_messages("interactive")
    assert answer.parent_id == event["event"]["message"]["message_id"]
    assert card_texts(answer.card)[:2] == ["How to make a video", "Describe it."]


async def test_ws_reconnects_after_the_server_drops_the_socket(fake: FakeFeishu) -> None:
    standin = StandIn()
    async with running(fake, standin):
        await fake.drop_ws()
        await fake.wait_until(lambda: fake.ws.connects == 2 and fake.ws.connected_clients == 1)
        await fake.push_event(text_event("after the drop", mention_bot=BOT_OPEN_ID))
        await standin.wait_intents(1)
    assert fake.ws.endpoint_calls == 2


async def test_close_stops_the_ws_thread_and_socket(fake: FakeFeishu) -> None:
    async with running(fake) as bench:
        await fake.push_event(text_event("ping", chat_type="p2p"))  # an acked round trip: the client is up
        assert bench.adapter.connected
    assert not bench.adapter.connected
    await fake.wait_until(lambda: fake.ws.connected_clients == 0)


async def test_close_right_after_start_is_clean(fake: FakeFeishu) -> None:
    for _ in range(3):  # whatever stage the long connection reached, close() ends it without leaks
        adapter = FeishuAdapter(settings_for(fake), texts=TEXTS)
        run = asyncio.create_task(adapter.run(StandIn()))
        await adapter.wait_started()
        await adapter.close()
        await asyncio.wait_for(run, 30)  # hang guard
        assert not adapter.connected
    await fake.wait_until(lambda: fake.ws.connected_clients == 0)


async def test_bad_credentials_fail_run_fast(fake: FakeFeishu) -> None:
    adapter = FeishuAdapter(settings_for(fake, app_secret="wrong"), texts=TEXTS)
    with pytest.raises(PlatformError) as err:
        await asyncio.wait_for(adapter.run(StandIn()), 30)  # hang guard
    assert err.value.code == 10014 and "wrong" not in str(err.value)


async def test_a_long_connection_refused_at_bootstrap_ends_run_with_an_error(fake: FakeFeishu) -> None:
    fake.ws.app_secret = "rotated"  # the Open API still accepts the app, the ws endpoint does not
    adapter = FeishuAdapter(settings_for(fake), texts=TEXTS)
    with pytest.raises(PlatformError, match="long connection"):
        await asyncio.wait_for(adapter.run(StandIn()), 30)  # a hang guard only: it ends in well under 1 s
    assert fake.ws.endpoint_calls == 1 and not adapter.connected


def test_settings_hide_secrets_and_check_the_transport() -> None:
    s = FeishuSettings("cli_1", "sekrit", encrypt_key="ek", verification_token="vt")
    assert "sekrit" not in repr(s) and "ek'" not in repr(s) and "vt'" not in repr(s)
    with pytest.raises(ValueError):
        FeishuAdapter(FeishuSettings("cli_1", "s", transport="smoke-signals"), texts=TEXTS)


# ---- webhook ----------------------------------------------------------------------------------------


async def test_webhook_url_verification_and_token_check(fake: FakeFeishu) -> None:
    async with running(fake, transport="webhook") as bench:
        assert bench.poster is not None
        ok = await bench.poster.challenge("abc123")
        plain = await bench.poster.post({"challenge": "p1", "type": "url_verification"}, encrypted=False)
        bad = await bench.poster.challenge("abc123", token="forged")
    assert (ok.status, ok.body) == (200, {"challenge": "abc123"})
    assert (plain.status, plain.body) == (200, {"challenge": "p1"})
    assert bad.status == 401


async def test_webhook_encrypted_signed_event_is_accepted_and_acked_fast(fake: FakeFeishu) -> None:
    gate = asyncio.Event()
    standin = StandIn(gate=gate)
    async with running(fake, standin, transport="webhook") as bench:
        assert bench.poster is not None
        reply = await bench.poster.post(text_event("a paper boat", mention_bot=BOT_OPEN_ID))
        await standin.wait_intents(1)
        assert not gate.is_set()
        gate.set()
    assert (reply.status, reply.body) == (200, {"msg": "success"})
    assert reply.elapsed < ACK_BUDGET
    assert standin.intents[0].text == "a paper boat"


@pytest.mark.parametrize(
    ("how", "status"),
    [({"bad_signature": True}, 401), ({"sign": False}, 401), ({"token": "forged"}, 401)],
    ids=["bad-signature", "unsigned", "bad-token"],
)
async def test_webhook_rejects_forgeries(fake: FakeFeishu, how: dict, status: int) -> None:
    standin = StandIn()
    async with running(fake, standin, transport="webhook") as bench:
        assert bench.poster is not None
        reply = await bench.poster.post(text_event("hi", chat_type="p2p"), **how)
        barrier = await bench.poster.post(text_event("genuine", chat_type="p2p"))
        await standin.wait_intents(1)
    assert reply.status == status and barrier.status == 200
    assert [i.text for i in standin.intents] == ["genuine"]


async def test_webhook_rejects_an_undecryptable_body(fake: FakeFeishu) -> None:
    async with running(fake, transport="webhook") as bench:
        assert bench.poster is not None
        reply = await bench.poster.post(
            {"encrypt": "bm90IHJlYWxseSBlbmNyeXB0ZWQ="}, encrypted=False, sign=False
        )
    assert reply.status == 400


async def test_same_event_posted_twice_carries_identical_keys(fake: FakeFeishu) -> None:
    standin = StandIn()
    async with running(fake, standin, transport="webhook") as bench:
        assert bench.poster is not None
        event = text_event("twice", mention_bot=BOT_OPEN_ID)
        replies = [await bench.poster.post(event), await bench.poster.post(event)]
        await standin.wait_intents(2)
    assert [r.status for r in replies] == [200, 200]
    assert standin.intents[0].event_keys == standin.intents[1].event_keys


async def test_card_click_over_webhook(fake: FakeFeishu) -> None:
    standin = StandIn()
    async with running(fake, standin, transport="webhook") as bench:
        assert bench.poster is not None
        reply = await bench.poster.post(card_action_event("retry", "job3", open_message_id="om_card3"))
        await standin.wait_intents(1)
    assert reply.status == 200 and reply.body["toast"]["type"] == "info"
    (intent,) = standin.intents
    assert isinstance(intent, ActionIntent) and (intent.job_id, intent.action) == ("job3", Action.RETRY)


async def test_webhook_route_is_closed_when_the_long_connection_is_used(fake: FakeFeishu) -> None:
    async with running(fake) as bench:
        from aiohttp.test_utils import make_mocked_request

        response = await bench.adapter.handle_webhook(make_mocked_request("POST", "/feishu/events"))
    assert response.status == 404


# ---- legacy payloads and the request-size limit (issue 15) ----------------------------------------------

V1_MESSAGE = {
    "uuid": "41b5f371157e3d5341b38b20396e77a3",
    "ts": "1700000000.123",
    "type": "event_callback",
    "event": {
        "type": "message",
        "app_id": "cli_test",
        "open_chat_id": "oc_p2p0001",
        "chat_type": "private",
        "msg_type": "text",
        "open_id": "ou_user0001",
        "open_message_id": "om_v1_0001",
        "text": "a cat surfing",
        "text_without_at_bot": "a cat surfing",
    },
}
OLD_CARD = {
    "open_id": "ou_user0001",
    "user_id": "u_user0001",
    "open_message_id": "om_card0001",
    "open_chat_id": "oc_group0001",
    "tenant_key": "tk_test",
    "action": {"value": {"action": "retry", "job_id": "job1"}, "tag": "button"},
}


def _legacy_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "imabot does not read" in r.getMessage()]


async def test_legacy_webhook_payloads_get_one_warning_per_kind_and_no_401(
    fake: FakeFeishu, caplog: pytest.LogCaptureFixture
) -> None:
    standin = StandIn()
    async with running(fake, standin, transport="webhook") as bench:
        assert bench.poster is not None
        # The old callback's `token` is a per-click update token, not the verification token.
        cards = [
            await bench.poster.post(OLD_CARD, token="c-295ee57216a5dc9de90f", encrypted=False, sign=False)
            for _ in range(2)
        ]
        events = [await bench.poster.post(V1_MESSAGE) for _ in range(2)]
        barrier = await bench.poster.post(text_event("genuine", chat_type="p2p"))
        await standin.wait_intents(1)
    assert [(r.status, r.body) for r in cards] == [(200, {}), (200, {})]
    assert [r.status for r in events] == [200, 200] and barrier.status == 200
    assert [i.text for i in standin.intents] == ["genuine"]
    event_note, card_note = sorted(_legacy_warnings(caplog), key=lambda m: "card" in m)
    assert "card.action.trigger" in card_note and "Callback Configuration" in card_note
    assert "im.message.receive_v1" in event_note and "Event Configuration" in event_note


async def test_a_legacy_event_over_the_long_connection_is_acked_and_named_once(
    fake: FakeFeishu, caplog: pytest.LogCaptureFixture
) -> None:
    standin = StandIn()
    async with running(fake, standin):
        acks = [await fake.push_event(V1_MESSAGE), await fake.push_event(V1_MESSAGE)]
        await fake.push_event(text_event("genuine", chat_type="p2p"))
        await standin.wait_intents(1)
    assert [a.code for a in acks] == [200, 200]
    (note,) = _legacy_warnings(caplog)
    assert "schema 1.0" in note and "im.message.receive_v1" in note


async def test_a_huge_answer_still_reaches_the_user_under_the_request_limit(fake: FakeFeishu) -> None:
    value = 'x"\\' * 14_000  # 42,000 characters that the double escaping makes bigger still
    notice = Notice(NoticeKind.INFO, f"Saved: {value}", (f"style={value}",), locale="en")
    standin = StandIn(answer=notice)
    async with running(fake, standin):
        await fake.push_event(text_event("/settings style=...", chat_type="p2p"))
        await standin.wait_intents(1)
        await fake.wait_until(lambda: bool(fake.bot_messages("interactive")))
    (card,) = fake.bot_messages("interactive")
    (call,) = [c for c in fake.calls_to("POST", "/reply$")]
    assert call.status == 200 and card.card["header"]["title"]["content"].startswith("Saved: x")
