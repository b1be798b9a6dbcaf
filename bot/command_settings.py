"""`/settings`: show the defaults in effect (and where each comes from), change or clear them, and explain
every key or value that was not accepted."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.core import Notice, NoticeKind
from bot.core.text import echo
from bot.jobs import notices
from bot.jobs.store import UserPrefs
from bot.parsing.kind import RESET_WORDS
from ima import normalize_model_id
from ima.catalog import offered_values
from ima.errors import ImaError, ImaUsageError
from ima.models import ModelId, TaskType

if TYPE_CHECKING:
    from bot.dispatch import Dispatcher

log = logging.getLogger("imabot.commands")

FIELDS = ("model", "duration", "aspect_ratio", "resolution", "locale")
# Names a user may type for each setting (the canonical name maps to itself).
_KEYS = {
    **{f: f for f in FIELDS},
    "language": "locale",
    "lang": "locale",
    "ratio": "aspect_ratio",
    "ar": "aspect_ratio",
    "res": "resolution",
    "模型": "model",
    "时长": "duration",
    "比例": "aspect_ratio",
    "画面比例": "aspect_ratio",
    "分辨率": "resolution",
    "语言": "locale",
}
_CLEAR = frozenset({"", "default", "none", "auto", "clear", "reset", "默认", "自动", "清除"})
_RATIO = re.compile(r"^\s*(\d{1,2})\s*[:：/]\s*(\d{1,2})\s*$")
_FALLBACK = {  # offered values when the catalog cannot be read
    "aspect_ratio": ["16:9", "9:16", "1:1", "4:3", "3:4", "21:9"],
    "resolution": ["480P", "720P", "1080P"],
}


@dataclass
class _Reading:
    """What a `/settings k=v …` message asks for: accepted changes and rejected items with reasons."""

    changes: dict[str, Any] = field(default_factory=dict)
    saved: list[str] = field(default_factory=list)  # "duration=10" as typed
    rejected: list[tuple[str, str]] = field(default_factory=list)  # ("foo=bar", reason text)


def wants_reset(args: Mapping[str, str]) -> bool:
    """`/settings reset` (also 重置 / 清除), however the adapter handed it over: as a key or a value."""
    words = {str(k).strip().lower() for k in args} | {str(v).strip().lower() for v in args.values()}
    return bool(words & RESET_WORDS) and not any(_KEYS.get(str(k).strip().lower()) for k in args)


async def settings(
    d: Dispatcher, key: str, origin_platform: str, chat_id: str, args: Mapping[str, str], locale: str
) -> Notice:
    """The reply to `/settings`: one message with what changed, what was refused and why, then every
    default now in effect."""
    t = d.texts
    head: list[str] = []
    refused = all_refused = False
    if wants_reset(args):
        cleared = dict.fromkeys(("duration", "aspect_ratio", "resolution", "locale"))
        prefs = await d.store.set_prefs(key, models=None, **cleared)
        head.append(t("commands.reset_done", locale))
    else:
        current = await d.store.get_prefs(key)
        reading = await _read(d, current, args, locale)
        prefs = await d.store.set_prefs(key, **reading.changes) if reading.changes else current
        if reading.changes:
            locale = prefs.locale or locale
            head.append(t("commands.saved", locale, fields=", ".join(reading.saved)))
        for item, reason in reading.rejected:
            head.append(t("commands.rejected", locale, item=item, reason=reason))
        if reading.rejected and not reading.changes:
            head.append(t("commands.nothing_saved", locale))
        refused = bool(reading.rejected)
        all_refused = refused and not reading.changes
    chat = await d.store.get_chat_defaults(origin_platform, chat_id)
    lines = [*head, *_in_effect(d, prefs, chat, locale)]
    if not args or refused:
        lines.append(t("commands.usage", locale))
    kind = NoticeKind.ERROR if all_refused else NoticeKind.INFO
    return Notice(kind, t("commands.settings_title", locale), tuple(lines), locale=locale)


def _in_effect(d: Dispatcher, user: UserPrefs, chat: UserPrefs, locale: str) -> list[str]:
    """One line per setting: the value the next video uses and whose setting it is."""
    t, s = d.texts, d.settings
    src = {n: t(f"commands.source_{n}", locale) for n in ("user", "chat", "bot", "model")}

    def pick(name: str, bot_value: Any) -> tuple[Any, str]:
        for prefs, where in ((user, "user"), (chat, "chat")):
            value = prefs.model_for(TaskType.TEXT_TO_VIDEO) if name == "model" else getattr(prefs, name)
            if value:
                return value, src[where]
        return (bot_value, src["bot"]) if bot_value else (None, src["model"])

    out = []
    for name in FIELDS:
        value, source = pick(
            name,
            {
                "model": s.default_model,
                "duration": s.default_duration,
                "aspect_ratio": s.default_aspect_ratio,
                "resolution": s.default_resolution,
                "locale": None,
            }[name],
        )
        if name == "model":
            shown = notices.model_name(t, ModelId(value), locale)
        elif value is None:
            shown = t("commands.language_auto" if name == "locale" else "commands.model_default", locale)
            source = t("commands.source_auto", locale) if name == "locale" else source
        elif name == "duration":
            shown = t("unit.seconds", locale, n=value)
        elif name == "locale":
            shown = t(f"language.{value}", locale)
        else:
            shown = str(value).upper() if name == "resolution" else str(value)
        out.append(
            t("commands.settings_line", locale, field=t(f"field.{name}", locale), value=shown, source=source)
        )
    return out


async def _read(d: Dispatcher, current: UserPrefs, args: Mapping[str, str], locale: str) -> _Reading:
    t = d.texts
    r = _Reading()
    raw = {str(k).strip(): str(v).strip() for k, v in args.items()}
    model = current.model_for(TaskType.TEXT_TO_VIDEO) or d.settings.default_model
    model_arg = next((v for k, v in raw.items() if _KEYS.get(k.lower()) == "model"), None)
    if model_arg is not None and model_arg.lower() not in _CLEAR:
        try:
            model = normalize_model_id(model_arg)
        except ImaUsageError:
            pass
    for typed_key, value in raw.items():
        name = _KEYS.get(typed_key.lower())
        item = echo(f"{typed_key}={value}" if value else typed_key)  # cleaned and capped: it is echoed back
        if name is None:
            r.rejected.append((item, t("commands.reject_key", locale)))
            continue
        if value.lower() in _CLEAR:
            r.changes.update({"models": None} if name == "model" else {name: None})
            r.saved.append(item)
            continue
        try:
            change = await _value(d, name, value, model, locale)
        except _Rejected as exc:
            r.rejected.append((item, exc.reason))
            continue
        r.changes.update(change)
        r.saved.append(item)
    return r


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _value(d: Dispatcher, name: str, value: str, model: ModelId, locale: str) -> dict[str, Any]:
    """The store change for one accepted value. Raises _Rejected with the reason in the user's words."""
    t = d.texts
    if name == "model":
        try:
            chosen = normalize_model_id(value)
        except ImaUsageError:
            raise _Rejected(t("commands.reject_model", locale)) from None
        return {"models": dict.fromkeys(TaskType, chosen)}
    if name == "locale":
        low = value.lower()
        if low.startswith("zh") or value in ("中文", "汉语", "chinese"):
            return {"locale": "zh"}
        if low.startswith("en") or value in ("英文", "英语"):
            return {"locale": "en"}
        raise _Rejected(t("commands.reject_language", locale))
    offered = await _offered(d, model, name)
    if name == "duration":
        digits = value.lower().rstrip("s秒 ").strip()
        # isdecimal, not isdigit: int("²") raises; and a 5,000-digit number is no duration (int() refuses it)
        if not digits.isdecimal() or len(digits) > 4 or int(digits) <= 0:
            raise _Rejected(t("commands.reject_duration_number", locale))
        seconds = int(digits)
        if offered and seconds not in {int(v) for v in offered if str(v).isdigit()}:
            raise _Rejected(
                t(
                    "commands.reject_duration",
                    locale,
                    value=seconds,
                    offered=", ".join(str(v) for v in offered),
                )
            )
        return {"duration": seconds}
    if name == "aspect_ratio":
        m = _RATIO.match(value)
        ratio = f"{int(m.group(1))}:{int(m.group(2))}" if m else ""
        choices = offered or _FALLBACK["aspect_ratio"]
        if ratio not in {str(v) for v in choices}:
            raise _Rejected(t("commands.reject_aspect_ratio", locale, offered=", ".join(map(str, choices))))
        return {"aspect_ratio": ratio}
    res = value.upper()
    choices = [str(v).upper() for v in (offered or _FALLBACK["resolution"])]
    if res not in choices:
        raise _Rejected(t("commands.reject_resolution", locale, offered=", ".join(choices)))
    return {"resolution": res}


async def _offered(d: Dispatcher, model: ModelId, name: str) -> list[Any]:
    """What the model offers for a setting (text to video), from the cached catalog; [] when IMA cannot
    be asked (then any well-formed value is kept, and the next video uses the nearest offered one)."""
    try:
        product = await d.runner.client.fetch_product(TaskType.TEXT_TO_VIDEO, model)
    except ImaError as exc:
        log.info("settings: catalog not available (%s); values kept unchecked", exc.key)
        return []
    return list(offered_values(product, name))
