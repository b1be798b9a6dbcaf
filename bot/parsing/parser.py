"""parse(): a zh/en chat message (+ how many images came with it) → a ParsedRequest. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ima.models import ModelId, Note, TaskType

from .matcher import Match, candidates, fold, prefix_spans
from .picker import pick
from .prompt import build_prompt
from .tables import FIELDS, Tables, default_tables
from .typos import typo_candidates

MAX_TEXT = 8000  # characters read; anything longer is cut (chat platforms cap messages well below this)
MAX_NOTES = 12
_EDGE_PUNCT = " ,，、;；:：.。!！?？-—~～()（）[]【】"
PARAM_FIELDS = ("model", "duration", "aspect_ratio", "resolution")
OPTION_FIELDS = (*PARAM_FIELDS, "image_role")
_RES_RANK = (
    "144P",
    "240P",
    "360P",
    "480P",
    "540P",
    "576P",
    "720P",
    "1080P",
    "1440P",
    "2K",
    "4K",
    "5K",
    "6K",
    "8K",
)
_ROLE_OPTIONS: Mapping[str, str | None] = {
    "first": "first",
    "first_frame": "first",
    "last": "last",
    "last_frame": "last",
    "first_last": "first_last",
    "frames": "first_last",
    "first_last_frame": "first_last",
    "reference": "reference",
    "ref": "reference",
    "references": "reference",
    "auto": None,
    "default": None,
}
_DEFAULT_WORDS = frozenset({"default", "auto", "automatic", "none", "默认", "自动", "推荐"})


@dataclass(frozen=True)
class ParsedRequest:
    """What a message asks for. Values no model offers are kept as said; the resolver picks the nearest."""

    task_type: TaskType
    model_id: ModelId | None  # None when not said (or 默认/自动)
    duration: int | None
    aspect_ratio: str | None  # like "9:16"
    resolution: str | None  # "480P" | "720P" | "1080P" | "4K" (also "1440P", "2K", "8K" as said)
    prompt: str
    notes: tuple[Note, ...] = ()
    image_roles: tuple[str, ...] = ()  # per image, in order: "first" | "last" | "reference"
    removed: tuple[str, ...] = ()  # the parameter words cut out of the prompt, as typed (for the echo)

    def to_json(self, render: Callable[[Note], str]) -> dict[str, Any]:
        """Returns exactly task_type, model_id, duration, aspect_ratio, resolution, prompt, notes (texts)."""
        return {
            "task_type": self.task_type.value,
            "model_id": self.model_id.value if self.model_id is not None else None,
            "duration": self.duration,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "prompt": self.prompt,
            "notes": [render(n) for n in self.notes],
        }


def parse(text: str, image_count: int = 0, *, options: Mapping[str, str] = {}) -> ParsedRequest:
    """Returns the request a message makes; typed options (model, duration, aspect_ratio, resolution,
    image_role) win over the text. Never raises on any text."""
    return parse_with(default_tables(), text, image_count, options=options)


def parse_with(
    tables: Tables, text: str, image_count: int = 0, *, options: Mapping[str, str] = {}
) -> ParsedRequest:
    """parse() with explicit tables (tests, alternative phrase files)."""
    text = (text or "")[:MAX_TEXT]
    images = max(0, int(image_count or 0))
    norm = fold(text)
    blocked = prefix_spans(tables, norm)
    # Without images, only role phrases that plainly speak of one count (and earn a note).
    found = candidates(tables, norm, blocked, FIELDS, explicit_roles=images == 0)
    found += typo_candidates(tables, norm, blocked, found)
    chosen = pick(tables, norm, blocked, found)
    notes: list[Note] = []
    values: dict[str, Any] = {}
    said: dict[str, str] = {}
    for field in PARAM_FIELDS:
        values[field], said[field] = _resolve(field, chosen, text, notes)
    for c in chosen:
        if "_unknown" in c.values:
            notes.append(Note("note.model_unknown", {"requested": c.values["_unknown"]}))
        if "_typo" in c.values:
            notes.append(Note("note.typo", {"said": _surface(text, c), "meant": c.values["_typo"][1]}))
    role_kind, role_said, swap = _role_kind(chosen, text, notes)
    _apply_options(tables, options, values, said, notes, role_kind, role_said)
    role_kind = values.pop("image_role", role_kind)
    task, roles = _task(images, role_kind, swap, role_said, chosen, text, notes)
    spans = blocked + [(c.start, c.end) for c in chosen if not c.rule.keep]
    model = values["model"]
    return ParsedRequest(
        task_type=task,
        model_id=ModelId(model) if model not in (None, "default") else None,
        duration=values["duration"],
        aspect_ratio=values["aspect_ratio"],
        resolution=values["resolution"],
        prompt=build_prompt(tables, text, spans),
        notes=_dedupe(notes),
        image_roles=roles,
        removed=tuple(dict.fromkeys(w for c in chosen if not c.rule.keep if (w := _cut_words(text, c)))),
    )


def _cut_words(text: str, c: Match) -> str:
    return " ".join(text[c.start : c.end].split()).strip(_EDGE_PUNCT)


def _surface(text: str, c: Match) -> str:
    return " ".join(text[c.core_start : c.core_end].split())


def _compatible(field: str, loose: Any, precise: Any) -> bool:
    """Whether a vague value (横屏, 高清) agrees with a precise one (21:9, 1080P)."""
    if field == "aspect_ratio":
        (a1, b1), (a2, b2) = (map(float, v.split(":")) for v in (loose, precise))
        return (a1 > b1) == (a2 > b2) and (a1 < b1) == (a2 < b2)
    if field == "resolution" and loose in _RES_RANK and precise in _RES_RANK:
        return _RES_RANK.index(precise) >= _RES_RANK.index(loose)
    return loose == precise


def _resolve(field: str, chosen: list[Match], text: str, notes: list[Note]) -> tuple[Any, str]:
    """The field's value (the last one said wins) and the words that said it; notes conflicts."""
    said = [c for c in chosen if field in c.values]
    precise = [c for c in said if not c.rule.vague]
    said = [
        c
        for c in said
        if not c.rule.vague or not any(_compatible(field, c.values[field], p.values[field]) for p in precise)
    ]
    if not said:
        return None, ""
    kept = said[-1]
    value = kept.values[field]
    dropped: dict[Any, Match] = {}
    for c in said[:-1]:
        if c.values[field] != value:
            dropped.pop(c.values[field], None)
            dropped[c.values[field]] = c
    for c in dropped.values():
        notes.append(
            Note(
                "note.conflict", {"field": field, "dropped": _surface(text, c), "kept": _surface(text, kept)}
            )
        )
    if kept.rule.note == "note.model_mapped" and value != "default":
        notes.append(Note("note.model_mapped", {"requested": _surface(text, kept), "model": ModelId(value)}))
    if "_range" in kept.values:
        low, high = kept.values["_range"]
        notes.append(Note("note.duration_range", {"low": low, "high": high, "kept": value}))
    return value, _surface(text, kept)


def _role_kind(chosen: list[Match], text: str, notes: list[Note]) -> tuple[str | None, str, bool]:
    """("reference" | "frames" | None, the words that decided it, whether the frames are swapped)."""
    said = [c for c in chosen if "role" in c.values]  # a role said in the negative says nothing
    said = [c for c in said if not c.rule.vague] or said
    if not said:
        return None, "", False

    def kind(c: Match) -> str:
        return "reference" if c.values["role"] == "reference" else "frames"

    kept = said[-1]
    other = [c for c in said if kind(c) != kind(kept)]
    if other:
        notes.append(
            Note(
                "note.conflict",
                {"field": "image_role", "dropped": _surface(text, other[-1]), "kept": _surface(text, kept)},
            )
        )
    frames = [c for c in said if kind(c) == "frames"]
    swap = kind(kept) == "frames" and any(c.values["role"] == "swap" for c in frames)
    return kind(kept), _surface(text, kept), swap


def _task(
    images: int, kind: str | None, swap: bool, said: str, chosen: list[Match], text: str, notes: list[Note]
) -> tuple[TaskType, tuple[str, ...]]:
    if images == 0:
        if said:
            notes.append(Note("note.images_missing", {"phrase": said}))
        return TaskType.TEXT_TO_VIDEO, ()
    if kind == "reference":
        return TaskType.REFERENCE_IMAGE_TO_VIDEO, ("reference",) * images
    if images >= 3:
        if kind == "frames":
            notes.append(Note("note.frames_too_many", {"count": images, "phrase": said}))
        return TaskType.REFERENCE_IMAGE_TO_VIDEO, ("reference",) * images
    if images == 1:
        ends = [c for c in chosen if c.values.get("role") in ("last", "first_last")]
        if kind == "frames" and ends:
            notes.append(Note("note.last_frame_single", {"phrase": _surface(text, ends[-1])}))
        return TaskType.IMAGE_TO_VIDEO, ("first",)
    return TaskType.FIRST_LAST_FRAME_TO_VIDEO, ("last", "first") if swap else ("first", "last")


_INVALID = object()


def _option_value(tables: Tables, field: str, raw: str) -> Any:
    """The value a typed option stands for; None for "auto", _INVALID when unreadable."""
    s = " ".join(str(raw).split())
    low = s.lower()
    if field == "image_role":
        return _ROLE_OPTIONS.get(low.replace("-", "_").replace(" ", "_"), _INVALID)
    if field == "model":
        if low in ModelId._value2member_map_:
            return low
        if low in _DEFAULT_WORDS:
            return "default"
    if field == "duration" and low.rstrip("s").strip().isdigit():
        n = int(low.rstrip("s").strip())
        return n if 0 < n <= 600 else _INVALID
    norm = fold(s)
    got = [c for c in pick(tables, norm, [], candidates(tables, norm, [], (field,))) if field in c.values]
    return got[-1].values[field] if got else _INVALID


def _apply_options(
    tables: Tables,
    options: Mapping[str, str],
    values: dict[str, Any],
    said: dict[str, str],
    notes: list[Note],
    role_kind: str | None,
    role_said: str,
) -> None:
    for field in OPTION_FIELDS:
        raw = (options or {}).get(field)
        if raw is None or not str(raw).strip():
            continue
        value = _option_value(tables, field, raw)
        if value is _INVALID:
            notes.append(
                Note("note.option_invalid", {"field": field, "value": " ".join(str(raw).split())[:40]})
            )
            continue
        if field == "image_role":
            if value is None:
                continue
            kind = "reference" if value == "reference" else "frames"
            if role_said and kind != role_kind:
                notes.append(
                    Note("note.option_overrides", {"field": field, "said": role_said, "used": str(raw)})
                )
            values["image_role"] = kind
            continue
        if said.get(field) and values.get(field) != value:
            if field != "model":
                notes.append(
                    Note("note.option_overrides", {"field": field, "said": said[field], "used": str(value)})
                )
            elif value != "default":
                notes.append(Note("note.option_model", {"said": said[field], "model": ModelId(value)}))
        values[field] = value


def _dedupe(notes: list[Note]) -> tuple[Note, ...]:
    out: list[Note] = []
    for n in notes:
        if n not in out:
            out.append(n)
    return tuple(out[:MAX_NOTES])
