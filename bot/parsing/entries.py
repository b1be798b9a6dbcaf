"""Compiles one phrase-table entry, or the list of other vendors' models, into rules, noting every problem."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Which converters each field accepts, and the named groups each converter needs.
CONVERTERS: Mapping[str, frozenset[str]] = {
    "task": frozenset({"fixed"}),
    "role": frozenset({"fixed"}),
    "model": frozenset({"fixed", "unknown"}),
    "duration": frozenset({"fixed", "seconds", "minsec", "range"}),
    "aspect_ratio": frozenset({"fixed", "ratio", "size"}),
    "resolution": frozenset({"fixed", "pixels"}),
}
GROUPS: Mapping[str, tuple[frozenset[str], ...]] = {
    "unknown": (frozenset({"name"}),),
    "seconds": (frozenset({"n"}),),
    "minsec": (frozenset({"m", "s"}),),
    "range": (frozenset({"n", "n2"}),),
    "ratio": (frozenset({"a", "b"}),),
    "size": (frozenset({"w", "h"}),),
    "pixels": (frozenset({"p"}), frozenset({"k"})),
}
MODEL_VALUES = frozenset({"ima-pro", "ima-pro-fast", "default"})
ROLE_VALUES = frozenset({"first", "last", "first_last", "swap", "reference"})
TASK_VALUES = frozenset({"none"})
_RATIO = re.compile(r"\d+(?:\.\d+)?:\d+(?:\.\d+)?")
_RESOLUTION = re.compile(r"\d{3,4}P|\dK")
_ENTRY_KEYS = frozenset(
    {
        "value",
        "convert",
        "phrases",
        "patterns",
        "weak",
        "vague",
        "keep",
        "explicit",
        "note",
        "priority",
        "only",
        "scale",
        "hints",
    }
)
_LATIN = re.compile(r"[a-z0-9]")

L, R = r"(?<![a-z0-9])", r"(?![a-z0-9])"
SEP = r"[\s_\-]*"


@dataclass(frozen=True)
class Rule:
    """One compiled phrase or pattern and what a match of it means."""

    field: str
    regex: re.Pattern[str]
    source: str  # the phrase or pattern as written, for messages
    value: Any = None
    convert: str = "fixed"
    scale: int = 1
    weak: bool = False  # counts only in a frame, next to another parameter, or standing alone
    vague: bool = False  # yields to a compatible precise value of the same field, whatever the order
    keep: bool = False  # evidence only: the words stay in the prompt
    explicit: bool = False  # a role phrase that clearly speaks of an attached image
    note: str = ""
    priority: int = 0
    only: frozenset[str] = frozenset()
    hints: tuple[str, ...] = ()  # one of these is in every match: a message with none is not searched


def hint_of(phrase: str) -> str:
    """The longest run of a phrase that any match of it contains verbatim (spaces and hyphens vary)."""
    return max(re.split(r"[ \-_]", phrase.strip().lower()), key=len)


def alt(items: list[str]) -> str:
    return "(?:" + "|".join(f"(?:{i})" for i in items) + ")"


def expand(pattern: str, macros: Mapping[str, str]) -> str:
    """Replaces %NAME% macros (macros may use earlier macros); raises KeyError for an unknown one."""
    for _ in range(3):
        pattern = re.sub(r"%([A-Z_]+)%", lambda m: macros[m.group(1)], pattern)
    return pattern


def phrase_regex(phrase: str, *, whole: bool = True) -> str:
    """A literal phrase as a regex: case-folded, spaces/hyphens optional, latin ends kept whole
    (with whole=False the end is left open for a version to follow: "kling2.1")."""
    p = phrase.strip().lower()
    body = "".join(SEP if ch in " -_" else re.escape(ch) for ch in p)
    head = L if _LATIN.match(p[:1]) else ""
    tail = R if whole and _LATIN.match(p[-1:]) else ""
    return head + body + tail


def compile_regex(
    src: str, macros: Mapping[str, str], where: str, problems: list[str]
) -> re.Pattern[str] | None:
    try:
        return re.compile(expand(src, macros), re.IGNORECASE)
    except (re.error, KeyError) as exc:
        problems.append(f"{where}: bad regex {src!r}: {exc}")
        return None


def vendor_entries(raw: Mapping[str, Any], problems: list[str]) -> list[dict[str, Any]]:
    """Other vendors' model names become model entries: name [version] [quality word] → its model,
    name … speed word → the fast model; a bare weak name counts only in a frame."""
    v = raw.get("vendors") or {}
    out: list[dict[str, Any]] = []
    try:
        version, speed, quality = v["version"], v["speed"], v["quality"]
    except (KeyError, TypeError):
        problems.append("vendors: needs version, speed and quality")
        return out
    ext = alt([phrase_regex(e) for e in v.get("extras") or []] + [version])
    q, s = alt([phrase_regex(w) for w in quality]), alt([phrase_regex(w) for w in speed])
    for i, vendor in enumerate(v.get("list") or []):
        where = f"vendors.list[{i}]"
        if not isinstance(vendor, Mapping) or vendor.get("model") not in ("ima-pro", "ima-pro-fast"):
            problems.append(f"{where}: needs model ima-pro or ima-pro-fast")
            continue
        strong = [phrase_regex(n, whole=False) for n in vendor.get("names") or []]
        strong += list(vendor.get("patterns") or [])
        weak = [phrase_regex(n, whole=False) for n in vendor.get("weak_names") or []]
        if not strong and not weak:
            problems.append(f"{where}: no names")
            continue
        # Every match holds one of the names (when the vendor has no free patterns): a cheap pre-check.
        hints = (
            []
            if vendor.get("patterns")
            else [hint_of(n) for k in ("names", "weak_names") for n in vendor.get(k) or []]
        )
        common = {"note": "note.model_mapped", "priority": 1, "hints": hints}
        model = vendor["model"]
        # A name runs straight into a version ("kling2.1") but never into more letters ("klingon").
        names, wnames = alt(strong) + r"(?![a-z])", alt(weak) + r"(?![a-z])"
        both = alt(strong + weak) + r"(?![a-z])"
        out.append(
            {"value": "ima-pro-fast", "patterns": [rf"{both}(?:{SEP}(?:{ext}|{q}))*{SEP}{s}{R}"], **common}
        )
        if strong:
            out.append({"value": model, "patterns": [rf"{names}(?:{SEP}(?:{ext}|{q}))*{R}"], **common})
        if weak:
            # A weak name counts on its own only with a version or a quality word after it.
            out.append({"value": model, "patterns": [rf"{wnames}(?:{SEP}(?:{ext}|{q}))+{R}"], **common})
            out.append({"value": model, "patterns": [rf"{wnames}{R}"], "weak": True, **common})
    return out


def _check_value(field: str, value: Any) -> bool:
    if field == "model":
        return value in MODEL_VALUES
    if field == "role":
        return value in ROLE_VALUES
    if field == "task":
        return value in TASK_VALUES
    if field == "duration":
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    if field == "aspect_ratio":
        return isinstance(value, str) and bool(_RATIO.fullmatch(value))
    return isinstance(value, str) and bool(_RESOLUTION.fullmatch(value))


def entry_rules(field: str, i: int, e: Any, ctx: dict[str, Any], problems: list[str]) -> list[Rule]:
    where = f"fields.{field}.entries[{i}]"
    if not isinstance(e, Mapping):
        problems.append(f"{where}: must be a mapping")
        return []
    extra = set(e) - _ENTRY_KEYS
    if extra:
        problems.append(f"{where}: unknown keys {sorted(extra)}")
    convert = e.get("convert", "fixed")
    if convert not in CONVERTERS[field]:
        problems.append(f"{where}: convert {convert!r} not allowed for {field}")
        return []
    if convert == "fixed" and not _check_value(field, e.get("value")):
        problems.append(f"{where}: bad {field} value {e.get('value')!r}")
    if convert != "fixed" and "value" in e:
        problems.append(f"{where}: a converted entry has no fixed value")
    note = e.get("note", "")
    if note and note not in ctx["notes"]:
        problems.append(f"{where}: note {note!r} is not listed under notes")
    only = e.get("only") or []
    if any(not _check_value(field, o) for o in only):
        problems.append(f"{where}: bad value in only: {only}")
    phrases, patterns = e.get("phrases") or [], e.get("patterns") or []
    if not phrases and not patterns:
        problems.append(f"{where}: neither phrases nor patterns")
    if convert != "fixed" and phrases:
        problems.append(f"{where}: a converted entry takes patterns, not phrases")
    sources = [(p, phrase_regex(str(p))) for p in phrases] + [(p, str(p)) for p in patterns]
    rules = []
    for src, regex_src in sources:
        if not isinstance(src, str) or not src.strip():
            problems.append(f"{where}: empty or non-string phrase/pattern {src!r}")
            continue
        rx = compile_regex(regex_src, ctx["macros"], where, problems)
        if rx is None:
            continue
        if convert != "fixed" and not any(g <= set(rx.groupindex) for g in GROUPS[convert]):
            problems.append(f"{where}: pattern {src!r} lacks the groups {convert} needs")
            continue
        if src in phrases and convert == "fixed":
            seen = ctx["phrases"].setdefault(src.strip().lower(), (e.get("value"), where))
            if seen[0] != e.get("value"):
                problems.append(f"{where}: phrase {src!r} also means {seen[0]!r} in {seen[1]}")
        rules.append(
            Rule(
                field=field,
                regex=rx,
                source=src,
                value=e.get("value"),
                convert=convert,
                scale=int(e.get("scale", 1)),
                weak=bool(e.get("weak")),
                vague=bool(e.get("vague")),
                keep=bool(e.get("keep")),
                explicit=bool(e.get("explicit")),
                note=note,
                priority=int(e.get("priority", 0)),
                only=frozenset(only),
                hints=(hint_of(src),) if src in phrases else tuple(e.get("hints") or ()),
            )
        )
    return rules
