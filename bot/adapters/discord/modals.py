"""The form Continue ▶ opens on Discord: a modal asking what happens in the next shot.

The modal's custom_id is the Continue button's own (`imabot:continue:<job id>`), and its one text input
is `prompt`. Its submit (interaction type 5) is read from the raw interaction by
convert.interaction_intent (with form.py), like a button's custom_id, so a form opened before a restart
still works after it: the modal is never kept in discord.py's view store (it is stopped before it is
sent), and nothing waits on it.
"""

from __future__ import annotations

from collections.abc import Callable

import discord

from bot.core import Action

from .convert import custom_id
from .form import PROMPT_FIELD

# Discord's limits: a modal title and a label at most 45 characters, a description and a placeholder at
# most 100, a text input's value at most 4000.
TITLE_CHARS, LABEL_CHARS, HINT_CHARS = 45, 45, 100
MAX_PROMPT_CHARS = 1000


def continue_form(job_id: str, texts: Callable[..., str], locale: str) -> discord.ui.Modal:
    """The modal for the press on Continue ▶ of job_id, in locale: one optional paragraph input."""
    modal = discord.ui.Modal(
        title=_fit(texts("shots.form.title", locale), TITLE_CHARS),
        custom_id=custom_id(Action.CONTINUE, job_id),
        timeout=None,
    )
    prompt = discord.ui.TextInput(
        custom_id=PROMPT_FIELD,
        style=discord.TextStyle.paragraph,
        placeholder=_fit(texts("shots.form.placeholder", locale), HINT_CHARS),
        required=False,  # empty keeps the words of the shot it continues
        max_length=MAX_PROMPT_CHARS,
    )
    modal.add_item(
        discord.ui.Label(
            text=_fit(texts("shots.form.label", locale), LABEL_CHARS),
            description=_fit(texts("shots.form.hint", locale), HINT_CHARS),
            component=prompt,
        )
    )
    modal.stop()  # never stored: the submit is read from the raw interaction (see the module docstring)
    return modal


def _fit(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


__all__ = ["continue_form"]
