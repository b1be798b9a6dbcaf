"""Loads phrases.yaml, reports every problem in it at once, and compiles it into matching rules."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .numbers import number_pattern

PHRASES_PATH = Path(__file__).with_name("phrases.yaml")

FIELDS = ("task", "role", "model", "duration", "aspect_ratio", "resolution")
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
    {"value", "convert", "phrases", "patterns", "weak", "vague", "keep", "explicit", "note", "priority",
     "only", "scale"}
)  # fmt: skip
_LATIN = re.compile(r"[a-z0-9]")

# Punctuation that only separates: dropped where a removed parameter leaves it dangling.
_SEPS = r",，、;；:：.。!！?？…~～\-—–|/#＃"
L, R = r"(?<![a-z0-9])", r"(?![a-z0-9])"
SEP = r"[\s_\-]*"


class TablesError(ValueError):
    """phrases.yaml is malformed; .problems lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("phrases.yaml: " + "; ".join(problems))
        self.problems = problems


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


@dataclass(frozen=True)
class FieldRules:
    rules: tuple[Rule, ...]
    before: re.Pattern[str] | None  # frames: eaten with the parameter and make weak words count
    after: re.Pattern[str] | None
    cue: re.Pattern[str] | None  # like after, but only makes weak words count: nothing is eaten
    deny_before: re.Pattern[str] | None  # contexts in which a match is not this parameter
    deny_after: re.Pattern[str] | None


@dataclass(frozen=True)
class Tables:
    fields: Mapping[str, FieldRules]
    prefix: re.Pattern[str]  # one command prefix or mention at a position
    mentions: re.Pattern[str]  # mentions anywhere
    preambles: tuple[re.Pattern[str], ...]
    closers: re.Pattern[str]
    connectors_tail: re.Pattern[str]  # dangling words at the end of a piece before a cut
    connectors_head: re.Pattern[str]
    glue_before: re.Pattern[str]
    glue_before_bounded: re.Pattern[str]
    glue_after: re.Pattern[str]
    boundaries: frozenset[str]
    numbers: Mapping[str, int]
    notes: Mapping[str, tuple[str, ...]]


def _alt(items: list[str]) -> str:
    return "(?:" + "|".join(f"(?:{i})" for i in items) + ")"


def _macros(raw: Mapping[str, Any]) -> dict[str, str]:
    macros = {str(k): str(v) for k, v in (raw.get("macros") or {}).items()}
    macros.update(L=L, R=R, SEP=SEP, NUM=number_pattern(raw.get("numbers", {}).get("en") or {}))
    return macros


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


def _compile(src: str, macros: Mapping[str, str], where: str, problems: list[str]) -> re.Pattern[str] | None:
    try:
        return re.compile(expand(src, macros), re.IGNORECASE)
    except (re.error, KeyError) as exc:
        problems.append(f"{where}: bad regex {src!r}: {exc}")
        return None


def _frames(items: Any, macros: Mapping[str, str], where: str, problems: list[str], *, tail: bool) -> Any:
    if not items:
        return None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        problems.append(f"{where}: must be a list of regex strings")
        return None
    for i in items:
        _compile(i, macros, where, problems)
    # Up to two frames in a row before a parameter ("适合发抖音", "视频要竖屏"), one after it.
    src = rf"(?:{_alt(items)}\s*){{1,2}}\Z" if tail else r"\s*" + _alt(items)
    return _compile(src, macros, where, problems)


def _vendor_entries(raw: Mapping[str, Any], problems: list[str]) -> list[dict[str, Any]]:
    """Other vendors' model names become model entries: name [version] [quality word] → its model,
    name … speed word → the fast model; a bare weak name counts only in a frame."""
    v = raw.get("vendors") or {}
    out: list[dict[str, Any]] = []
    try:
        version, speed, quality = v["version"], v["speed"], v["quality"]
    except (KeyError, TypeError):
        problems.append("vendors: needs version, speed and quality")
        return out
    ext = _alt([phrase_regex(e) for e in v.get("extras") or []] + [version])
    q, s = _alt([phrase_regex(w) for w in quality]), _alt([phrase_regex(w) for w in speed])
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
        common = {"note": "note.model_mapped", "priority": 1}
        model = vendor["model"]
        # A name runs straight into a version ("kling2.1") but never into more letters ("klingon").
        names, wnames = _alt(strong) + r"(?![a-z])", _alt(weak) + r"(?![a-z])"
        both = _alt(strong + weak) + r"(?![a-z])"
        out.append({"value": "ima-pro-fast", "patterns": [rf"{both}(?:{SEP}(?:{ext}|{q}))*{SEP}{s}{R}"], **common})
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


def _entry_rules(field: str, i: int, e: Any, ctx: dict[str, Any], problems: list[str]) -> list[Rule]:
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
        rx = _compile(regex_src, ctx["macros"], where, problems)
        if rx is None:
            continue
        if convert != "fixed" and not any(g <= set(rx.groupindex) for g in GROUPS[convert]):
            problems.append(f"{where}: pattern {src!r} lacks the groups {convert} needs")
            continue
        if src in phrases and convert == "fixed":
            seen = ctx["phrases"].setdefault(src.strip().lower(), (e.get("value"), where))
            if seen[0] != e.get("value"):
                problems.append(f"{where}: phrase {src!r} also means {seen[0]!r} in {seen[1]}")
        rules.append(Rule(
            field=field, regex=rx, source=src, value=e.get("value"), convert=convert,
            scale=int(e.get("scale", 1)), weak=bool(e.get("weak")), vague=bool(e.get("vague")),
            keep=bool(e.get("keep")), explicit=bool(e.get("explicit")), note=note,
            priority=int(e.get("priority", 0)), only=frozenset(only),
        ))  # fmt: skip
    return rules


def _strings(raw: Mapping[str, Any], key: str, problems: list[str]) -> list[str]:
    items = raw.get(key)
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        problems.append(f"{key}: must be a non-empty list of strings")
        return [r"(?!x)x"]
    return items


def build(raw: Any) -> tuple[Tables | None, list[str]]:
    """Compiles the parsed YAML; returns (tables, []) or (None, every problem found)."""
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        return None, ["the file must hold a mapping"]
    if raw.get("version") != 1:
        problems.append("version: must be 1")
    notes_raw = raw.get("notes") or {}
    notes: dict[str, tuple[str, ...]] = {}
    for key, params in notes_raw.items():
        if not str(key).startswith("note.") or not isinstance(params, list):
            problems.append(f"notes.{key}: keys start with 'note.' and map to a list of parameter names")
            continue
        notes[str(key)] = tuple(str(p) for p in params)
    macros = _macros(raw)
    ctx: dict[str, Any] = {"macros": macros, "notes": notes, "phrases": {}}
    fields: dict[str, FieldRules] = {}
    raw_fields = raw.get("fields") or {}
    for name in set(raw_fields) - set(FIELDS):
        problems.append(f"fields.{name}: unknown field")
    for field in FIELDS:
        spec = raw_fields.get(field)
        if not isinstance(spec, Mapping):
            problems.append(f"fields.{field}: missing")
            continue
        entries = list(spec.get("entries") or [])
        if field == "model":
            entries += _vendor_entries(raw, problems)
        ctx["phrases"] = {}
        rules = [r for i, e in enumerate(entries) for r in _entry_rules(field, i, e, ctx, problems)]
        frames, deny = spec.get("frames") or {}, spec.get("deny") or {}
        w = f"fields.{field}"
        fields[field] = FieldRules(
            rules=tuple(rules),
            before=_frames(frames.get("before"), macros, f"{w}.frames.before", problems, tail=True),
            after=_frames(frames.get("after"), macros, f"{w}.frames.after", problems, tail=False),
            cue=_frames(frames.get("cue"), macros, f"{w}.frames.cue", problems, tail=False),
            deny_before=_frames(deny.get("before"), macros, f"{w}.deny.before", problems, tail=True),
            deny_after=_frames(deny.get("after"), macros, f"{w}.deny.after", problems, tail=False),
        )
    glue = raw.get("glue") or {}

    def rx(src: str, where: str) -> re.Pattern[str]:
        return _compile(src, macros, where, problems) or re.compile(r"(?!x)x")

    prefix = rx(_alt(_strings(raw, "prefixes", problems)), "prefixes")
    mentions = rx(_alt(_strings(raw, "mentions", problems)), "mentions")
    preambles = tuple(rx(p, "preambles") for p in _strings(raw, "preambles", problems))
    closers = rx(r"(?:[\s,，.。!！~～]*" + _alt(_strings(raw, "closers", problems)) + r")+[\s,，.。!！~～]*\Z",
                 "closers")  # fmt: skip
    conn_tail = _alt(_strings(raw, "connectors", problems) + _strings(raw, "connectors_tail", problems))
    conn_head = _alt(_strings(raw, "connectors", problems) + _strings(raw, "connectors_head", problems))
    bounds = raw.get("boundaries")
    if not isinstance(bounds, str) or not bounds:
        problems.append("boundaries: must be a non-empty string")
        bounds = ","
    numbers = raw.get("numbers", {}).get("en") or {}
    if not all(isinstance(k, str) and isinstance(v, int) for k, v in numbers.items()):
        problems.append("numbers.en: maps words to integers")
    if problems:
        return None, problems
    tables = Tables(
        fields=fields, prefix=prefix, mentions=mentions, preambles=preambles, closers=closers,
        connectors_tail=rx(rf"(?:[\s{_SEPS}(（\[【「『“]|{conn_tail})+\Z", "connectors"),
        connectors_head=rx(rf"\A(?:[\s{_SEPS})）\]】」』”]|{conn_head})+", "connectors"),
        glue_before=rx(_alt(glue.get("before") or [r"(?!x)x"]) + r"\s*\Z", "glue.before"),
        glue_before_bounded=rx(_alt(glue.get("before_bounded") or [r"(?!x)x"]) + r"\s*\Z", "glue.before_bounded"),
        glue_after=rx(r"\s*" + _alt(glue.get("after") or [r"(?!x)x"]), "glue.after"),
        boundaries=frozenset(bounds + "\n"), numbers=dict(numbers), notes=notes,
    )  # fmt: skip
    return (None, problems) if problems else (tables, [])


def load_raw(path: Path = PHRASES_PATH) -> Any:
    """Returns the parsed YAML of a phrase file; raises OSError or yaml.YAMLError."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_tables(path: Path = PHRASES_PATH) -> Tables:
    """Returns the compiled tables of a phrase file; raises TablesError listing every problem."""
    tables, problems = build(load_raw(path))
    if tables is None:
        raise TablesError(problems)
    return tables


@cache
def default_tables() -> Tables:
    """The bundled phrase tables, loaded once (pure data, safe to share)."""
    return load_tables()
