"""The `ima` command's own words for client notes: display spellings and units from cli_texts.json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models import ModelId, Note
from ..values import value_score
from .output import Console

_MODEL_PARAMS = ("model",)


def value_text(console: Console, field: str, value: Any) -> str:
    """A value as people write it: `15 s`, `720P`, `on`/`off`, else as given."""
    name = field.strip().lower()
    if isinstance(value, bool):
        return console.text("value_on" if value else "value_off")
    if name == "duration" and (score := value_score(name, value)) is not None:
        return console.text("unit_seconds", n=f"{score:g}")
    if name in {"resolution", "quality"} and isinstance(value, str):
        return value.strip().upper()
    return str(value)


def _values(console: Console, values: Mapping[str, Any]) -> str:
    return console.text("list_and").join(value_text(console, k, v) for k, v in values.items())


def _limit(console: Console, params: Mapping[str, Any]) -> str:
    field, allowed = str(params["allowed_field"]), list(params["allowed"])
    shown = [value_text(console, field, v) for v in allowed]
    if params.get("limit") == "max" and shown:
        return console.text("limit_max", value=shown[-1])
    if params.get("limit") == "min" and shown:
        return console.text("limit_min", value=shown[0])
    return console.text("limit_list", values=console.text("list_or").join(shown))


def note_text(console: Console, note: Note) -> str:
    """A client Note as one localised line (an unknown key is shown raw)."""
    p = dict(note.params)
    field = str(p.get("field", ""))
    for name in ("requested", "used"):
        if name in p:
            p[name] = value_text(console, field, p[name])
    for name in _MODEL_PARAMS:
        if p.get(name) in ModelId._value2member_map_:
            p["model_name"] = ModelId(p[name]).display_name
    if "allowed_field" in note.params:
        p["limit"] = _limit(console, note.params)
        p["with_value"] = value_text(console, str(p["with_field"]), p["with_value"])
    if note.key == "other_model_offers" and isinstance(p.get("values"), Mapping):
        p["values"] = _values(console, p["values"])
    elif isinstance(p.get("values"), Mapping):
        p["values"] = ", ".join(f"{k}={v}" for k, v in p["values"].items())
    p = {k: ", ".join(map(str, v)) if isinstance(v, list | tuple) else v for k, v in p.items()}
    try:
        return console.text(f"note_{note.key}", **p)
    except (KeyError, IndexError):
        return f"{note.key}: {dict(note.params)}"
