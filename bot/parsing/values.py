"""What a matched phrase means: durations, ratios, resolutions and pixel sizes from its named groups."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .entries import Rule
from .numbers import to_number

MAX_SECONDS = 600
_PIXELS = {
    144: "144P",
    240: "240P",
    360: "360P",
    480: "480P",
    540: "540P",
    576: "576P",
    720: "720P",
    1080: "1080P",
    1440: "1440P",
    2160: "4K",
    4320: "8K",
}
_KNOWN_RATIOS = ((16, 9), (9, 16), (1, 1), (4, 3), (3, 4), (21, 9), (9, 21), (3, 2), (2, 3), (4, 5), (5, 4))


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
