"""Pure rendering of a Notice as Discord message parts: content, one embed and buttons."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import discord

from bot.core import Button, ButtonStyle, Notice, NoticeKind

from ._components import JobButton

Texts = Callable[..., str]

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FOOTER_LIMIT = 2048
MAX_BUTTONS = 25
LINK_URL_LIMIT = 512  # Discord refuses the whole message when a link button's url is longer

COLORS: dict[NoticeKind, int] = {
    NoticeKind.PRENOTICE: 0x5865F2,
    NoticeKind.PROGRESS: 0x5865F2,
    NoticeKind.SUCCESS: 0x57F287,
    NoticeKind.FAILURE: 0xED4245,
    NoticeKind.CANCELLED: 0x99AAB5,
    NoticeKind.INFO: 0x5865F2,
    NoticeKind.ERROR: 0xFEE75C,
}
_STYLES: dict[ButtonStyle, discord.ButtonStyle] = {
    ButtonStyle.PRIMARY: discord.ButtonStyle.primary,
    ButtonStyle.SECONDARY: discord.ButtonStyle.secondary,
    ButtonStyle.DANGER: discord.ButtonStyle.danger,
    ButtonStyle.LINK: discord.ButtonStyle.link,
}


@dataclass(frozen=True, eq=False)
class Rendered:
    """A message ready for discord.py: pass send_kwargs() to send, edit_kwargs() to edit."""

    content: str
    embed: discord.Embed | None = None
    view: discord.ui.View | None = None
    mention_user_id: str = ""
    stage: str = ""  # kind, title and buttons: what changes when the job changes state

    @property
    def allowed_mentions(self) -> discord.AllowedMentions:
        """Only the user the notice is for may be pinged; never @everyone or roles from a prompt."""
        users: list[discord.abc.Snowflake] = (
            [discord.Object(id=int(self.mention_user_id))] if self.mention_user_id.isdigit() else []
        )
        return discord.AllowedMentions(everyone=False, roles=False, users=users, replied_user=bool(users))

    def fingerprint(self) -> str:
        """Returns a stable digest of what users would see, to skip edits that change nothing."""
        return json.dumps(
            [
                self.content,
                self.embed.to_dict() if self.embed else None,
                self.view.to_components() if self.view else [],
            ],
            sort_keys=True,
            default=str,
        )

    def send_kwargs(self) -> dict[str, Any]:
        """Returns keyword arguments for Messageable.send / followup.send (unset parts omitted)."""
        out: dict[str, Any] = {"allowed_mentions": self.allowed_mentions}
        if self.content:
            out["content"] = self.content
        if self.embed is not None:
            out["embed"] = self.embed
        if self.view is not None:
            out["view"] = self.view
        return out

    def edit_kwargs(self) -> dict[str, Any]:
        """Returns keyword arguments for Message.edit / edit_original_response (unset parts cleared)."""
        return {
            "content": self.content or None,
            "embed": self.embed,
            "view": self.view,
            "allowed_mentions": self.allowed_mentions,
        }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_FENCE = re.compile(r"`{3,}")
_LINE_START = re.compile(r"^(\s*)([#>])")


def _neutral_line(line: str) -> str:
    line = line.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("||", "\\|\\|")
    if _FENCE.sub("", line).count("`") % 2:
        line = line.replace("`", "\\`")  # an unpaired backtick would open code up to our next one
    else:
        line = _FENCE.sub(lambda m: "\\`" * len(m.group(0)), line)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), line)


def neutralize(text: str) -> str:
    """Returns embed text in which user words cannot form markdown that changes what the bot shows.

    Masked links ([text](url)) never form, so a prompt cannot post a clickable link under the bot's name;
    code fences and unpaired backticks are escaped, so a prompt cannot swallow the lines after it; a
    line cannot become a heading or a quote; spoilers cannot hide text. Paired inline code on one line
    (our own texts use it for commands and job ids) is kept.
    """
    return "\n".join(_neutral_line(line) for line in text.split("\n"))


def _button(button: Button, notice: Notice, texts: Texts) -> discord.ui.Item[Any] | None:
    if button.url:
        if len(button.url) > LINK_URL_LIMIT:
            return None  # render_notice puts the link in the content instead
        label = button.label or texts("discord.button.open", notice.locale)
        return discord.ui.Button(style=discord.ButtonStyle.link, label=_cut(label, 80), url=button.url)
    job_id = button.job_id or notice.job_id
    if button.action is None or not job_id:
        return None
    label = button.label or texts(f"discord.button.{button.action.value}", notice.locale)
    style = _STYLES[button.style]
    if style is discord.ButtonStyle.link:
        style = discord.ButtonStyle.secondary
    try:
        return JobButton(button.action, job_id, label=_cut(label, 80), style=style)
    except ValueError:
        return None


def render_view(notice: Notice, texts: Texts) -> discord.ui.View | None:
    """Returns a persistent view with the notice's buttons, or None when it has none."""
    items, seen = [], set()
    for item in (_button(b, notice, texts) for b in notice.buttons):
        # Discord refuses the whole message when two buttons share a custom_id (the same action and job).
        key = getattr(item, "custom_id", None)
        if item is not None and (key is None or key not in seen):
            items.append(item)
            seen.add(key)
    if not items:
        return None
    view = discord.ui.View(timeout=None)
    for item in items[:MAX_BUTTONS]:
        view.add_item(item)
    return view


def render_embed(notice: Notice, texts: Texts) -> discord.Embed:
    """Returns the notice as one embed: title (linked to the video), lines, cover image, job id footer.

    The lines are shown as given (the pipeline's progress line already carries its bar).
    """
    embed = discord.Embed(
        title=_cut(neutralize(notice.title), TITLE_LIMIT) or None,
        description=_cut(neutralize("\n".join(notice.lines)), DESCRIPTION_LIMIT) or None,
        color=COLORS[notice.kind],
        url=notice.video_url or None,
    )
    if notice.cover_url:
        embed.set_image(url=notice.cover_url)
    if notice.job_id:
        embed.set_footer(
            text=_cut(texts("discord.footer_job", notice.locale, job_id=notice.job_id), FOOTER_LIMIT)
        )
    return embed


def render_notice(notice: Notice, texts: Texts, *, upload: bool = False) -> Rendered:
    """Returns the notice as a Discord message.

    The content mentions notice.mention_user_id and carries the video URL (Discord plays it inline)
    unless upload is True, in which case the attached mp4 is the player and the URL stays on the embed.
    """
    parts = []
    if notice.mention_user_id.isdigit():
        parts.append(f"<@{notice.mention_user_id}>")
    if notice.video_url and not upload:
        parts.append(notice.video_url)
    # A link too long for a button stays reachable as plain text.
    parts += [b.url for b in notice.buttons if len(b.url) > LINK_URL_LIMIT and b.url not in parts]
    view = render_view(notice, texts)
    return Rendered(
        content=_cut("\n".join(parts), CONTENT_LIMIT),
        embed=render_embed(notice, texts),
        view=view,
        mention_user_id=notice.mention_user_id if notice.mention_user_id.isdigit() else "",
        stage=json.dumps([notice.kind.value, notice.title, view.to_components() if view else []]),
    )


def render_text(text: str) -> Rendered:
    """Returns a plain text message (acknowledgements, refusals)."""
    return Rendered(content=_cut(text, CONTENT_LIMIT))
