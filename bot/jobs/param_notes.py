"""IMA resolver notes (ima/explain.py, ima/reflection.py) as locale texts: values get display spellings
and units, and a note that the other model offers what was asked becomes a one-tap button."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.core import Action, Button
from ima import explain, reflection
from ima.models import ModelId, Note
from ima.values import value_score

from .texts import Texts

KEYS = frozenset(
    {
        explain.VALUE_NOT_OFFERED,
        explain.VALUE_NOT_OFFERED_WITH,
        explain.COMBINATION_NOT_OFFERED,
        explain.VALUE_CHANGED,
        explain.OTHER_MODEL_OFFERS,
        reflection.REFLECTION_DEGRADED,
        reflection.REFLECTION_COMPLETED,
        reflection.REFLECTION_RESELECTED,
    }
)


def value_text(texts: Texts, locale: str, field: str, value: Any) -> str:
    """`15s`/`15秒`, `720P`, on/off, else the value as given."""
    name = str(field).strip().lower()
    if isinstance(value, bool):
        return texts("params.on" if value else "params.off", locale)
    if name == "duration" and (score := value_score(name, value)) is not None:
        return texts("unit.seconds", locale, n=f"{score:g}")
    if name in {"resolution", "quality"} and isinstance(value, str):
        return value.strip().upper()
    return str(value)


def _values(texts: Texts, locale: str, values: Mapping[str, Any], joiner: str) -> str:
    return texts(joiner, locale).join(value_text(texts, locale, k, v) for k, v in values.items())


def _limit(texts: Texts, locale: str, params: Mapping[str, Any]) -> str:
    field = str(params.get("allowed_field", ""))
    shown = [value_text(texts, locale, field, v) for v in params.get("allowed") or ()]
    if shown and params.get("limit") == "max":
        return texts("params.limit_max", locale, value=shown[-1])
    if shown and params.get("limit") == "min":
        return texts("params.limit_min", locale, value=shown[0])
    return texts("params.limit_list", locale, values=texts("params.list_or", locale).join(shown))


def prepare(
    texts: Texts, key: str, params: Mapping[str, Any], locale: str
) -> tuple[str, dict[str, Any]] | None:
    """(locale key, formatted params) for a resolver note, or None for any other note. Model ids in
    `model` may already be display names (render_notes maps them first)."""
    if key not in KEYS:
        return None
    p = dict(params)
    field = str(p.get("field", ""))
    for name in ("requested", "used", "from", "to"):
        if name in p:
            p[name] = value_text(texts, locale, field, p[name])
    if p.get("model") in ModelId._value2member_map_:
        p["model"] = texts(f"model.{p['model']}", locale)
    if "allowed_field" in params:
        p["limit"] = _limit(texts, locale, params)
        p["with_value"] = value_text(texts, locale, str(p.get("with_field", "")), p.get("with_value"))
    values = params.get("values")
    if isinstance(values, Mapping):
        joiner = "params.list_and" if key == explain.OTHER_MODEL_OFFERS else "params.list_sep"
        p["values"] = _values(texts, locale, values, joiner)
    if key == explain.OTHER_MODEL_OFFERS:
        p["button"] = texts("params.button_other_model", locale, model=p.get("model", ""))
    return f"params.{key}", p


def other_model_buttons(texts: Texts, job_id: str, locale: str, notes: Iterable[Note]) -> tuple[Button, ...]:
    """The one-tap "run it on the other model" button when a note says the other model offers what
    was asked (Action.OTHER_MODEL on this job: it runs the job's asked values on the other model)."""
    for note in notes:
        model = note.params.get("model")
        if note.key == explain.OTHER_MODEL_OFFERS and model in ModelId._value2member_map_:
            name = texts(f"model.{model}", locale)
            return (
                Button(texts("params.button_other_model", locale, model=name), Action.OTHER_MODEL, job_id),
            )
    return ()
