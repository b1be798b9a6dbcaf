"""Notice → Discord message parts (content, embed, buttons): pure rendering."""

from __future__ import annotations

import ast
from pathlib import Path

import discord

from bot.adapters.discord.commands import build_tree
from bot.adapters.discord.render import (
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    TITLE_LIMIT,
    render_notice,
    render_text,
)
from bot.core import Action, Button, ButtonStyle, Notice, NoticeKind
from bot.jobs.texts import Texts

TEXTS = Texts.load()
USER = "900000000000000030"
URL = "https://cdn.example.com/v/abc.mp4"
COVER = "https://cdn.example.com/v/abc.jpg"


def _buttons(rendered) -> list[dict]:  # type: ignore[no-untyped-def]
    assert rendered.view is not None
    return [c for row in rendered.view.to_components() for c in row["components"]]


def _progress(pct: int, title: str = "⏳ Generating…", buttons: tuple[Button, ...] | None = None) -> Notice:
    return Notice(
        NoticeKind.PROGRESS,
        title,
        (f"{pct}% (estimate)", "Prompt: a cat"),
        progress=pct,
        buttons=buttons
        if buttons is not None
        else (Button("Cancel", Action.CANCEL, "j1", style=ButtonStyle.DANGER),),
        job_id="j1",
    )


def test_progress_notice_is_an_embed_with_a_cancel_button_and_no_content() -> None:
    r = render_notice(_progress(40), TEXTS)
    assert r.content == ""
    assert r.embed is not None and r.embed.title == "⏳ Generating…"
    assert r.embed.description == "40% (estimate)\nPrompt: a cat"
    assert r.embed.footer.text == "Job j1"
    assert _buttons(r) == [
        {"type": 2, "style": 4, "label": "Cancel", "disabled": False, "custom_id": "imabot:cancel:j1"}
    ]
    assert r.mention_user_id == "" and r.allowed_mentions.users == []


def test_success_mentions_the_user_carries_the_url_cover_and_buttons() -> None:
    notice = Notice(
        NoticeKind.SUCCESS,
        "✅ Your video is ready!",
        ("🎞️ " + URL,),
        buttons=(
            Button("Open video", url=URL, style=ButtonStyle.LINK),
            Button("Retry", Action.RETRY, "j1", style=ButtonStyle.PRIMARY),
            Button("Try Ima Sevio 1.0", Action.OTHER_MODEL, "j1"),
        ),
        video_url=URL,
        cover_url=COVER,
        job_id="j1",
        mention_user_id=USER,
    )
    r = render_notice(notice, TEXTS)
    assert r.content == f"<@{USER}>\n{URL}"  # the bare URL makes Discord show its player
    assert r.embed is not None and r.embed.image.url == COVER and r.embed.url == URL
    link, retry, other = _buttons(r)
    assert link == {"type": 2, "style": 5, "label": "Open video", "disabled": False, "url": URL}
    assert retry["style"] == 1 and retry["custom_id"] == "imabot:retry:j1"
    assert other["style"] == 2 and other["custom_id"] == "imabot:other_model:j1"
    mentions = r.allowed_mentions.to_dict()
    assert mentions["users"] == [int(USER)] and mentions["parse"] == [] and mentions["replied_user"] is True

    uploaded = render_notice(notice, TEXTS, upload=True)
    assert uploaded.content == f"<@{USER}>"  # the attached mp4 is the player; no second one from the URL


def test_missing_labels_come_from_the_locale_and_unroutable_buttons_are_dropped() -> None:
    notice = Notice(
        NoticeKind.FAILURE,
        "❌",
        buttons=(
            Button("", Action.RETRY),  # job id from the notice
            Button("", Action.OTHER_MODEL, "bad id with spaces"),
            Button("", None),  # neither action nor url
            Button("", url="https://example.com/records"),
        ),
        locale="zh",
        job_id="j9",
    )
    r = render_notice(notice, TEXTS)
    assert [(b.get("label"), b.get("custom_id"), b.get("url")) for b in _buttons(r)] == [
        ("重试", "imabot:retry:j9", None),
        ("打开视频", None, "https://example.com/records"),
    ]


def test_no_buttons_means_no_view_and_edits_clear_old_parts() -> None:
    r = render_notice(Notice(NoticeKind.INFO, "Your defaults"), TEXTS)
    assert r.view is None and r.embed is not None and r.embed.footer.text is None
    assert r.edit_kwargs()["view"] is None and r.edit_kwargs()["content"] is None
    assert "view" not in r.send_kwargs() and "content" not in r.send_kwargs()
    edit = render_text("Got it!").edit_kwargs()
    assert (edit["content"], edit["embed"], edit["view"]) == ("Got it!", None, None)
    assert edit["allowed_mentions"].to_dict() == {"parse": [], "users": []}


def test_limits_are_respected() -> None:
    long = Notice(NoticeKind.INFO, "t" * 400, ("l" * 3000, "m" * 3000), video_url="https://x/" + "v" * 2500)
    r = render_notice(long, TEXTS)
    assert r.embed is not None
    assert len(r.embed.title or "") == TITLE_LIMIT and len(r.embed.description or "") == DESCRIPTION_LIMIT
    assert len(r.content) == CONTENT_LIMIT and r.content.endswith("…")


def test_everyone_in_a_prompt_never_pings() -> None:
    r = render_notice(
        Notice(NoticeKind.INFO, "@everyone look", ("@here <@&123>",), mention_user_id=USER), TEXTS
    )
    mentions = r.allowed_mentions.to_dict()
    assert mentions["parse"] == [] and mentions["users"] == [int(USER)] and "roles" not in mentions


def test_fingerprint_and_stage_tell_a_tick_from_a_state_change() -> None:
    a, b = render_notice(_progress(40), TEXTS), render_notice(_progress(40), TEXTS)
    tick = render_notice(_progress(55), TEXTS)
    finished = render_notice(_progress(100, title="✅ Finished in 1m", buttons=()), TEXTS)
    assert a.fingerprint() == b.fingerprint() and a.fingerprint() != tick.fingerprint()
    assert a.stage == tick.stage  # only the lines moved: an edit that may wait for the cadence
    assert finished.stage != tick.stage  # new title and no Cancel button: shown at once


async def test_every_discord_text_exists_and_none_is_left_unused() -> None:
    used: set[str] = set()

    def recording(key: str, locale: str = "en", /, **params: object) -> str:
        used.add(key)
        return TEXTS(key, locale, **params)

    async def callback(interaction: discord.Interaction) -> None:
        return None

    build_tree(discord.Client(intents=discord.Intents.none()), recording, callback)
    buttons = (*(Button("", action) for action in Action), Button("", url="https://x"))
    render_notice(Notice(NoticeKind.INFO, "t", buttons=buttons, job_id="j"), recording)
    source = Path(__file__).parents[2] / "bot" / "adapters" / "discord"
    for path in source.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value.startswith("discord.") and not node.value.endswith("."):
                    used.add(node.value)
    defined = {f"discord.{k}" for k in TEXTS.section("discord", "en")}
    assert used - defined == set()  # every key the adapter names exists (both locales: test_texts)
    assert defined - used == set()  # and the locale files carry nothing the adapter never shows


# -- user words in embeds, long links (issue 15) -------------------------------------------------------


def _prompt_notice(prompt: str) -> Notice:
    lines = ("Understood: text → video · 5s", f"Prompt: {prompt}", "Estimated time: 1–2 min", "Credits: 25")
    return Notice(NoticeKind.PRENOTICE, "🎬 Got it!", lines, job_id="j1")


def test_a_markdown_link_in_a_prompt_is_not_a_link_in_the_embed() -> None:
    r = render_notice(_prompt_notice("[Download your video](https://evil.example) now"), TEXTS)
    assert r.embed is not None and r.embed.description is not None
    assert "\\[Download your video\\](https://evil.example)" in r.embed.description
    assert "[Download" not in r.embed.description.replace("\\[", "")


def test_an_unclosed_code_fence_cannot_swallow_the_lines_after_it() -> None:
    r = render_notice(_prompt_notice("```python a snake"), TEXTS)
    description = r.embed.description  # type: ignore[union-attr]
    assert "\\`\\`\\`python a snake" in description and "```" not in description.replace("\\`", "")
    assert description.endswith("Estimated time: 1–2 min\nCredits: 25")
    odd = render_notice(_prompt_notice("a `tick"), TEXTS).embed.description  # type: ignore[union-attr]
    assert "a \\`tick" in odd


def test_our_own_inline_code_headings_quotes_and_spoilers() -> None:
    ours = Notice(NoticeKind.INFO, "Jobs", ("succeeded · Fast · a cat · `j_1`",))
    assert render_notice(ours, TEXTS).embed.description == "succeeded · Fast · a cat · `j_1`"  # type: ignore[union-attr]
    tricky = render_notice(_prompt_notice("x\n# HUGE\n> quoted ||hidden|| back\\slash"), TEXTS)
    d = tricky.embed.description  # type: ignore[union-attr]
    assert "\n\\# HUGE\n\\> quoted \\|\\|hidden\\|\\| back\\\\slash" in d
    titled = render_notice(Notice(NoticeKind.ERROR, "[x](https://evil.example) is not an image"), TEXTS)
    assert titled.embed.title == "\\[x\\](https://evil.example) is not an image"  # type: ignore[union-attr]


def test_a_link_button_over_512_characters_is_left_out_and_the_link_stays_in_the_content() -> None:
    long = "https://cdn.example.com/v/" + "a" * 500 + ".mp4?sig=" + "b" * 40
    ok = "https://cdn.example.com/v/" + "c" * 486  # exactly 512
    assert len(ok) == 512
    buttons = (
        Button("Open", url=long, style=ButtonStyle.LINK),
        Button("Docs", url=ok, style=ButtonStyle.LINK),
        Button("Retry", Action.RETRY, "j1"),
    )
    notice = Notice(
        NoticeKind.SUCCESS, "✅", buttons=buttons, video_url=long, job_id="j1", mention_user_id=USER
    )
    r = render_notice(notice, TEXTS)
    assert [b.get("url") for b in _buttons(r)] == [ok, None]
    assert r.content == f"<@{USER}>\n{long}"
    uploaded = render_notice(notice, TEXTS, upload=True)
    assert uploaded.content == f"<@{USER}>\n{long}"  # the mp4 is attached, the link still reachable
    short = Notice(NoticeKind.SUCCESS, "✅", video_url=URL, buttons=(Button("Open", url=URL),))
    assert render_notice(short, TEXTS, upload=True).content == ""
    other = Notice(NoticeKind.INFO, "links", buttons=(Button("Docs", url=long),))
    assert render_notice(other, TEXTS).content == long and render_notice(other, TEXTS).view is None


def test_the_link_limit_is_exactly_512_and_the_footer_is_cut_at_2048() -> None:
    over = "https://cdn.example.com/" + "d" * 489  # 513 characters
    assert len(over) == 513
    r = render_notice(Notice(NoticeKind.INFO, "x", buttons=(Button("Docs", url=over),)), TEXTS)
    assert r.view is None and r.content == over
    long_id = "j" * 3000
    footer = render_notice(Notice(NoticeKind.INFO, "x", job_id=long_id), TEXTS).embed.footer.text  # type: ignore[union-attr]
    assert footer is not None and len(footer) == 2048 and footer.endswith("…")


def test_send_kwargs_carry_only_the_parts_there_are_and_colors_follow_the_outcome() -> None:
    success = render_notice(Notice(NoticeKind.SUCCESS, "✅", video_url=URL, mention_user_id=USER), TEXTS)
    kwargs = success.send_kwargs()
    assert (
        kwargs["content"] == f"<@{USER}>\n{URL}" and kwargs["embed"] is success.embed and "view" not in kwargs
    )
    plain = render_text("ok").send_kwargs()
    assert plain["content"] == "ok" and "embed" not in plain and "view" not in plain
    assert "content" not in render_notice(_progress(5), TEXTS).send_kwargs()
    colors = {k: render_notice(Notice(k, "t"), TEXTS).embed.color.value for k in NoticeKind}  # type: ignore[union-attr]
    assert colors[NoticeKind.SUCCESS] == 0x57F287 and colors[NoticeKind.FAILURE] == 0xED4245  # green, red
    assert colors[NoticeKind.PRENOTICE] == colors[NoticeKind.PROGRESS] == colors[NoticeKind.INFO] == 0x5865F2
    assert colors[NoticeKind.CANCELLED] == 0x99AAB5 and colors[NoticeKind.ERROR] == 0xFEE75C  # grey, yellow


def test_a_closed_code_fence_pair_and_a_long_label_are_defused() -> None:
    r = render_notice(_prompt_notice("```rm -rf```"), TEXTS)
    assert "Prompt: \\`\\`\\`rm -rf\\`\\`\\`" in r.embed.description  # type: ignore[union-attr, operator]
    label = "L" * 81
    buttons = _buttons(
        render_notice(Notice(NoticeKind.INFO, "x", buttons=(Button(label, Action.RETRY, "j1"),)), TEXTS)
    )
    assert buttons[0]["label"] == "L" * 79 + "…"
