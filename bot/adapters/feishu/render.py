"""Pure rendering of a Notice as a Feishu interactive card (JSON 1.0, shared and patchable)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from bot.core import Button, ButtonStyle, Notice, NoticeKind

# The label keys render reads, all under the `feishu.` section of the locale files.
LABEL_KEYS = (
    "header.prenotice",
    "header.progress",
    "header.success",
    "header.failure",
    "header.cancelled",
    "header.info",
    "header.error",
    "button.open_video",
    "button.retry",
    "button.other_model",
    "button.cancel",
    "progress",
    "job",
    "cover_alt",
)
# Feishu refuses a send or PATCH whose request body is over 30 KB. The card travels as a JSON string
# inside that body (escaped a second time); the rest of the body (receive_id, msg_type, uuid, flags) is
# small and bounded, and ENVELOPE_BYTES covers it.
MAX_BODY_BYTES = 30 * 1024
ENVELOPE_BYTES = 400
MAX_LINE_CHARS = 2_000
MAX_TITLE_CHARS = 200

_TEMPLATES = {
    NoticeKind.PRENOTICE: "blue",
    NoticeKind.PROGRESS: "wathet",
    NoticeKind.SUCCESS: "green",
    NoticeKind.FAILURE: "red",
    NoticeKind.CANCELLED: "grey",
    NoticeKind.INFO: "indigo",
    NoticeKind.ERROR: "orange",
}
_BUTTON_TYPES = {
    ButtonStyle.PRIMARY: "primary",
    ButtonStyle.SECONDARY: "default",
    ButtonStyle.DANGER: "danger",
    ButtonStyle.LINK: "default",
}
_SAFE_ID = re.compile(r"[^A-Za-z0-9_\-]")


def uuid_for(key: str) -> str:
    """Returns the send `uuid` for a stable key: the key itself when it fits 50 ASCII chars, else a hash."""
    if len(key) <= 50 and key.isascii() and key.isprintable():
        return key
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:40]


def digest(content: str) -> str:
    """Returns a short fingerprint of message content (to skip identical patches)."""
    return hashlib.sha256(content.encode()).hexdigest()


def progress_bar(percent: int, width: int = 10) -> str:
    """Returns a text progress bar for 0..100."""
    filled = max(0, min(width, round(percent * width / 100)))  # clamped here, so any percent is safe
    return "▰" * filled + "▱" * (width - filled)


def content_of(card: Mapping[str, Any]) -> str:
    """Returns the message `content` string for a card (a JSON string, as Feishu wants)."""
    return json.dumps(card, ensure_ascii=False, separators=(",", ":"))


def text_content(text: str, mention_open_id: str = "") -> str:
    """Returns the `content` of a text message, optionally @-mentioning a user first."""
    if mention_open_id:
        text = f'<at user_id="{_SAFE_ID.sub("", mention_open_id)}"></at> {text}'
    return json.dumps({"text": text}, ensure_ascii=False)


def media_content(file_key: str, image_key: str = "") -> str:
    """Returns the `content` of a media (in-chat video player) message."""
    body = {"file_key": file_key}
    if image_key:
        body["image_key"] = image_key
    return json.dumps(body)


def request_bytes(card: Mapping[str, Any]) -> int:
    """Returns the size of a send/PATCH request body carrying card (the envelope's fields included)."""
    body = json.dumps({"content": content_of(card)}, ensure_ascii=False, separators=(",", ":"))
    return len(body.encode()) + ENVELOPE_BYTES


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else (text[: chars - 2].rstrip(" …") + " …" if chars > 8 else "")


def render_card(notice: Notice, labels: Mapping[str, str], *, image_key: str = "") -> dict[str, Any]:
    """Returns the card for notice; labels maps LABEL_KEYS to this locale's texts.

    The request that carries the card stays within MAX_BODY_BYTES: the title and the body text share one
    budget, and the longer of the two is trimmed first (never the buttons, the mention or the job id).
    An error without lines shows its text once, in the body, under the kind's header.
    """
    title, lines = notice.title, notice.lines
    if not lines and notice.kind is NoticeKind.ERROR:
        title, lines = "", (notice.title,)
    title = _shorten(title, MAX_TITLE_CHARS)
    body = "\n".join(line[:MAX_LINE_CHARS] for line in lines)
    card = _card(notice, labels, title, body, image_key)
    while request_bytes(card) > MAX_BODY_BYTES and (title or body):
        ratio = MAX_BODY_BYTES / request_bytes(card)
        if len(body) >= len(title):
            body = _shorten(body, int(len(body) * ratio) - 1)
        else:
            title = _shorten(title, int(len(title) * ratio) - 1)
        card = _card(notice, labels, title, body, image_key)
    return card


def _card(notice: Notice, labels: Mapping[str, str], title: str, body: str, image_key: str) -> dict[str, Any]:
    elements: list[dict[str, Any]] = []
    if notice.mention_user_id:
        who = _SAFE_ID.sub("", notice.mention_user_id)
        elements.append({"tag": "div", "text": {"tag": "lark_md", "content": f"<at id={who}></at>"}})
    if body:
        elements.append({"tag": "div", "text": {"tag": "plain_text", "content": body}})
    if notice.progress is not None:
        shown = labels["progress"].format(bar=progress_bar(notice.progress), percent=notice.progress)
        elements.append({"tag": "div", "text": {"tag": "plain_text", "content": shown}})
    if image_key:
        elements.append(
            {
                "tag": "img",
                "img_key": image_key,
                "alt": {"tag": "plain_text", "content": labels["cover_alt"]},
                "mode": "fit_horizontal",
                "preview": True,
            }
        )
    actions = [_button(b, labels) for b in _buttons(notice)]
    if actions:
        elements.append({"tag": "action", "layout": "flow", "actions": actions})
    if notice.job_id:
        note = labels["job"].format(job_id=notice.job_id)
        elements.append({"tag": "note", "elements": [{"tag": "plain_text", "content": note}]})
    if not elements:
        elements.append({"tag": "div", "text": {"tag": "plain_text", "content": title}})
        title = ""
    title = title or labels[f"header.{notice.kind.value}"]
    return {
        "config": {"wide_screen_mode": True, "update_multi": True, "enable_forward": True},
        "header": {
            "title": {"tag": "plain_text", "content": title},
            "template": _TEMPLATES[notice.kind],
        },
        "elements": elements,
    }


def _buttons(notice: Notice) -> list[Button]:
    buttons = list(notice.buttons)
    if notice.video_url and not any(b.url == notice.video_url for b in buttons):
        buttons.insert(0, Button("", url=notice.video_url, style=ButtonStyle.PRIMARY))
    return buttons


def _button(button: Button, labels: Mapping[str, str]) -> dict[str, Any]:
    if button.url:
        label = button.label or labels["button.open_video"]
        out: dict[str, Any] = {"url": button.url}
    else:
        action = button.action.value if button.action else ""
        label = button.label or labels.get(f"button.{action}", action)
        out = {"value": {"action": action, "job_id": button.job_id}}
    return {
        "tag": "button",
        "text": {"tag": "plain_text", "content": label},
        "type": _BUTTON_TYPES[button.style],
        **out,
    }
