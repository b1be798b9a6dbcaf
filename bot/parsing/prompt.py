"""The prompt: the message without its prefix and parameter words, tidied where they were cut out."""

from __future__ import annotations

import re

from .matcher import fold, script
from .tables import Tables

_KEEP_PUNCT = ",，、;；.。!！?？"
_TERMINATORS = ".。!！?？"
_WS = re.compile(r"\s+")
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|（\s*）|\[\s*\]|【\s*】|「\s*」|『\s*』|“\s*”|《\s*》")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,，、;；.。!！?？:：)）\]】」』”])")
_LEAD = " ,，、;；:：.。!！?？-—–|/~～#＃"
# A trailing "?" belongs to the request ("can you make …?"), not to what the video shows.
_TRAIL = " ,，、;；:：-—–|/~～#＃?？"
_TAIL_WINDOW = 60  # tail searches look this far back, repeatedly: linear even on a long run
_CONTENT = re.compile(r"[^\W_]|[\u2600-\u27bf\U0001f000-\U0001faff]")


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        elif e > s:
            out.append((s, e))
    return out


def _first_punct(region: str) -> str:
    """The first run of punctuation worth keeping in a cut region ("，" of "，并且", "！！")."""
    m = re.search(f"[{_KEEP_PUNCT}]+", region)
    return m.group(0) if m else ""


def _strip_tail(t: Tables, piece: str) -> tuple[str, str]:
    """The piece without dangling connectors/punctuation at its end, and the first punctuation cut."""
    folded, cut = fold(piece), len(piece)
    while True:
        lo = max(0, cut - _TAIL_WINDOW)
        m = t.connectors_tail.search(folded, lo, cut)
        if m is None or m.start() == cut:
            break
        cut = m.start()
        if cut > lo:
            break
    return piece[:cut], _first_punct(piece[cut:])


def _strip_head(t: Tables, piece: str) -> tuple[str, str]:
    m = t.connectors_head.match(fold(piece))
    if m is None:
        return piece, ""
    return piece[m.end() :], _first_punct(piece[: m.end()])


def _joiner(left: str, punct: str, right: str, spaced: bool) -> str:
    """What joins two pieces: the punctuation cut between them, else nothing between Chinese characters
    unless the sender spaced both sides of the cut ("奶茶广告 竖屏 产品特写": a list of keywords), else a space."""
    if punct:
        return punct + ("" if not punct.isascii() else " ")
    if script(left[-1]) == "cjk" and script(right[0]) == "cjk" and not spaced:
        return ""
    return " "


def _cut(t: Tables, text: str, spans: list[tuple[int, int]]) -> str:
    """Joins the pieces between removed spans; at each cut the punctuation before it survives."""
    spans = _merge(spans)
    if not spans:
        return text
    bounds = [0, *(x for s in spans for x in s), len(text)]
    pieces = [text[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2)]
    acc, pending = _strip_tail(t, pieces[0])
    if not acc.strip():
        acc, pending = "", ""
    space_before = pieces[0][-1:].isspace()  # whether the text just before the current cut is a space
    for i, piece in enumerate(pieces[1:], start=1):
        body, head_punct = _strip_head(t, piece)
        tail_punct = ""
        if i < len(pieces) - 1:
            body, tail_punct = _strip_tail(t, body)
        if not body.strip():
            pending = pending or head_punct
            continue
        spaced = space_before and piece[:1].isspace()
        acc = body if not acc else acc + _joiner(acc, pending or head_punct, body, spaced) + body
        pending = tail_punct
        space_before = piece[-1:].isspace()
    if acc and pending and pending[0] in _TERMINATORS:
        acc += pending
    return acc


def _unwrap(t: Tables, s: str, folded: str, *, tailed: bool) -> tuple[str, str]:
    """s without the whole-prompt frames around its body (and its tail, for wrappers that have one)."""
    for rx in t.wrappers:
        if ("tail" in rx.groupindex) != tailed:
            continue
        m = rx.fullmatch(folded)
        if m is not None and m.group("body").strip():
            s = s[m.start("body") : m.end("body")] + (s[m.start("tail") : m.end("tail")] if tailed else "")
            folded = fold(s)
    return s, folded


def _tidy(t: Tables, s: str) -> str:
    for _ in range(3):
        before = s
        s = _WS.sub(" ", s).strip()
        s = _EMPTY_BRACKETS.sub(" ", s)
        s = _SPACE_BEFORE_PUNCT.sub(r"\1", s)
        folded = fold(s)
        # A wrapper with a tail carries its own request words ("做一个X的视频，要搞笑一点"): it goes before
        # the preambles would take those words away; body and tail stay.
        s, folded = _unwrap(t, s, folded, tailed=True)
        for rx in t.preambles:
            m = rx.match(folded)
            if m is not None and m.end():
                s = s[m.end() :]
                folded = fold(s)
        s, folded = _unwrap(t, s, folded, tailed=False)
        for _ in range(4):
            m = t.closers.search(fold(s), max(0, len(s) - _TAIL_WINDOW))
            if m is None:
                break
            s = s[: m.start()].rstrip()
        s = s.lstrip(_LEAD).rstrip(_TRAIL)
        if s == before:
            break
    return s if _CONTENT.search(s) else ""


def build_prompt(t: Tables, text: str, spans: list[tuple[int, int]]) -> str:
    """Returns the prompt: text minus spans, with dangling connectors, punctuation and boilerplate removed."""
    return _tidy(t, _cut(t, text, spans))
