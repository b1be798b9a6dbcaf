"""Slips in parameter words ("landscpae", "potrait") as weak candidates: rapidfuzz finds the word meant."""

from __future__ import annotations

import re

from rapidfuzz import fuzz, process

from .matcher import Match, framed
from .tables import Tables

_WORD = re.compile(r"(?<![a-z0-9])[a-z]{3,20}(?![a-z0-9])")
MAX_WORDS = 64  # latin words looked at per message (a real message has far fewer unknown ones)


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
    for i, m in enumerate(_WORD.finditer(norm)):
        if i >= MAX_WORDS:
            break
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
