"""Finds parameter phrases in a folded message and picks the non-overlapping set that counts."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .numbers import to_number
from .tables import FieldRules, Rule, Tables

MAX_SECONDS = 600
_PIXELS = {144: "144P", 240: "240P", 360: "360P", 480: "480P", 540: "540P", 576: "576P", 720: "720P",
           1080: "1080P", 1440: "1440P", 2160: "4K", 4320: "8K"}  # fmt: skip
_KNOWN_RATIOS = ((16, 9), (9, 16), (1, 1), (4, 3), (3, 4), (21, 9), (9, 21), (3, 2), (2, 3), (4, 5), (5, 4))
_WINDOW = 32  # how far back a frame or glue word may start
_WS = re.compile(r"\s*")
_ARTICLE = re.compile(r"(?<![a-z0-9])(?:a|an|the|this|that|his|her|my|your|our|their|its|of)\s*\Z")


def fold(text: str) -> str:
    """Lower-cases and folds full-width ASCII, one character for one, so spans map back to the text."""
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
    """"latin" for ASCII letters/digits, "cjk" for Chinese, "space", or "other" (punctuation, emoji)."""
    if ch.isascii() and ch.isalnum():
        return "latin"
    if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff":
        return "cjk"
    return "space" if ch.isspace() else "other"


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


def prefix_spans(tables: Tables, norm: str) -> list[tuple[int, int]]:
    """The command prefix and mentions at the start, and mentions anywhere, as sorted spans."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while pos < len(norm):
        p = _WS.match(norm, pos).end()
        m = tables.prefix.match(norm, p)
        if m is None or m.end() == p:
            break
        spans.append((p, m.end()))
        pos = m.end()
    for m in tables.mentions.finditer(norm):
        if m.end() > m.start() and not any(s < m.end() and m.start() < e for s, e in spans):
            spans.append(m.span())
    return sorted(spans)


def _fmt(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def _ratio(a: float, b: float) -> str | None:
    # As typed: "21:9" stays 21:9 (reducing would give 7:3), the resolver compares ratios numerically.
    return f"{_fmt(a)}:{_fmt(b)}" if a > 0 and b > 0 else None


def _size(w: int, h: int) -> dict[str, Any] | None:
    if not (100 <= w <= 8192 and 100 <= h <= 8192):
        return None
    g = math.gcd(w, h)
    a, b = w // g, h // g
    if max(a, b) > 32:
        near = min(_KNOWN_RATIOS, key=lambda r: abs(r[0] / r[1] - w / h))
        a, b = near if abs(near[0] / near[1] - w / h) <= 0.03 * (w / h) else (0, 0)
    out: dict[str, Any] = {}
    if a and b:
        out["aspect_ratio"] = f"{a}:{b}"
    if min(w, h) in _PIXELS:
        out["resolution"] = _PIXELS[min(w, h)]
    return out or None


def convert(rule: Rule, m: re.Match[str], numbers: Mapping[str, int]) -> dict[str, Any] | None:
    """What a match means as {field: value}, or None when it is no valid value after all."""
    g = m.groupdict()
    kind, field = rule.convert, rule.field
    if kind == "fixed":
        return {field: rule.value}
    if kind == "unknown":
        return {"_unknown": m.group("name").strip()}
    if kind in ("seconds", "minsec", "range"):
        if kind == "minsec":
            mins, secs = to_number(g["m"], numbers), to_number(g["s"], numbers)
            total = None if mins is None or secs is None or secs >= 60 else mins * 60 + secs
        else:
            total = to_number(g["n"], numbers)
            total = None if total is None else total * rule.scale
        if total is None or not 1 <= int(total + 0.5) <= MAX_SECONDS:
            return None
        if kind != "range":
            return {field: int(total + 0.5)}
        low, high = total, to_number(g["n2"], numbers)
        if high is None or not low < high <= MAX_SECONDS:
            return None
        return {field: int(high + 0.5), "_range": (_fmt(low), _fmt(high))}
    if kind == "ratio":
        a, b = to_number(g["a"], numbers), to_number(g["b"], numbers)
        value = None if a is None or b is None else _ratio(a, b)
        if value is None or (rule.only and value not in rule.only):
            return None
        return {field: value}
    if kind == "size":
        return _size(int(g["w"]), int(g["h"]))
    if g.get("p"):
        value = _PIXELS.get(int(g["p"]))
    else:
        k = int(g["k"])
        value = f"{k}K" if k in (2, 4, 5, 6, 8) else None
    return {field: value} if value else None


def _blocked(spans: list[tuple[int, int]], s: int, e: int) -> bool:
    return any(a < e and s < b for a, b in spans)


def candidates(tables: Tables, norm: str, blocked: list[tuple[int, int]], fields: tuple[str, ...]) -> list[Match]:
    """Every match of every rule of the given fields, with its frames, minus denied contexts."""
    out: list[Match] = []
    for field in fields:
        fr = tables.fields[field]
        for rule in fr.rules:
            for m in rule.regex.finditer(norm):
                cs, ce = m.span()
                if ce == cs or _blocked(blocked, cs, ce):
                    continue
                if fr.deny_before and fr.deny_before.search(norm, max(0, cs - _WINDOW), cs):
                    continue
                if fr.deny_after and fr.deny_after.match(norm, ce):
                    continue
                values = convert(rule, m, tables.numbers)
                if values is None:
                    continue
                out.append(_framed(fr, norm, blocked, Match(field, cs, ce, cs, ce, values, rule)))
    return out


def _framed(fr: FieldRules, norm: str, blocked: list[tuple[int, int]], c: Match) -> Match:
    s, e = c.start, c.end
    b = fr.before.search(norm, max(0, s - _WINDOW), s) if fr.before else None
    a = fr.after.match(norm, e) if fr.after else None
    if b is not None and (b.end() == b.start() or _blocked(blocked, b.start(), s)):
        b = None
    if a is not None and (a.end() == a.start() or _blocked(blocked, e, a.end())):
        a = None
    cued = a is not None or bool(fr.cue and fr.cue.match(norm, e))
    return replace(c, start=b.start() if b else s, end=a.end() if a else e,
                   framed_before=b is not None, framed_after=cued)  # fmt: skip


class _Picker:
    """Greedy longest-first choice of non-overlapping matches; weak words need context (see phrases.yaml)."""

    def __init__(self, tables: Tables, norm: str, blocked: list[tuple[int, int]]) -> None:
        self.t, self.norm = tables, norm
        self.spans: list[tuple[int, int, str]] = [(s, e, "") for s, e in blocked]
        self.chosen: list[Match] = []

    def _fits(self, c: Match) -> Match | None:
        """c, or c without the frames that overlap what is already chosen, or None."""
        taken = [(s, e) for s, e, _ in self.spans]
        if _blocked(taken, c.core_start, c.core_end):
            return None
        if c.framed_before and _blocked(taken, c.start, c.core_start):
            c = replace(c, start=c.core_start, framed_before=False)
        if c.end > c.core_end and _blocked(taken, c.core_end, c.end):
            c = replace(c, end=c.core_end, framed_after=False)
        return c

    def _side_ok(self, pos: int, first: str, left: bool, field: str) -> tuple[bool, bool]:
        """(isolated on that side, touching a chosen span of the same field)."""
        n, j = self.norm, pos
        if left:
            while j > 0 and n[j - 1].isspace():
                j -= 1
        else:
            while j < len(n) and n[j].isspace():
                j += 1
        for s, e, f in self.spans:
            if (left and e == j) or (not left and s == j):
                return True, (f == field and j == pos)
        if (left and j == 0) or (not left and j == len(n)):
            return True, False
        ch = n[j - 1] if left else n[j]
        if ch in self.t.boundaries or script(ch) == "other":
            return True, False
        if j != pos and script(first) == "cjk":
            return True, False  # Chinese does not space its words: a space separates
        if {script(ch), script(first)} == {"latin", "cjk"}:
            return True, False
        if not left and self.t.closers.match(n, j):
            return True, False
        return False, False

    def _run(self, c: Match, pending: list[Match]) -> bool:
        """Whether c sits in a block of parameters (chosen, or weak ones still pending) separated only by
        spaces and punctuation that reaches the start or the end of the text and holds a chosen one."""
        n = self.norm
        spans = [(s, e, True) for s, e, _ in self.spans] + [(p.start, p.end, False) for p in pending]
        has_chosen, ends = False, []
        for forward in (True, False):
            j = c.end if forward else c.start
            while True:
                while 0 < j < len(n) and (n[j if forward else j - 1].isspace() or n[j if forward else j - 1] in
                                         self.t.boundaries):  # fmt: skip
                    j += 1 if forward else -1
                if j == (len(n) if forward else 0):
                    ends.append(True)
                    break
                nxt = [(e if forward else s, chosen) for s, e, chosen in spans if (s if forward else e) == j]
                if not nxt:
                    ends.append(False)
                    break
                j, chosen = nxt[0]
                has_chosen = has_chosen or chosen
            if not forward and _ARTICLE.search(n, 0, j):
                return False  # "a portrait 10s": the article ties the word to the prompt
        return has_chosen and any(ends)

    def qualifies(self, c: Match, pending: list[Match]) -> bool:
        if not c.rule.weak or c.framed_after:
            return True
        core = self.norm[c.core_start : c.core_end]
        left, l_same = self._side_ok(c.start, core[0], True, c.field)
        right, r_same = self._side_ok(c.end, core[-1], False, c.field)
        if l_same or r_same or right and (left or c.framed_before):
            return True
        # A latin word in the block of parameters closing (or opening) the message counts too:
        # "a robot dancing in the rain portrait 10s", "a cat 5s landscape pro".
        return script(core[0]) == "latin" and self._run(c, [p for p in pending if p is not c])

    def take(self, c: Match) -> None:
        self.chosen.append(c)
        self.spans.append((c.start, c.end, c.field))

    def pick(self, cands: list[Match]) -> list[Match]:
        order = sorted(cands, key=lambda c: (-c.length, -c.rule.priority, c.start))
        # Unknown model names go last: any known reading of the same words wins.
        unknown = [c for c in order if c.rule.convert == "unknown"]
        order = [c for c in order if c.rule.convert != "unknown"]
        for c in order:
            if not c.rule.weak or c.framed_after:
                fitted = self._fits(c)
                if fitted is not None:
                    self.take(fitted)
        pending = [c for c in order if c.rule.weak and not c.framed_after]
        changed = True
        while changed and pending:
            changed = False
            for c in list(pending):
                fitted = self._fits(c)
                if fitted is None:
                    pending.remove(c)
                elif self.qualifies(fitted, pending):
                    self.take(fitted)
                    pending.remove(c)
                    changed = True
        for c in unknown:
            fitted = self._fits(c)
            if fitted is not None and fitted.start == c.start:
                self.take(fitted)
        return sorted(self.chosen, key=lambda c: c.start)


def pick(tables: Tables, norm: str, blocked: list[tuple[int, int]], cands: list[Match]) -> list[Match]:
    """The matches that count, sorted by position, each widened by the glue words around it."""
    chosen = _Picker(tables, norm, blocked).pick(cands)
    edges = sorted([*blocked, *((c.start, c.end) for c in chosen)])
    out = []
    for c in chosen:
        lo = max([e for s, e in edges if e <= c.start], default=0)
        hi = min([s for s, e in edges if s >= c.end], default=len(norm))
        out.append(_glued(tables, norm, c, lo, hi))
    return out


def _glued(t: Tables, norm: str, c: Match, lo: int, hi: int) -> Match:
    s, e = c.start, c.end
    g = t.glue_before.search(norm, max(lo, s - 12), s)
    if g is not None and g.end() > g.start():
        s = g.start()
    else:
        g = t.glue_before_bounded.search(norm, max(lo, s - 4), s)
        if g is not None and g.end() > g.start():
            k = g.start()
            if k == lo or norm[k - 1] in t.boundaries or norm[k - 1].isspace():
                s = k
    for _ in range(2):
        g = t.glue_after.match(norm, e)
        if g is None or g.end() == g.start() or g.end() > hi:
            break
        e = g.end()
    return replace(c, start=s, end=e)
