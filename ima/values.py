"""Pure value scoring and fitting: which offered value is "nearest" to what was asked."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from .catalog import norm_key, norm_value, same_value

_RESOLUTION_WORDS = {"sd": 480, "hd": 720, "fhd": 1080, "full hd": 1080, "qhd": 1440, "uhd": 2160}
_K_HEIGHT = {1: 1080, 2: 1440}  # "nK" is n × 540 px high otherwise (4K 2160, 8K 4320)
_AUTO_WORDS = frozenset({"auto", "adaptive"})
_TRUE = frozenset({"true", "on", "yes", "1", "enabled"})
_FALSE = frozenset({"false", "off", "no", "0", "disabled"})


def _number(text: str) -> float | None:
    match = re.search(r"\d+(?:\.\d+)?", text)
    return float(match.group()) if match else None


def value_score(field: str, value: Any) -> float | None:
    """A number that orders values of `field` for "nearest": pixel height for resolutions, seconds for
    durations, log(width/height) for aspect ratios, the number itself otherwise. None if unparsable."""
    if isinstance(value, bool):
        return None
    text = str(value).strip().lower().replace("×", "x").replace("*", "x")
    key = norm_key(field)
    if key in {"resolution", "quality", "size"}:
        if text in _RESOLUTION_WORDS:
            return float(_RESOLUTION_WORDS[text])
        if m := re.fullmatch(r"(\d+)\s*x\s*(\d+)", text):
            return float(min(int(m.group(1)), int(m.group(2))))
        if m := re.fullmatch(r"(\d+)\s*k", text):
            return float(_K_HEIGHT.get(int(m.group(1)), int(m.group(1)) * 540))
        if m := re.fullmatch(r"(\d+)\s*[pi]?", text):
            return float(m.group(1))
        return None
    if key == "aspect_ratio":
        if m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*[:/x]\s*(\d+(?:\.\d+)?)", text):
            w, h = float(m.group(1)), float(m.group(2))
            return math.log(w / h) if w > 0 and h > 0 else None
        return None
    if isinstance(value, int | float):
        return float(value)
    return _number(text) if re.fullmatch(r"\d+(?:\.\d+)?\s*[a-z秒]*", text) else None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = norm_value(value)
    return True if text in _TRUE else False if text in _FALSE else None


def fit_value(field: str, value: Any, offered: Sequence[Any], default: Any = None) -> Any:
    """The offered value (its own spelling and type) equal to `value` case-insensitively, else the
    nearest offered one, else `default` when nothing is comparable. With nothing offered, `value` itself
    (a bool-ish string becomes a bool when the default is a bool)."""
    if not offered:
        if isinstance(default, bool) and not isinstance(value, bool) and _as_bool(value) is not None:
            return _as_bool(value)
        return value
    for option in offered:
        if same_value(option, value):
            return option
    flag = _as_bool(value)
    if flag is not None:
        for option in offered:
            if isinstance(option, bool) and option is flag:
                return option
    if norm_value(value) in _AUTO_WORDS:
        for option in offered:
            if norm_value(option) in _AUTO_WORDS:
                return option
    wanted = value_score(field, value)
    scored = [(value_score(field, o), i, o) for i, o in enumerate(offered)]
    scored = [(s, i, o) for s, i, o in scored if s is not None]
    if wanted is not None and scored:
        # Ties go to the default, else to the lower value: cheaper and more likely to be accepted.
        return min(scored, key=lambda t: (abs(t[0] - wanted), not same_value(t[2], default), t[0], t[1]))[2]
    if default is not None and any(same_value(default, o) for o in offered):
        return next(o for o in offered if same_value(default, o))
    return offered[0]


def distance(field: str, wanted: Any, got: Any) -> float:
    """How far `got` is from `wanted` by the field's score: 0 for the same value, infinity when either
    is missing or has no score (so any scored neighbour is nearer than an unscored one)."""
    if got is None or wanted is None:
        return math.inf
    if same_value(wanted, got):
        return 0.0
    a, b = value_score(field, wanted), value_score(field, got)
    return math.inf if a is None or b is None else abs(a - b)
