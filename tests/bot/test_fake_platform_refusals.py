"""Over real HTTP: the fake Discord and the fake Feishu refuse a malformed message the way the real APIs do,
and store nothing, so a renderer that breaks a rule fails the send in every pipeline test."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from bot.adapters.feishu.api import FeishuApi, RetryPolicy
from bot.core import PlatformError
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.feishu_server import FakeFeishu

GOOD_CARD = {
    "config": {"update_multi": True},
    "header": {"title": {"tag": "plain_text", "content": "Generating"}, "template": "wathet"},
    "elements": [{"tag": "div", "text": {"tag": "plain_text", "content": "40%"}}],
}


def _bad_card() -> dict[str, Any]:
    card = json.loads(json.dumps(GOOD_CARD))
    card["elements"][0]["text"]["conent"] = card["elements"][0]["text"].pop("content")
    return card


async def test_feishu_refuses_a_card_with_a_misspelt_field_on_send_and_on_patch() -> None:
    with FakeFeishu() as fake:
        async with aiohttp.ClientSession() as session:
            api = FeishuApi(
                session,
                domain=fake.url,
                app_id=fake.app_id,
                app_secret=fake.app_secret,
                clock=time.monotonic,
                retry=RetryPolicy(attempts=0, base=0.01),
            )
            with pytest.raises(PlatformError) as refused:
                await api.create("oc_group0001", "interactive", json.dumps(_bad_card()), uuid="u1")
            assert refused.value.code == 230099 and "ErrCode: 11310" in str(refused.value)
            assert fake.bot_messages() == []
            message_id = await api.create("oc_group0001", "interactive", json.dumps(GOOD_CARD), uuid="u2")
            with pytest.raises(PlatformError) as refused:
                await api.patch(message_id, json.dumps(_bad_card()))
            assert refused.value.code == 230099
            assert fake.messages[message_id].card == GOOD_CARD and fake.messages[message_id].patches == []


async def test_discord_refuses_an_invalid_form_body_and_an_empty_message() -> None:
    async with FakeDiscord() as fake:
        url = f"{fake.base_url}/api/v10/channels/{fake.channel_id}/messages"
        headers = {"Authorization": f"Bot {fake.token}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.post(url, json={"content": "x" * 2001}) as resp:
                answer = await resp.json()
                assert resp.status == 400 and answer["code"] == 50035
                assert answer["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
            async with http.post(url, json={"content": ""}) as resp:
                assert resp.status == 400 and (await resp.json())["code"] == 50006
            assert fake.messages == {}
            async with http.post(url, json={"content": "ok"}) as resp:
                msg = await resp.json()
            row = {
                "type": 1,
                "components": [{"type": 2, "style": 5, "label": "Open", "url": "https://x/" + "v" * 600}],
            }
            async with http.patch(f"{url}/{msg['id']}", json={"components": [row]}) as resp:
                answer = await resp.json()
                assert resp.status == 400 and "components" in answer["errors"]
            assert fake.messages[msg["id"]]["components"] == []
