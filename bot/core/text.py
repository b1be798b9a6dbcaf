"""Text from users made safe to store, parse and send to IMA: pure, no I/O.

A lone surrogate (valid in a JSON string, "\\ud800") cannot be encoded to UTF-8, so SQLite and every HTTP
body fail on it; control characters are invisible in a chat yet reach IMA's prompt; and a 100 KB message
keeps the parser busy on the event loop. `clean_text` fixes all three at the edge, before anything else
sees the text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from .intent import CommandIntent, GenerationIntent, Intent

MAX_MESSAGE_CHARS = 4000  # Discord's own cap for a message (Nitro); longer text is cut before parsing
ECHO_CHARS = 60  # an invalid value echoed back in a reply is cut to this

_KEEP = {"\n", "\t"}


def clean_text(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Returns text without lone surrogates and control/format characters other than newline and tab
    ("\\r\\n" and "\\r" become "\\n"), cut to at most limit characters. A non-str becomes ""."""
    if not isinstance(text, str):
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isprintable() and len(text) <= limit:
        return text  # the common case: one C-level scan, no copy
    out: list[str] = []
    for ch in text[: limit * 2]:  # bounded work, whatever the size of the message
        if ch in _KEEP or _allowed(ch):
            out.append(ch)
            if len(out) >= limit:
                break
    return "".join(out)


def _allowed(ch: str) -> bool:
    cat = unicodedata.category(ch)
    if cat == "Cs" or cat == "Cc":  # lone surrogates; C0/C1 controls (NUL, ESC, DEL, ...)
        return False
    # Bidi overrides and isolates can disguise a prompt; zero-width joiners are kept (emoji sequences).
    return not (cat == "Cf" and ch not in "\u200c\u200d")


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """A user's value as it may appear inside a reply: cleaned, one line, cut to limit with an ellipsis."""
    text = clean_text(str(value), limit=limit + 1).replace("\n", " ").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


ARG_CHARS = 500  # a command argument (a /settings value, a job id) is never longer than this


def clean_intent(intent: Intent) -> Intent:
    """The intent with every user-typed string cleaned and capped (clean_text): a message's text, a
    command's arguments, a button's job id and form text; and its dedup keys made storable (the same key
    always cleans to the same string, so redeliveries are still recognised)."""
    keys = tuple(clean_text(str(k), ARG_CHARS) for k in intent.event_keys)
    if isinstance(intent, GenerationIntent):
        return replace(intent, text=clean_text(intent.text), event_keys=keys)
    if isinstance(intent, CommandIntent):
        args = {clean_text(str(k), ARG_CHARS): clean_text(str(v), ARG_CHARS) for k, v in intent.args.items()}
        return replace(intent, args=args, event_keys=keys)
    job_id = clean_text(str(intent.job_id), ARG_CHARS)
    return replace(intent, job_id=job_id, text=clean_text(intent.text), event_keys=keys)
