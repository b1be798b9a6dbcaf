"""Notices of every shape, shared by the Discord and Feishu payload-check tests (no platform imports)."""

from __future__ import annotations

import itertools

from bot.core import Action, Button, ButtonStyle, Notice, NoticeKind

URL = "https://cdn.example.com/v/abc.mp4"
COVER = "https://cdn.example.com/v/abc.jpg"
USER = "900000000000000030"
LONG = "x" * 9000


def every_notice() -> list[Notice]:
    """Every kind with and without each optional part, in both languages."""
    buttons = (
        Button("", Action.RETRY, "j1"),
        Button("", Action.OTHER_MODEL, "j1", style=ButtonStyle.PRIMARY),
        Button("", Action.CANCEL, "j1", style=ButtonStyle.DANGER),
        Button("Open", url=URL, style=ButtonStyle.LINK),
        Button("Odd", Action.RETRY, "j1", style=ButtonStyle.LINK),
    )
    out = []
    for kind, locale, full in itertools.product(NoticeKind, ("en", "zh"), (False, True)):
        out.append(
            Notice(
                kind,
                "Title" if full or kind is not NoticeKind.ERROR else "Only a title",
                ("line one", "line two") if full else (),
                progress=40 if full else None,
                buttons=buttons if full else (),
                video_url=URL if full else "",
                cover_url=COVER if full else "",
                job_id="j1" if full else "",
                locale=locale,
                mention_user_id=USER if full else "",
            )
        )
    return out


def huge_notice() -> Notice:
    """Every part far over every limit: 30 distinct buttons, 9,000-character title and lines, a 3,000 URL."""
    return Notice(
        NoticeKind.SUCCESS,
        LONG,
        (LONG, LONG),
        buttons=tuple(Button(LONG[:200], Action.RETRY, f"j{i}") for i in range(30)),
        video_url="https://cdn.example.com/" + "v" * 3000,
        job_id="j1",
        mention_user_id=USER,
    )


def notice_id(n: Notice) -> str:
    return f"{n.kind.value}-{n.locale}-{bool(n.lines)}"
