"""Loads phrases.yaml, reports every problem in it at once, and compiles it into matching rules."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .entries import SEP, L, R, Rule, alt, compile_regex, entry_rules, vendor_entries
from .numbers import number_pattern

PHRASES_PATH = Path(__file__).with_name("phrases.yaml")

FIELDS = ("task", "role", "model", "duration", "aspect_ratio", "resolution")
# Punctuation that only separates: dropped where a removed parameter leaves it dangling.
_SEPS = r",，、;；:：.。!！?？…~～\-—–|/#＃"


class TablesError(ValueError):
    """phrases.yaml is malformed; .problems lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("phrases.yaml: " + "; ".join(problems))
        self.problems = problems


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
    wrappers: tuple[re.Pattern[str], ...]  # whole-prompt frames; the group "body" is what stays
    closers: re.Pattern[str]
    connectors_tail: re.Pattern[str]  # dangling words at the end of a piece before a cut
    connectors_head: re.Pattern[str]
    glue_before: re.Pattern[str]
    negation: re.Pattern[str]  # before a parameter: the words are cut but say nothing ("不要竖屏")
    glue_before_bounded: re.Pattern[str]
    glue_after: re.Pattern[str]
    boundaries: frozenset[str]
    numbers: Mapping[str, int]
    notes: Mapping[str, tuple[str, ...]]
    typos: Mapping[str, Rule] = dataclasses.field(default_factory=dict)  # word → its (weak) rule, for slips
    typo_cutoff: float = 100.0
    typo_min_length: int = 5


def _macros(raw: Mapping[str, Any]) -> dict[str, str]:
    macros = {str(k): str(v) for k, v in (raw.get("macros") or {}).items()}
    macros.update(L=L, R=R, SEP=SEP, NUM=number_pattern(raw.get("numbers", {}).get("en") or {}))
    return macros


def _frames(items: Any, macros: Mapping[str, str], where: str, problems: list[str], *, tail: bool) -> Any:
    if not items:
        return None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        problems.append(f"{where}: must be a list of regex strings")
        return None
    for i in items:
        compile_regex(i, macros, where, problems)
    # Up to two frames in a row before a parameter ("适合发抖音", "视频要竖屏"), one after it.
    src = rf"(?:{alt(items)}\s*){{1,2}}\Z" if tail else r"\s*" + alt(items)
    return compile_regex(src, macros, where, problems)


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
            entries += vendor_entries(raw, problems)
        ctx["phrases"] = {}
        rules = [r for i, e in enumerate(entries) for r in entry_rules(field, i, e, ctx, problems)]
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
        return compile_regex(src, macros, where, problems) or re.compile(r"(?!x)x")

    prefix = rx(alt(_strings(raw, "prefixes", problems)), "prefixes")
    mentions = rx(alt(_strings(raw, "mentions", problems)), "mentions")
    preambles = tuple(rx(p, "preambles") for p in _strings(raw, "preambles", problems))
    wrappers = tuple(rx(p, "wrappers") for p in _strings(raw, "wrappers", problems))
    if not all("body" in w.groupindex for w in wrappers):
        problems.append("wrappers: every pattern needs a (?P<body>…) group")
    closers = rx(alt(_strings(raw, "closers", problems)) + r"[\s,，.。!！~～]*\Z", "closers")
    conn_tail = alt(_strings(raw, "connectors", problems) + _strings(raw, "connectors_tail", problems))
    conn_head = alt(_strings(raw, "connectors", problems) + _strings(raw, "connectors_head", problems))
    bounds = raw.get("boundaries")
    if not isinstance(bounds, str) or not bounds:
        problems.append("boundaries: must be a non-empty string")
        bounds = ","
    numbers = raw.get("numbers", {}).get("en") or {}
    if not all(isinstance(k, str) and isinstance(v, int) for k, v in numbers.items()):
        problems.append("numbers.en: maps words to integers")
    typos, cutoff, min_length = _typos(raw.get("typos") or {}, fields, problems)
    if problems:
        return None, problems
    tables = Tables(
        fields=fields,
        prefix=prefix,
        mentions=mentions,
        preambles=preambles,
        wrappers=wrappers,
        closers=closers,
        connectors_tail=rx(rf"(?:[\s{_SEPS}(（\[【「『“]|{conn_tail})+\Z", "connectors"),
        connectors_head=rx(rf"\A(?:[\s{_SEPS})）\]】」』”]|{conn_head})+", "connectors"),
        negation=rx(alt(_strings(raw, "negations", problems)) + r"\s*\Z", "negations"),
        glue_before=rx(alt(glue.get("before") or [r"(?!x)x"]) + r"\s*\Z", "glue.before"),
        glue_before_bounded=rx(
            alt(glue.get("before_bounded") or [r"(?!x)x"]) + r"\s*\Z", "glue.before_bounded"
        ),
        glue_after=rx(r"\s*" + alt(glue.get("after") or [r"(?!x)x"]), "glue.after"),
        boundaries=frozenset(bounds + "\n"),
        numbers=dict(numbers),
        notes=notes,
        typos=typos,
        typo_cutoff=cutoff,
        typo_min_length=min_length,
    )
    return (None, problems) if problems else (tables, [])


def _typos(
    raw: Any, fields: Mapping[str, FieldRules], problems: list[str]
) -> tuple[dict[str, Rule], float, int]:
    """The slip vocabulary: each word's own phrase rule, made weak (a slip counts only in context)."""
    if not isinstance(raw, Mapping):
        problems.append("typos: must be a mapping")
        return {}, 100.0, 5
    cutoff, min_length = raw.get("cutoff", 100), raw.get("min_length", 5)
    if not isinstance(cutoff, int | float) or not 50 <= cutoff <= 100:
        problems.append("typos.cutoff: must be a number from 50 to 100")
    if not isinstance(min_length, int) or min_length < 3:
        problems.append("typos.min_length: must be a whole number ≥ 3")
    out: dict[str, Rule] = {}
    for word in raw.get("words") or []:
        rule = next(
            (
                r
                for fr in fields.values()
                for r in fr.rules
                if r.convert == "fixed"
                and not r.keep
                and str(r.source).strip().lower() == str(word).strip().lower()
            ),
            None,
        )
        if rule is None or not str(word).isascii() or not str(word).isalpha():
            problems.append(f"typos.words: {word!r} is not a one-word latin phrase of any entry")
            continue
        out[str(word).lower()] = replace(rule, weak=True, note="note.typo")
    return out, float(cutoff), int(min_length)


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
