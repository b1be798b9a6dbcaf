"""Pure notes that say, in terms of the product, why a said or preferred value was changed.

Notes are data (key + params); the bot renders them from its locale files and the `ima` command from
ima/cli/cli_texts.json. Values in params are raw (as said, or in the rule's spelling): renderers add
units and display spellings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import catalog
from .catalog import lookup, norm_key, same_value
from .combos import priced_keys
from .models import ModelId, Note, Product
from .values import fit_value, value_score

VALUE_ADJUSTED = "value_adjusted"  # a virtual UI value fitted to its options: field, requested, used, options
VALUE_UNKNOWN_DROPPED = "value_unknown_dropped"  # field, value
# The model offers no such value at all: model, field, requested, used, source ("said" | "preferred").
VALUE_NOT_OFFERED = "value_not_offered"
# The model offers the value, but not with another value that was kept: model, field, requested, used,
# with_field, with_value (the kept value), allowed (the with_field values priced with `requested`,
# ascending), limit ("max" | "min" | "list": allowed all below, all above, or neither), source.
COMBINATION_NOT_OFFERED = "combination_not_offered"
# Not offered at all, and the nearest offered value is not offered with another kept value either:
# the same params as COMBINATION_NOT_OFFERED, with `allowed` the values of `field` priced with
# `with_value` (so "doesn't offer 20 s, and offers 1080P only up to 10 s").
VALUE_NOT_OFFERED_WITH = "value_not_offered_with"
# Changed to fit the other settings (e.g. values pinned after an IMA error): model, field, requested, used.
VALUE_CHANGED = "value_changed"
# The other model keeps every said value this one changed: model (the other), values {field: requested}.
OTHER_MODEL_OFFERS = "other_model_offers"


def adjusted(field: str, requested: Any, used: Any, offered: Iterable[Any]) -> Note:
    return Note(
        VALUE_ADJUSTED, {"field": field, "requested": requested, "used": used, "options": list(offered)}
    )


def _condition(rule_conditions: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    return lookup(rule_conditions, key)


def _sorted(field: str, values: Iterable[Any]) -> list[Any]:
    unique: dict[str, Any] = {}
    for v in values:
        unique.setdefault(catalog.norm_value(v), v)
    scored = [(value_score(field, v), i, v) for i, v in enumerate(unique.values())]
    return [v for _, _, v in sorted(scored, key=lambda t: (t[0] is None, t[0] or 0.0, t[1]))]


def _limit(field: str, allowed: list[Any], kept: Any) -> str:
    score, scores = value_score(field, kept), [value_score(field, a) for a in allowed]
    if score is None or any(s is None for s in scores):
        return "list"
    if all(s < score for s in scores):  # type: ignore[operator]
        return "max"
    if all(s > score for s in scores):  # type: ignore[operator]
        return "min"
    return "list"


def _blocked(
    product: Product,
    field: str,
    requested: Any,
    kept_layers: Iterable[Mapping[str, Any]],
    params: Mapping[str, Any],
) -> tuple[str, Any, list[Any]] | None:
    """(kept key, its value, values of that key priced with `requested`) for the first kept value that
    no rule prices together with `requested`; None when no single kept value explains the change."""
    plain = [r for r in product.credit_rules if not r.is_default]
    with_requested = [
        r
        for r in plain
        if same_value(_condition(r.conditions, field)[1], requested) and _condition(r.conditions, field)[0]
    ]
    for layer in kept_layers:
        for key in priced_keys(product.credit_rules):
            present, value = lookup(layer, key)
            if not present or norm_key(key) == norm_key(field):
                continue
            if not same_value(lookup(params, key)[1], value):
                continue  # this value was changed too: it does not block
            priced = [_condition(r.conditions, key) for r in with_requested]
            if any(has and same_value(v, value) for has, v in priced):
                continue
            return key, value, _sorted(key, (v for has, v in priced if has))
    return None


def changes(
    product: Product,
    model: ModelId,
    said: Mapping[str, Any],
    preferred: Mapping[str, Any],
    params: Mapping[str, Any],
) -> list[Note]:
    """A note for every said value, then every preferred value not overridden by a said one, that
    `params` does not carry as given."""
    notes = []
    for source, layer in (("said", said), ("preferred", preferred)):
        for field, requested in layer.items():
            if source == "preferred" and lookup(said, field)[0]:
                continue
            present, used = lookup(params, field)
            if not present or same_value(used, requested):
                continue
            base = {
                "model": model.value,
                "field": field,
                "requested": requested,
                "used": used,
                "source": source,
            }
            offered = catalog.choices(product, field)
            if offered and not any(same_value(o, requested) for o in offered):
                notes.append(_not_offered(product, base, offered, (said, preferred), params))
                continue
            why = _blocked(product, field, requested, (said, preferred), params)
            if why is None:
                notes.append(Note(VALUE_CHANGED, base))
                continue
            key, value, allowed = why
            notes.append(
                Note(
                    COMBINATION_NOT_OFFERED,
                    {
                        **base,
                        "with_field": key,
                        "with_value": value,
                        "allowed": allowed,
                        "allowed_field": key,
                        "limit": _limit(key, allowed, value),
                    },
                )
            )
    return notes


def _not_offered(
    product: Product,
    base: Mapping[str, Any],
    offered: list[Any],
    layers: tuple[Mapping[str, Any], ...],
    params: Mapping[str, Any],
) -> Note:
    """VALUE_NOT_OFFERED, or VALUE_NOT_OFFERED_WITH when the nearest offered value was not used
    because a kept value is not priced with it."""
    field, requested = str(base["field"]), base["requested"]
    nearest = fit_value(field, requested, offered)
    why = None if same_value(nearest, base["used"]) else _blocked(product, field, nearest, layers, params)
    if why is None:
        return Note(VALUE_NOT_OFFERED, dict(base))
    key, value, _ = why
    plain = [r.conditions for r in product.credit_rules if not r.is_default]
    allowed = _sorted(
        field,
        (lookup(c, field)[1] for c in plain if lookup(c, field)[0] and same_value(lookup(c, key)[1], value)),
    )
    return Note(
        VALUE_NOT_OFFERED_WITH,
        {
            **base,
            "with_field": key,
            "with_value": value,
            "allowed": allowed,
            "allowed_field": field,
            "limit": _limit(field, allowed, requested),
        },
    )


_CHANGE_KEYS = frozenset({VALUE_NOT_OFFERED, VALUE_NOT_OFFERED_WITH, COMBINATION_NOT_OFFERED, VALUE_CHANGED})


def said_changes(notes: Iterable[Note]) -> list[Note]:
    """The notes that report a change to a value the user said."""
    return [n for n in notes if n.key in _CHANGE_KEYS and n.params.get("source") == "said"]


def other_model_offers(here: Iterable[Note], there: Iterable[Note], other: ModelId) -> Note | None:
    """An OTHER_MODEL_OFFERS note when `here` changed some said value and the `other` model's resolution
    of the same request (`there`) changed none: the other model offers exactly what was asked."""
    changed = said_changes(here)
    if not changed or said_changes(there):
        return None
    return Note(
        OTHER_MODEL_OFFERS,
        {"model": other.value, "values": {n.params["field"]: n.params["requested"] for n in changed}},
    )
