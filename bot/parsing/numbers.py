"""Numbers as people type them: digits, Chinese numerals (五, 十五, 两) and English words (ten, twenty-five)."""

from __future__ import annotations

import re
from collections.abc import Mapping

CN_DIGITS: Mapping[str, int] = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
CN_UNITS: Mapping[str, int] = {"十": 10, "百": 100, "千": 1000}
CN_CHARS = "".join(CN_DIGITS) + "".join(CN_UNITS)

_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_EN_SPLIT = re.compile(r"[\s\-]+")


def cn_to_int(token: str) -> int | None:
    """Returns the value of a Chinese numeral ("十五" → 15, "两" → 2, "一百零五" → 105), None if malformed."""
    if not token or any(ch not in CN_DIGITS and ch not in CN_UNITS for ch in token):
        return None
    total = 0
    digit: int | None = None
    last_unit = 10**9
    for ch in token:
        if ch in CN_DIGITS:
            if digit not in (None, 0):
                return None  # "五五" is not a numeral
            digit = CN_DIGITS[ch]
        else:
            unit = CN_UNITS[ch]
            if unit >= last_unit:
                return None  # "十百"
            total += (1 if digit is None else digit) * unit
            digit = None
            last_unit = unit
    return total + (digit or 0)


def en_to_int(token: str, words: Mapping[str, int]) -> int | None:
    """Returns the value of English number words ("ten", "twenty five", "twenty-five"), None otherwise."""
    parts = [p for p in _EN_SPLIT.split(token.strip().lower()) if p]
    if not parts or any(p not in words for p in parts):
        return None
    if len(parts) == 1:
        return words[parts[0]]
    tens, unit = words[parts[0]], words[parts[1]]
    if len(parts) == 2 and tens >= 20 and tens % 10 == 0 and 0 < unit < 10:
        return tens + unit
    return None


def to_number(token: str, words: Mapping[str, int]) -> float | None:
    """Returns the value of a number token in any of the three spellings, None when it is not one."""
    token = token.strip()
    if _DIGITS.fullmatch(token):
        return float(token)
    value = cn_to_int(token)
    if value is None:
        value = en_to_int(token, words)
    return None if value is None else float(value)


def number_pattern(words: Mapping[str, int]) -> str:
    """The regex (no groups) for one number token: digits, a Chinese numeral, or English words."""
    units = sorted((w for w, v in words.items() if 0 < v < 10), key=len, reverse=True)
    tens = sorted((w for w, v in words.items() if v >= 20 and v % 10 == 0), key=len, reverse=True)
    every = sorted(words, key=len, reverse=True)
    en = (
        rf"(?<![a-z])(?:(?:{'|'.join(tens)})[\s\-]?(?:{'|'.join(units)})|{'|'.join(every)})(?![a-z])"
        if words
        else r"(?!x)x"
    )
    # Anchored at the start of a digit or numeral run and bounded, so long runs cannot make it backtrack.
    return rf"(?:(?<![\d.])\d{{1,6}}(?:\.\d{{1,3}})?(?![\d.])|(?<![{CN_CHARS}])[{CN_CHARS}]{{1,8}}(?![{CN_CHARS}])|{en})"
