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
    assert render.request_bytes(card) <= render.MAX_BODY_BYTES
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


def _request_body(card: dict) -> bytes:
    """The PATCH body as FeishuApi sends it: the card as a JSON string inside the JSON body."""
    body = {"content": render.content_of(card)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_huge_title_and_body_share_one_budget_under_the_request_limit() -> None:
    # A /settings echo of a 40,000-character value: once in the title, once in a line, full of quotes
    # and newlines, which the double escaping makes bigger on the wire than in the card.
    value = 'a"b\\c\n' * 5_000
    notice = Notice(
        NoticeKind.INFO,
        "Saved " + value,
        ("value: " + value, "ok"),
        job_id="j1",
        buttons=(Button("Retry", Action.RETRY, "j1"),),
    )
    card = render.render_card(notice, labels("en"))
    sent = _request_body(card)
    assert len(sent) + 400 <= 30 * 1024 and render.request_bytes(card) == len(sent) + 400
    assert (
        card["header"]["title"]["content"].startswith("Saved a")
        and len(card["header"]["title"]["content"]) <= 200
    )
    assert buttons_of(card)[0]["value"] == {"action": "retry", "job_id": "j1"}
    assert card["elements"][-1]["elements"][0]["content"] == "Job j1"


def test_a_card_just_under_the_limit_is_left_whole() -> None:
    notice = Notice(NoticeKind.INFO, "t", ("x" * 20_000,))
    card = render.render_card(notice, labels("en"))
    assert card["elements"][0]["text"]["content"] == "x" * 2_000  # only the per-line cap applies


def test_a_long_title_alone_is_trimmed_when_the_body_is_empty() -> None:
    card = render.render_card(Notice(NoticeKind.PROGRESS, "标题" * 20_000, progress=5), labels("zh"))
    title = card["header"]["title"]["content"]
    assert title.endswith(" …") and len(title) <= 200 and render.request_bytes(card) <= render.MAX_BODY_BYTES


def test_an_error_card_shows_its_text_once() -> None:
    text = "report.pdf is not an image."
    card = render.render_card(Notice(NoticeKind.ERROR, text, locale="en"), labels("en"))
    assert card["header"]["title"]["content"] == "Request not accepted"
    assert render.content_of(card).count("report.pdf") == 1
    info = render.render_card(Notice(NoticeKind.INFO, "No videos yet."), labels("en"))
    assert render.content_of(info).count("No videos yet.") == 1
    assert info["header"]["title"]["content"] == "Ima Sevio video bot"


def test_the_limit_is_exactly_30_kib_of_request_body() -> None:
    # A card whose request lands just over 30 KiB (but under 31): it must be trimmed, and then fit.
    lines = ["x" * 2_000] * 14
    card = render.render_card(Notice(NoticeKind.INFO, "t", tuple(lines)), labels("en"))
    extra = 30 * 1024 + 200 - render.request_bytes(card)
    assert extra > 0
    lines.append("y" * extra)
    full = render._card(Notice(NoticeKind.INFO, "t"), labels("en"), "t", "\n".join(lines), "")
    assert 30 * 1024 < render.request_bytes(full) < 31 * 1024
    trimmed = render.render_card(Notice(NoticeKind.INFO, "t", tuple(lines)), labels("en"))
    assert render.request_bytes(trimmed) <= 30 * 1024 and trimmed != full


def test_header_colours_follow_the_kind() -> None:
    colours = {
        k: render.render_card(Notice(k, "t", ("l",)), labels("en"))["header"]["template"] for k in NoticeKind
    }
    assert colours[NoticeKind.PRENOTICE] == "blue" and colours[NoticeKind.CANCELLED] == "grey"
    assert colours[NoticeKind.SUCCESS] == "green" and colours[NoticeKind.FAILURE] == "red"
    assert colours[NoticeKind.PROGRESS] == "wathet" and colours[NoticeKind.INFO] == "indigo"
    assert colours[NoticeKind.ERROR] == "orange"


def test_button_types_and_the_hashed_uuid_length() -> None:
    buttons = (
        Button("Go", Action.RETRY, "j", style=ButtonStyle.PRIMARY),
        Button("Stop", Action.CANCEL, "j", style=ButtonStyle.DANGER),
        Button("Other", Action.OTHER_MODEL, "j"),
    )
    card = render.render_card(Notice(NoticeKind.PROGRESS, "t", ("l",), buttons=buttons), labels("en"))
    assert [b["type"] for b in buttons_of(card)] == ["primary", "danger", "default"]
    hashed = render.uuid_for("x" * 51)
    assert len(hashed) == 41 and hashed.startswith("k")


def test_trims_end_cleanly_and_the_bar_clamps() -> None:
    assert render._shorten("aaaaaaa    bbbbbbbb", 12) == "aaaaaaa …"
    assert render._shorten("abcdefghij", 8) == "" and render._shorten("abc", 3) == "abc"
    assert render.progress_bar(-5, width=1000) == "▱" * 1000
    assert render.progress_bar(150, width=4) == "▰" * 4 and render.progress_bar(50, width=4) == "▰▰▱▱"
