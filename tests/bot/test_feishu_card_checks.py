"""The fake Feishu refuses cards Feishu cannot build, and every card our renderer makes passes that check.

The check (tests/fakes/feishu_cards.py) also runs inside the fake Feishu, so every pipeline test sends only
cards the real server would build; here it is pinned rule by rule, and every shape a notice can take is
rendered and checked.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bot.adapters.feishu import render as feishu
from bot.core import Action, Button, Notice, NoticeKind
from bot.jobs.texts import Texts
from tests.fakes import feishu_cards

from .notice_shapes import every_notice, huge_notice, notice_id

TEXTS = Texts.load()


def _labels(locale: str) -> dict[str, str]:
    return {k: TEXTS(f"feishu.{k}", locale) for k in feishu.LABEL_KEYS}


@pytest.mark.parametrize("notice", every_notice(), ids=notice_id)
def test_every_card_we_render_is_one_feishu_builds(notice: Notice) -> None:
    for image_key in ("", "img_v3_cover"):
        card = feishu.render_card(notice, _labels(notice.locale), image_key=image_key)
        assert feishu_cards.problem(card) is None
        assert json.loads(feishu.content_of(card)) == card


def test_a_huge_notice_still_renders_a_card_feishu_builds() -> None:
    card = feishu.render_card(huge_notice(), _labels("en"))
    assert feishu_cards.problem(card) is None
    assert feishu.request_bytes(card) <= feishu.MAX_BODY_BYTES


# ---- the Feishu check refuses what Feishu refuses ---------------------------------------------------


def _good_card() -> dict[str, Any]:
    notice = every_notice()[-1]
    return feishu.render_card(notice, _labels("en"), image_key="img_v3_cover")


def _path(card: dict[str, Any], tag: str) -> dict[str, Any]:
    return next(el for el in card["elements"] if el["tag"] == tag)


BREAKS = {
    "renamed text content": lambda c: _path(c, "div")["text"].update(
        body=_path(c, "div")["text"].pop("content")
    ),
    "unknown text tag": lambda c: _path(c, "div")["text"].update(tag="rich_text"),
    "unknown element tag": lambda c: _path(c, "div").update(tag="paragraph"),
    "header title without tag": lambda c: c["header"]["title"].pop("tag"),
    "header colour": lambda c: c["header"].update(template="pink"),
    "no elements": lambda c: c.pop("elements"),
    "image without key": lambda c: _path(c, "img").pop("img_key"),
    "image with an empty key": lambda c: _path(c, "img").update(img_key=""),
    "image mode": lambda c: _path(c, "img").update(mode="fit"),
    "image alt is a string": lambda c: _path(c, "img").update(alt="cover"),
    "button type": lambda c: _path(c, "action")["actions"][0].update(type="link"),
    "button value is a string": lambda c: _path(c, "action")["actions"][1].update(value="retry"),
    "button url is not a url": lambda c: _path(c, "action")["actions"][0].update(url="cdn/v.mp4"),
    "button without text": lambda c: _path(c, "action")["actions"][0].pop("text"),
    "empty action": lambda c: _path(c, "action").update(actions=[]),
    "action layout": lambda c: _path(c, "action").update(layout="grid"),
    "note with a div": lambda c: _path(c, "note")["elements"].append({"tag": "div"}),
    "config flag is a string": lambda c: c["config"].update(update_multi="true"),
    "misspelt config": lambda c: c["config"].update(wide_screen=True),
    "button outside an action": lambda c: c["elements"].append(_path(c, "action")["actions"][0]),
    "card is a list": lambda c: c.clear(),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_the_fake_feishu_refuses_a_card_the_server_cannot_build(name: str) -> None:
    card = copy.deepcopy(_good_card())
    BREAKS[name](card)
    message = feishu_cards.problem(card if card else [])
    assert message is not None and message.startswith("Failed to create card content, ext=ErrCode: 11310;")


def test_card_json_2_has_a_body_and_no_action_module() -> None:
    v2 = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": "**hi**"}]}}
    assert feishu_cards.problem(v2) is None
    v2["body"]["elements"].append({"tag": "button", "text": {"tag": "plain_text", "content": "Go"}})
    assert feishu_cards.problem(v2) is None
    v2["body"]["elements"].append({"tag": "action", "actions": v2["body"]["elements"][1:]})
    assert "not supported in card JSON 2.0" in (feishu_cards.problem(v2) or "")
    assert feishu_cards.problem({"schema": "2.0", "elements": []}) is not None


def test_a_feishu_card_exactly_at_the_request_limit_is_left_whole() -> None:
    full = ("a" * 1000,) * 28  # lines are capped at 2,000 characters each

    def card(n: int) -> dict[str, Any]:
        return feishu.render_card(Notice(NoticeKind.INFO, "t", (*full, "a" * n)), _labels("en"))

    n = 1000
    n += feishu.MAX_BODY_BYTES - feishu.request_bytes(card(n))
    assert feishu.request_bytes(card(n)) == feishu.MAX_BODY_BYTES
    assert card(n)["elements"][0]["text"]["content"] == "\n".join((*full, "a" * n))
    over = card(n + 1)["elements"][0]["text"]["content"]
    assert over.endswith(" …") and feishu.request_bytes(card(n + 1)) <= feishu.MAX_BODY_BYTES


def test_the_card_travels_as_compact_json() -> None:
    card = _good_card()
    assert feishu.content_of(card) == json.dumps(card, ensure_ascii=False, separators=(",", ":"))
    assert ", " not in feishu.content_of({"a": [1, 2]}) and feishu.content_of({"a": "中"}) == '{"a":"中"}'


def test_a_send_key_of_exactly_50_ascii_characters_is_its_own_uuid() -> None:
    assert feishu.uuid_for("k" * 50) == "k" * 50
    assert feishu.uuid_for("k" * 51) != "k" * 51 and len(feishu.uuid_for("k" * 51)) == 41


def test_a_long_error_with_a_job_id_shows_its_whole_text_once_in_the_body() -> None:
    text = "The video could not be made: " + "the service said no. " * 20  # over the 200-character title cap
    card = feishu.render_card(Notice(NoticeKind.ERROR, text, job_id="j1"), _labels("en"))
    assert card["header"]["title"]["content"] == _labels("en")["header.error"]
    shown = [el["text"]["content"] for el in card["elements"] if el["tag"] == "div"]
    assert shown == [text]
    assert feishu_cards.problem(card) is None


def test_when_the_buttons_fill_the_card_the_title_gives_way() -> None:
    def card(title: str, label_chars: int) -> dict[str, Any]:
        notice = Notice(NoticeKind.SUCCESS, title, buttons=(Button("b" * label_chars, Action.RETRY, "j1"),))
        return feishu.render_card(notice, _labels("en"))

    label = 29_000
    label += feishu.MAX_BODY_BYTES - 300 - feishu.request_bytes(card("", label))
    title = "中" * 200  # 600 bytes: 300 over the limit
    trimmed = card(title, label)
    assert feishu.request_bytes(trimmed) <= feishu.MAX_BODY_BYTES
    shown = trimmed["header"]["title"]["content"]
    assert shown.endswith(" …") and 50 < len(shown) < 200
    (button,) = [b for el in trimmed["elements"] if el["tag"] == "action" for b in el["actions"]]
    assert button["text"]["content"] == "b" * label
