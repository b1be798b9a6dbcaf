"""The fake Discord refuses what Discord refuses, and every message our renderer makes passes that check.

The check (tests/fakes/discord_checks.py) also runs inside the fake Discord, so every pipeline test sends only
messages the real API would take; here it is pinned rule by rule, and every shape a notice can take is
rendered and checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.discord.render import Rendered, render_notice, render_text
from bot.core import Action, Button, ButtonStyle, Notice, NoticeKind
from bot.jobs.texts import Texts
from tests.fakes import discord_checks

from .notice_shapes import LONG, URL, every_notice, huge_notice, notice_id

TEXTS = Texts.load()


def discord_payload(r: Rendered) -> dict[str, Any]:
    """The JSON body discord.py sends for a rendered message."""
    body: dict[str, Any] = {"content": r.content or None}
    if r.embed is not None:
        body["embeds"] = [r.embed.to_dict()]
    if r.view is not None:
        body["components"] = r.view.to_components()
    return body


@pytest.mark.parametrize("notice", every_notice(), ids=notice_id)
def test_every_discord_message_we_render_is_one_discord_takes(notice: Notice) -> None:
    for upload in (False, True):
        assert discord_checks.problem(discord_payload(render_notice(notice, TEXTS, upload=upload))) is None


def test_a_huge_notice_still_renders_within_every_limit() -> None:
    body = discord_payload(render_notice(huge_notice(), TEXTS))
    assert discord_checks.problem(body) is None
    assert sum(len(row["components"]) for row in body["components"]) == 25
    assert discord_checks.problem({"content": render_text(LONG).content}) is None


def test_a_job_button_given_the_link_style_is_a_plain_button_not_a_broken_link() -> None:
    notice = Notice(
        NoticeKind.SUCCESS, "t", buttons=(Button("Again", Action.RETRY, "j1", style=ButtonStyle.LINK),)
    )
    body = discord_payload(render_notice(notice, TEXTS))
    (button,) = body["components"][0]["components"]
    assert button["style"] == 2 and button["custom_id"] == "imabot:retry:j1"
    assert discord_checks.problem(body) is None


# ---- the Discord check refuses what Discord refuses ---------------------------------------------------


def _button(**over: Any) -> dict[str, Any]:
    return {"type": 2, "style": 2, "label": "Retry", "custom_id": "imabot:retry:j1", **over}


def _rows(*rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": "hi", "components": [{"type": 1, "components": list(r)} for r in rows]}


DISCORD_BREAKS = {
    "content over 2000": ({"content": "x" * 2001}, "content"),
    "title over 256": ({"embeds": [{"title": "x" * 257}]}, "embeds"),
    "description over 4096": ({"embeds": [{"description": "x" * 4097}]}, "embeds"),
    "footer over 2048": ({"embeds": [{"footer": {"text": "x" * 2049}}]}, "embeds"),
    "embeds over 6000 in all": (
        {"embeds": [{"description": "x" * 4000}, {"description": "x" * 2001}]},
        "embeds",
    ),
    "eleven embeds": ({"embeds": [{"title": "t"}] * 11}, "embeds"),
    "colour over 24 bits": ({"embeds": [{"title": "t", "color": 0x1000000}]}, "embeds"),
    "embed url not a url": ({"embeds": [{"title": "t", "url": "cdn/v.mp4"}]}, "embeds"),
    "six rows": (_rows(*[[_button(custom_id=f"c{i}")] for i in range(6)]), "components"),
    "six buttons in a row": (_rows([_button(custom_id=f"c{i}") for i in range(6)]), "components"),
    "an empty row": (_rows([]), "components"),
    "custom_id over 100": (_rows([_button(custom_id="c" * 101)]), "components"),
    "label over 80": (_rows([_button(label="x" * 81)]), "components"),
    "style 7": (_rows([_button(style=7)]), "components"),
    "link with a custom_id": (_rows([_button(style=5, url=URL)]), "components"),
    "link url over 512": (
        _rows([{"type": 2, "style": 5, "label": "Open", "url": URL + "x" * 512}]),
        "components",
    ),
    "link without url": (_rows([{"type": 2, "style": 5, "label": "Open"}]), "components"),
    "a url on a job button": (_rows([_button(url=URL)]), "components"),
    "the same custom_id twice": (_rows([_button(), _button()]), "components"),
    "a select where a row goes": ({"components": [{"type": 3, "custom_id": "s"}]}, "components"),
    "mentions parse value": (
        {"content": "hi", "allowed_mentions": {"parse": ["channels"]}},
        "allowed_mentions",
    ),
}


@pytest.mark.parametrize("name", list(DISCORD_BREAKS))
def test_the_fake_discord_refuses_an_invalid_form_body(name: str) -> None:
    body, field = DISCORD_BREAKS[name]
    answer = discord_checks.problem(body)
    assert answer is not None and answer["code"] == 50035 and answer["message"] == "Invalid Form Body"
    assert list(answer["errors"]) == [field]


def test_limits_themselves_are_accepted_and_an_empty_create_is_not() -> None:
    at_limits = {
        "content": "x" * 2000,
        "embeds": [{"title": "x" * 256, "description": "x" * 4096, "footer": {"text": "x" * 1648}}],
        "components": [
            {
                "type": 1,
                "components": [_button(custom_id=f"{r}{i}" + "c" * 98, label="x" * 80) for i in range(5)],
            }
            for r in range(5)
        ],
    }
    assert discord_checks.problem(at_limits) is None
    assert discord_checks.problem({"content": None})["code"] == 50006  # type: ignore[index]
    assert discord_checks.problem({"content": None}, files=1) is None
    assert discord_checks.problem({"content": None}, creating=False) is None


# ---- the limits are exact ---------------------------------------------------------------------------


def test_discord_content_and_description_are_cut_exactly_at_their_limits() -> None:
    assert render_text("x" * 2000).content == "x" * 2000
    cut = render_text("x" * 2001).content
    assert len(cut) == 2000 and cut.endswith("…")
    whole = render_notice(Notice(NoticeKind.INFO, "t", ("y" * 4096,)), TEXTS).embed
    assert whole is not None and whole.description == "y" * 4096
    long = render_notice(Notice(NoticeKind.INFO, "t", ("y" * 4097,)), TEXTS).embed
    assert long is not None and long.description is not None
    assert len(long.description) == 4096 and long.description.endswith("…")


def test_a_send_and_an_edit_carry_the_buttons_and_a_long_link_label_is_cut_to_80() -> None:
    notice = Notice(
        NoticeKind.SUCCESS,
        "t",
        buttons=(Button("L" * 81, url=URL, style=ButtonStyle.LINK), Button("", Action.RETRY, "j1")),
    )
    r = render_notice(notice, TEXTS)
    assert r.view is not None
    assert r.send_kwargs()["view"] is r.view and r.edit_kwargs()["view"] is r.view
    link, retry = discord_payload(r)["components"][0]["components"]
    assert link["label"] == "L" * 79 + "…" and link["url"] == URL
    assert retry["custom_id"] == "imabot:retry:j1"
    assert discord_checks.problem(discord_payload(r)) is None
