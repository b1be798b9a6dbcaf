"""Picks the matches that count: longest first, weak words only in context, then widens them by glue."""

from __future__ import annotations

import bisect
import re
from dataclasses import replace

from .matcher import Match, Spans, script
from .tables import Tables

_INDEFINITE = re.compile(r"(?<![a-z0-9])(?:a|an)\s+\Z")
_POLITE = re.compile(r"(?:please|pls|plz|thx|thanks|谢谢|麻烦了)(?![a-z])\s*(?:[,，;；.。!！:：)）\]】]|\Z)")
_AND = re.compile(r"(?:and|plus|&|\+|和|并且|并)\s*")
_ARTICLE_AHEAD = re.compile(r"\s+(?:a|an|the|some|my|our|one|two|three)\s")
_ARTICLE = re.compile(r"(?<![a-z0-9])(?:a|an|the|this|that|his|her|my|your|our|their|its|of)\s*\Z")


# Bounds that keep a pathological message linear: a real one has a handful of ambiguous words.
MAX_WEAK = 48  # weak candidates considered per message
MAX_HOPS = 24  # parameters in one block at the start or end of the message


class _Picker:
    """Greedy longest-first choice of non-overlapping matches; weak words need context (see phrases.yaml)."""

    def __init__(self, tables: Tables, norm: str, blocked: list[tuple[int, int]]) -> None:
        self.t, self.norm = tables, norm
        self.spans = Spans.of(blocked)
        self.chosen: list[Match] = []

    def _fits(self, c: Match) -> Match | None:
        """c, or c without the frames that overlap what is already chosen, or None."""
        if self.spans.overlaps(c.core_start, c.core_end):
            return None
        if c.framed_before and self.spans.overlaps(c.start, c.core_start):
            c = replace(c, start=c.core_start, framed_before=False)
        if c.end > c.core_end and self.spans.overlaps(c.core_end, c.end):
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
        hit = self.spans.by_end.get(j) if left else self.spans.by_start.get(j)
        if hit is not None:
            return True, (hit[1] == field and j == pos)
        if (left and j == 0) or (not left and j == len(n)):
            return True, False
        ch = n[j - 1] if left else n[j]
        if ch in self.t.boundaries or script(ch) == "other":
            return True, False
        if j != pos and script(first) == "cjk":
            return True, False  # Chinese does not space its words: a space separates
        if {script(ch), script(first)} == {"latin", "cjk"}:
            return True, False
        if not left and (self.t.closers.match(n, j) or _POLITE.match(n, j)):
            return True, False
        if not left and (m := _AND.match(n, j)) and self.spans.by_start.get(m.end()):
            return True, False  # "vertical and 5 sec": joined to another parameter
        return False, False

    def _run(self, c: Match, pending: list[Match]) -> bool:
        """Whether c sits in a block of parameters (chosen, or weak ones still pending) separated only by
        spaces and punctuation that reaches the start or the end of the text and holds a chosen one."""
        n = self.norm
        p_start = {p.start: p.end for p in pending if p is not c}
        p_end = {p.end: p.start for p in pending if p is not c}
        has_chosen, reaches_edge = False, False
        for forward in (True, False):
            j = c.end if forward else c.start
            for _ in range(MAX_HOPS):
                while 0 < j < len(n) and (
                    n[j if forward else j - 1].isspace() or n[j if forward else j - 1] in self.t.boundaries
                ):
                    j += 1 if forward else -1
                if j == (len(n) if forward else 0):
                    reaches_edge = True
                    break
                hit = self.spans.by_start.get(j) if forward else self.spans.by_end.get(j)
                if hit is not None and not hit[1]:
                    reaches_edge = True  # the command prefix or a mention: the message's edge
                    break
                if hit is not None:
                    j, has_chosen = hit[0], True
                    continue
                nxt = p_start.get(j) if forward else p_end.get(j)
                if nxt is None:
                    break
                j = nxt
            if not forward and _ARTICLE.search(n, 0, j):
                return False  # "a portrait 10s": the article ties the word to the prompt
        return has_chosen and reaches_edge

    def qualifies(self, c: Match, pending: list[Match]) -> bool:
        if not c.rule.weak:
            return True
        if c.framed_after and (
            c.framed_before or c.field != "model" or not _INDEFINITE.search(self.norm, 0, c.start)
        ):
            return True  # "fast mode", "use the fast model"; but "a fast model walking" is a person
        latin = script(self.norm[c.core_start]) == "latin"  # 海螺, 混元 are everyday words too
        if latin and self._after_prefix(c) and _ARTICLE_AHEAD.match(self.norm, c.end):
            return True  # "/video portrait a fox": the article opens the prompt after it
        if c.rule.note == "note.model_mapped" and latin and self._at_edge(c):
            return True  # "pika a cat dancing", "a cat dancing, luma": a vendor name opening or closing
        core = self.norm[c.core_start : c.core_end]
        left, l_same = self._side_ok(c.start, core[0], True, c.field)
        right, r_same = self._side_ok(c.end, core[-1], False, c.field)
        if l_same or r_same or (right and (left or c.framed_before)):
            return True
        # A latin word in the block of parameters closing (or opening) the message counts too:
        # "a robot dancing in the rain portrait 10s", "a cat 5s landscape pro".
        return script(core[0]) == "latin" and self._run(c, pending)

    def _after_prefix(self, c: Match) -> bool:
        i = c.start
        while i > 0 and self.norm[i - 1].isspace():
            i -= 1
        hit = self.spans.by_end.get(i)
        return hit is not None and not hit[1]

    def _at_edge(self, c: Match) -> bool:
        """Whether only separators or the prefix/mentions stand between c and the start or the end (and
        no article ties it to the words after: "a pika eating grass")."""
        n, skip = self.norm, self.t.boundaries
        i = c.start
        while i > 0 and (n[i - 1].isspace() or n[i - 1] in skip):
            i -= 1
        hit = self.spans.by_end.get(i)
        if (i == 0 or (hit is not None and not hit[1])) and not _ARTICLE.search(n, 0, c.start):
            return True
        j = c.end
        while j < len(n) and (n[j].isspace() or n[j] in skip):
            j += 1
        return j == len(n) and not _ARTICLE.search(n, 0, c.start)

    def take(self, c: Match) -> None:
        self.chosen.append(c)
        self.spans.add(c.start, c.end, c.field)

    def pick(self, cands: list[Match]) -> list[Match]:
        order = sorted(cands, key=lambda c: (-c.length, -c.rule.priority, c.start))
        # Unknown model names go last: any known reading of the same words wins.
        unknown = [c for c in order if c.rule.convert == "unknown"]
        order = [c for c in order if c.rule.convert != "unknown"]
        for c in order:
            if not c.rule.weak or (c.framed_after and self.qualifies(c, [])):
                fitted = self._fits(c)
                if fitted is not None:
                    self.take(fitted)
        taken = {id(c) for c in self.chosen}
        pending = [c for c in order if c.rule.weak and id(c) not in taken][:MAX_WEAK]
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
    starts, ends = [s for s, _ in edges], sorted(e for _, e in edges)
    out = []
    for c in chosen:
        i = bisect.bisect_right(ends, c.start)
        lo = ends[i - 1] if i else 0
        k = bisect.bisect_left(starts, c.end)
        hi = starts[k] if k < len(starts) else len(norm)
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
