"""The form Continue ▶ opens on Feishu (pure): a card with a form container asking what happens next.

A press on Continue ▶ (a card.action.trigger whose value is {"action": "continue", "job_id"} and that
carries no form) is answered with this card, replying to the result. Its submit button has the same value
and the form's name, so the submit comes back as a card.action.trigger carrying `action.form_value`
({"prompt": typed text}); convert reads it as the Continue press with that text. Card JSON 1.0, like every
other card of the bot, whose form container (`form` with `input` and a `form_submit` button) Feishu
clients show since V6.6; older clients show their upgrade hint, and a reply "continue …" still works.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

FORM_NAME = "continue"
PROMPT_FIELD = "prompt"  # the input's name: the key of action.form_value
MAX_PROMPT_CHARS = 1000


def wants_form(raw: Mapping[str, Any]) -> bool:
    """Whether a pushed event is a press on Continue ▶ that should open the form: a card action whose
    value's action is "continue" and that is not itself a submitted form."""
    header = raw.get("header")
    event = raw.get("event")
    if not isinstance(header, Mapping) or header.get("event_type") != "card.action.trigger":
        return False
    action = event.get("action") if isinstance(event, Mapping) else None
    if not isinstance(action, Mapping) or "form_value" in action:
        return False
    value = action.get("value")
    return isinstance(value, Mapping) and value.get("action") == "continue" and bool(value.get("job_id"))


def form_text(action: Mapping[str, Any]) -> str:
    """The text typed into the form a card action submitted ("" for a plain press or an empty input)."""
    values = action.get("form_value")
    typed = values.get(PROMPT_FIELD) if isinstance(values, Mapping) else None
    return typed if isinstance(typed, str) else ""


def continue_card(job_id: str, texts: Callable[..., str], locale: str) -> dict[str, Any]:
    """The card that asks what happens in the shot after job_id: a line saying how, then the form."""
    t = texts
    submit = {
        "tag": "button",
        "name": "submit",
        "action_type": "form_submit",
        "type": "primary",
        "text": {"tag": "plain_text", "content": t("shots.form.submit", locale)},
        "value": {"action": "continue", "job_id": job_id},
    }
    prompt = {
        "tag": "input",
        "name": PROMPT_FIELD,
        "required": False,  # empty keeps the words of the shot it continues
        "max_length": MAX_PROMPT_CHARS,
        "label": {"tag": "plain_text", "content": t("shots.form.label", locale)},
        "label_position": "top",
        "placeholder": {"tag": "plain_text", "content": t("shots.form.placeholder", locale)},
    }
    return {
        "config": {"wide_screen_mode": True, "update_multi": True},
        "header": {
            "title": {"tag": "plain_text", "content": t("shots.form.title", locale)},
            "template": "blue",
        },
        "elements": [
            {
                "tag": "div",
                "text": {"tag": "plain_text", "content": t("shots.form.body", locale, job_id=job_id)},
            },
            {"tag": "form", "name": FORM_NAME, "elements": [prompt, submit]},
        ],
    }


__all__ = ["FORM_NAME", "PROMPT_FIELD", "continue_card", "form_text", "wants_form"]
