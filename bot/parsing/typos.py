"""Slips in parameter words ("landscpae", "potrait") as weak candidates: rapidfuzz finds the word meant."""

from __future__ import annotations

import re

from rapidfuzz import fuzz, process

from .matcher import Match, framed, windows
from .tables import Tables

_WORD = re.compile(r"(?<![a-z0-9])[a-z]{3,20}(?![a-z0-9])")
MAX_WORDS = 64  # latin words looked at per message, half at each end (a real message has far fewer)


def typo_candidates(
    tables: Tables, norm: str, blocked: list[tuple[int, int]], found: list[Match]
) -> list[Match]:
    """A weak candidate for each latin word no rule matched that is a slip of a `typos` word; its values
    carry "_typo": (the word as typed, the word meant) for note.typo."""
    if not tables.typos:
        return []
    covered = bytearray(len(norm))
    for s, e in [*blocked, *((c.core_start, c.core_end) for c in found)]:
        covered[s:e] = b"\x01" * (e - s)
    words = list(tables.typos)
    out: list[Match] = []
    seen = [m for lo, hi in windows(norm) for m in _WORD.finditer(norm, lo, hi)]
    if len(seen) > MAX_WORDS:  # settings come first or last: keep the words at both ends
        seen = seen[: MAX_WORDS // 2] + seen[-(MAX_WORDS // 2) :]
    for m in seen:
        word, (s, e) = m.group(), m.span()
        if len(word) < tables.typo_min_length or word in tables.typos or any(covered[s:e]):
            continue
        got = process.extractOne(word, words, scorer=fuzz.ratio, score_cutoff=tables.typo_cutoff)
        if got is None:
            continue
        rule = tables.typos[got[0]]
        fr = tables.fields[rule.field]
        values = {rule.field: rule.value, "_typo": (word, got[0])}
        out.append(framed(fr, norm, Match(rule.field, s, e, s, e, values, rule)))
    return out
