"""Finds parameter phrases in a folded message and picks the non-overlapping set that counts."""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .entries import Rule
from .tables import FieldRules, Tables
from .values import convert

_WINDOW = 32  # how far back a frame or glue word may start
_WS = re.compile(r"\s*")
# A long message is searched for parameters only near its ends: people say settings before or after a long
# description, and searching all of it would make the cost grow with its length (bench/hostile_parse.py).
LONG_TEXT = 800
EDGE = 400  # characters searched at each end of a long message
MAX_REPEATS = 8  # on a long message, matches of one rule kept at each end of a window ("10秒 10秒 …" floods)


_WIDE = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: ord(" ")}


def fold(text: str) -> str:
    """Lower-cases and folds full-width ASCII, one character for one, so spans map back to the text."""
    quick = text.translate(_WIDE).lower()
    if len(quick) == len(text):
        return quick  # no character lower-cased into two (the usual case): the same as the loop below
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            ch = chr(code - 0xFEE0)
        elif code == 0x3000:
            ch = " "
        low = ch.lower()
        out.append(low if len(low) == 1 else ch)
    return "".join(out)


def script(ch: str) -> str:
    """The script class of a character: latin (ASCII letters, digits), cjk, or other (spaces, punctuation,
    emoji). Callers skip spaces before they ask, so spaces need no class of their own."""
    if ch.isascii() and ch.isalnum():
        return "latin"
    if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff":
        return "cjk"
    return "other"


@dataclass(frozen=True)
class Match:
    """One parameter phrase that counts: the span to remove and what it means."""

    field: str
    start: int  # removed span (frames and glue included)
    end: int
    core_start: int  # the parameter words themselves
    core_end: int
    values: Mapping[str, Any]  # field → value; keys starting with "_" carry details for notes
    rule: Rule
    framed_before: bool = False
    framed_after: bool = False

    @property
    def length(self) -> int:
        return self.end - self.start


class Spans:
    """Non-overlapping spans, sorted, with O(log n) overlap tests and lookups by start and end."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.by_start: dict[int, tuple[int, str]] = {}
        self.by_end: dict[int, tuple[int, str]] = {}

    def add(self, s: int, e: int, field: str) -> None:
        i = bisect.bisect_left(self.starts, s)
        self.starts.insert(i, s)
        self.ends.insert(i, e)
        self.by_start[s] = (e, field)
        self.by_end[e] = (s, field)

    def overlaps(self, s: int, e: int) -> bool:
        # Sorted and disjoint, so the span starting last before e has the largest end among those.
        i = bisect.bisect_left(self.starts, e)
        return s < e and i > 0 and self.ends[i - 1] > s

    @classmethod
    def of(cls, spans: list[tuple[int, int]]) -> Spans:
        out = cls()
        for s, e in spans:
            if e > s and not out.overlaps(s, e):
                out.add(s, e, "")
        return out


def prefix_spans(tables: Tables, norm: str) -> list[tuple[int, int]]:
    """The command prefix and mentions at the start, and mentions anywhere, as sorted spans."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while pos < len(norm):
        p = _WS.match(norm, pos).end()
        m = tables.prefix.match(norm, p)
        if m is None or m.end() == p:
            break
        end = m.end()
        while end > p and norm[end - 1].isspace():
            end -= 1  # the span is the prefix itself: a run of parameters may start right after it
        spans.append((p, end))
        pos = m.end()
    taken = Spans.of(spans)
    for m in tables.mentions.finditer(norm):
        if m.end() > m.start() and not taken.overlaps(*m.span()):
            taken.add(*m.span(), "")
            spans.append(m.span())
    return sorted(spans)


def windows(norm: str) -> tuple[tuple[int, int], ...]:
    """Where parameters are looked for: the whole text, or the first and last EDGE characters of a long one."""
    n = len(norm)
    return ((0, n),) if n <= LONG_TEXT else ((0, EDGE), (n - EDGE, n))


def candidates(
    tables: Tables,
    norm: str,
    blocked: list[tuple[int, int]],
    fields: tuple[str, ...],
    *,
    explicit_roles: bool = False,
) -> list[Match]:
    """Every match of every rule of the given fields within windows(norm), with its frames, minus denied
    contexts; with explicit_roles, only the role phrases that plainly speak of an image (no image came)."""
    taken = Spans.of(blocked)
    out: list[Match] = []
    spans = windows(norm)
    # "\0" joins the windows: no hint holds it, so a hint is found only inside a window.
    hay = "\0".join(norm[lo:hi] for lo, hi in spans)
    for field in fields:
        fr = tables.fields[field]
        for rule in fr.rules:
            if rule.hints and not any(h in hay for h in rule.hints):
                continue  # cheaper than the regex search it spares
            if explicit_roles and field == "role" and not rule.explicit:
                continue
            for lo, hi in spans:
                out += _found(tables, fr, rule, norm, taken, lo, hi)
    return out


def _found(t: Tables, fr: FieldRules, rule: Rule, norm: str, taken: Spans, lo: int, hi: int) -> list[Match]:
    """The rule's matches between lo and hi, framed (and negated) where the field says so."""
    out: list[Match] = []
    found = list(rule.regex.finditer(norm, lo, hi))
    if len(norm) > LONG_TEXT and len(found) > 2 * MAX_REPEATS:  # the first and last said count
        found = found[:MAX_REPEATS] + found[-MAX_REPEATS:]
    for m in found:
        cs, ce = m.span()
        # A match ending at a window's inner edge may be the first half of a longer word ("portrait|s").
        if ce == cs or (ce == hi < len(norm)) or taken.overlaps(cs, ce):
            continue
        if fr.deny_before and fr.deny_before.search(norm, max(0, cs - _WINDOW), cs):
            continue
        if fr.deny_after and fr.deny_after.match(norm, ce):
            continue
        values = convert(rule, m, t.numbers)
        if values is None:
            continue
        out.append(
            _negated(
                t, norm, taken, _framed(fr, norm, taken, Match(rule.field, cs, ce, cs, ce, values, rule))
            )
        )
    return out


def framed(fr: FieldRules, norm: str, c: Match, taken: Spans | None = None) -> Match:
    """c widened by the field's frames around it (those not overlapping taken)."""
    return _framed(fr, norm, taken or Spans(), c)


def _framed(fr: FieldRules, norm: str, taken: Spans, c: Match) -> Match:
    s, e = c.start, c.end
    b = fr.before.search(norm, max(0, s - _WINDOW), s) if fr.before else None
    a = fr.after.match(norm, e) if fr.after else None
    if b is not None and (b.end() == b.start() or taken.overlaps(b.start(), s)):
        b = None
    if a is not None and (a.end() == a.start() or taken.overlaps(e, a.end())):
        a = None
    cued = a is not None or bool(fr.cue and fr.cue.match(norm, e))
    # Built directly: dataclasses.replace costs more than the searches above on a long message.
    return Match(
        c.field,
        b.start() if b else s,
        a.end() if a else e,
        c.core_start,
        c.core_end,
        c.values,
        c.rule,
        framed_before=b is not None,
        framed_after=cued,
    )


def _negated(t: Tables, norm: str, taken: Spans, c: Match) -> Match:
    """A parameter said in the negative ("不要竖屏", "not vertical", "不要参考图") is cut out but sets nothing."""
    for end in (c.start, c.core_start):  # "不要" may overlap a frame ("要" of "要竖屏")
        n = t.negation.search(norm, max(0, end - 12), end)
        if n is not None and n.end() > n.start() and not taken.overlaps(n.start(), end):
            return replace(c, start=min(n.start(), c.start), values={}, framed_before=True)  # says nothing
    return c
