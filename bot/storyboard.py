"""Storyboards: a message with numbered shots becomes the shots' prompts. Pure.

    分镜：1. 小狗在草地上奔跑 2. 小狗跳进河里 3. 小狗甩干身上的水
    shots: 1) a paper boat on a rainy street 2) it drifts into a drain
    竖屏 10秒 storyboard
    Shot 1: …
    Shot 2: …

The words before the first shot (and around the storyboard keyword) are the header: settings said there
(竖屏, 10秒, pro) apply to every shot. Shots are numbered 1, 2, 3… in order; a number out of sequence is
text ("2.5 m", "3) of them"), so a prompt that happens to contain digits is never cut apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

# 分镜 / 分镜头 / 镜头脚本 / storyboard / shot list / shots, followed by a colon (or a line break).
_KEYWORD = re.compile(
    r"(?:分镜头?(?:脚本)?|镜头脚本|多镜头|storyboard|shot\s*list|shots)\s*(?:[:：]|\n)", re.IGNORECASE
)
_NAMED = re.compile(r"\s*(?:shot|scene|镜头|分镜|场景|第)", re.IGNORECASE)
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_CN_DIGITS = "一二三四五六七八九十"
# What may stand right before a shot marker: the start, a space, a line break, or closing punctuation.
_BEFORE = r"(?:(?<=^)|(?<=[\s:：;；,，.。!！?？、]))"


@cache
def _marker(n: int) -> re.Pattern[str]:
    """The ways shot n may be marked: "1." "1)" "1、" "1：" "(1)" "（1）" "①" "Shot 1:" "镜头1：" "第1镜"."""
    num = rf"(?:{n}|{_CN_DIGITS[n - 1]})" if n <= len(_CN_DIGITS) else str(n)
    circled = re.escape(_CIRCLED[n - 1]) if n <= len(_CIRCLED) else "(?!)"
    guarded = [  # these need a space, a line start or punctuation before them ("2.5" is no marker)
        rf"{n}\s*(?:\.(?!\d)|[)）、:：])",
        rf"(?:shot|scene)\s*{n}\s*[:：.)\-–—]?",
        rf"(?:镜头|分镜|场景)\s*{num}\s*[:：.、)）]?",
        rf"第\s*{num}\s*(?:个)?(?:镜头?|幕|场)\s*[:：.、]?",
    ]
    free = [rf"[(（]\s*{n}\s*[)）]", circled]  # brackets and circled digits mark a shot anywhere
    # No leading \s*: an unanchored search would retry it at every blank of a long run (quadratic).
    pattern = rf"(?:{_BEFORE}(?:{'|'.join(guarded)})|(?:{'|'.join(free)}))\s*"
    return re.compile(pattern, re.IGNORECASE)


@dataclass(frozen=True)
class Storyboard:
    header: str  # the text outside the shots (settings for every shot), keyword removed
    shots: tuple[str, ...]  # each shot's own words, in order


def parse_storyboard(text: str) -> Storyboard | None:
    """The storyboard text describes, or None when it is not one.

    A storyboard has at least two shots numbered from 1 in sequence, and either a storyboard keyword
    (分镜：, shots:, storyboard:) or each shot on a line of its own. Never raises.
    """
    keyword = _KEYWORD.search(text)
    start = keyword.end() if keyword else 0
    spans: list[tuple[int, int]] = []  # (marker start, text start) of shot 1, 2, …
    pos = start
    for n in range(1, 100):
        m = _marker(n).search(text, pos)
        if m is None:
            break
        spans.append((m.start(), m.end()))
        pos = m.end()
    if len(spans) < 2:
        return None
    if keyword is None and not all(_line_start(text, s) or _named(text[s:b]) for s, b in spans):
        return None  # without a keyword: one shot per line, or shots named as such ("Shot 1:", "镜头1：")
    shots = tuple(
        _clean(text[body : spans[i + 1][0] if i + 1 < len(spans) else len(text)])
        for i, (_, body) in enumerate(spans)
    )
    if not all(shots):
        return None
    before = (
        text[: keyword.start()] + " " + text[keyword.end() : spans[0][0]] if keyword else text[: spans[0][0]]
    )
    return Storyboard(header=_clean(before), shots=shots)


def _named(marker: str) -> bool:
    return bool(_NAMED.match(marker))


def _line_start(text: str, at: int) -> bool:
    line = text.rfind("\n", 0, at) + 1
    return not text[line:at].strip()


def _clean(part: str) -> str:
    return " ".join(part.split()).strip(" ,，;；、")


__all__ = ["Storyboard", "parse_storyboard"]
