"""Notice → Feishu interactive card (pure), with the real locale texts."""

from __future__ import annotations

import json

import pytest

from bot.adapters.feishu import render
from bot.core import Action, Button, ButtonStyle, Notice, NoticeKind
from bot.jobs.texts import Texts

TEXTS = Texts.load()


def labels(locale: str) -> dict[str, str]:
    return {k: TEXTS(f"feishu.{k}", locale) for k in render.LABEL_KEYS}


def buttons_of(card: dict) -> list[dict]:
    return [b for el in card["elements"] if el["tag"] == "action" for b in el["actions"]]


def test_every_label_key_exists_in_both_locales() -> None:
    for loc in ("en", "zh"):
        assert set(labels(loc)) == set(render.LABEL_KEYS)
    assert labels("zh")["button.retry"] != labels("en")["button.retry"]


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_every_card_is_shared_so_it_can_be_patched(kind: NoticeKind) -> None:
    card = render.render_card(Notice(kind, "t", ("line",)), labels("en"))
    assert card["config"]["update_multi"] is True
    assert card["header"]["title"]["content"] == "t"
    assert card["elements"]


def test_progress_card_shows_bar_and_percent() -> None:
    card = render.render_card(
        Notice(NoticeKind.PROGRESS, "Generating", progress=40, job_id="j1"), labels("en")
    )
    texts = [el["text"]["content"] for el in card["elements"] if el["tag"] == "div"]
    assert "▰▰▰▰▱▱▱▱▱▱ 40%" in texts
    assert card["header"]["template"] == "wathet"
    assert card["elements"][-1] == {"tag": "note", "elements": [{"tag": "plain_text", "content": "Job j1"}]}


def test_success_card_has_play_link_cover_and_action_buttons() -> None:
    notice = Notice(
        NoticeKind.SUCCESS,
        "Your video is ready",
        ("Ima Sevio 1.0 · 5s",),
        buttons=(
            Button("Retry", Action.RETRY, "j7"),
            Button("", Action.OTHER_MODEL, "j7", style=ButtonStyle.PRIMARY),
        ),
        video_url="https://cdn.example/v.mp4",
        job_id="j7",
        locale="zh",
        mention_user_id="ou_abc",
    )
    card = render.render_card(notice, labels("zh"), image_key="img_v3_cover")
    assert card["header"]["template"] == "green"
    assert card["elements"][0]["text"] == {"tag": "lark_md", "content": "<at id=ou_abc></at>"}
    assert {"tag": "img", "img_key": "img_v3_cover"}.items() <= next(
        el for el in card["elements"] if el["tag"] == "img"
    ).items()
    play, retry, other = buttons_of(card)
    assert play["url"] == "https://cdn.example/v.mp4" and play["text"]["content"] == "▶ 播放视频"
    assert play["type"] == "primary"
    assert retry["value"] == {"action": "retry", "job_id": "j7"} and retry["text"]["content"] == "Retry"
    # An empty label falls back to the locale's text.
    assert (
        other["value"] == {"action": "other_model", "job_id": "j7"}
        and other["text"]["content"] == "换个模型试试"
    )


def test_link_button_given_by_the_notice_is_not_doubled() -> None:
    url = "https://cdn.example/v.mp4"
    notice = Notice(
        NoticeKind.SUCCESS, "ok", video_url=url, buttons=(Button("Open", url=url, style=ButtonStyle.LINK),)
    )
    assert [b.get("url") for b in buttons_of(render.render_card(notice, labels("en")))] == [url]


def test_header_falls_back_to_locale_when_title_empty() -> None:
    card = render.render_card(Notice(NoticeKind.ERROR, "", ("bad",), locale="zh"), labels("zh"))
    assert card["header"]["title"]["content"] == "请求未被受理"


def test_mention_id_cannot_inject_markup() -> None:
    card = render.render_card(
        Notice(NoticeKind.SUCCESS, "x", mention_user_id="ou_1></at>**x**"), labels("en")
    )
    assert card["elements"][0]["text"]["content"] == "<at id=ou_1atx></at>"


def test_huge_body_is_trimmed_under_the_patch_limit_but_buttons_survive() -> None:
    lines = tuple("视频描述" * 400 for _ in range(30))
    notice = Notice(NoticeKind.FAILURE, "x", lines, buttons=(Button("Retry", Action.RETRY, "j"),))
    card = render.render_card(notice, labels("en"))
    assert len(render.content_of(card).encode()) <= render.MAX_CARD_BYTES
    assert buttons_of(card)[0]["value"]["action"] == "retry"
    assert card["elements"][0]["text"]["content"].endswith(" …")


def test_uuid_is_the_key_when_it_fits_else_a_stable_hash() -> None:
    assert render.uuid_for("job1:prenotice") == "job1:prenotice"
    long = "job-" + "x" * 80 + ":final"
    assert render.uuid_for(long) == render.uuid_for(long) != render.uuid_for(long + "!")
    assert len(render.uuid_for(long)) <= 50
    assert len(render.uuid_for("任务:1")) <= 50 and render.uuid_for("任务:1").isascii()


def test_text_and_media_contents_are_json_strings() -> None:
    assert json.loads(render.text_content("hi", "ou_1")) == {"text": '<at user_id="ou_1"></at> hi'}
    assert json.loads(render.text_content("hi")) == {"text": "hi"}
    assert json.loads(render.media_content("file_1", "img_1")) == {"file_key": "file_1", "image_key": "img_1"}
    assert json.loads(render.media_content("file_1")) == {"file_key": "file_1"}
