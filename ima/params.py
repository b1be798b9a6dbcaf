"""Pure parameter resolution: what the user said + preferences + form defaults → rule → inner params."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from . import catalog, combos, explain
from .aliases import match_model_id
from .catalog import norm_key, same_value
from .errors import ModelNotFound, NoMatchingRule
from .models import ModelId, Note, Product, ResolvedTask, TaskType
from .values import fit_value, value_score

__all__ = ["RESERVED", "VIDEO_ALLOWLIST", "fit_value", "read_layer", "resolve", "value_score"]

# Keys a video override may name besides the leaf's own fields (the newer runtime's allowlist, §4.8).
VIDEO_ALLOWLIST = frozenset(
    {
        "n",
        "model",
        "size",
        "resolution",
        "duration",
        "quality",
        "aspect_ratio",
        "sound",
        "mode",
        "generate_audio",
        "prompt_optimizer",
        "fast_pretreatment",
        "audio",
    }
)
# Set by the payload itself, or a rule marker: never taken from overrides.
RESERVED = frozenset({"prompt", "input_images", "cast", "default", "src_img_url"})

VALUE_ADJUSTED = explain.VALUE_ADJUSTED
VALUE_UNKNOWN_DROPPED = explain.VALUE_UNKNOWN_DROPPED


def _put(params: dict[str, Any], key: str, value: Any) -> None:
    """Set `key`, replacing an existing key that differs only in case."""
    for existing in [k for k in params if norm_key(k) == norm_key(key) and k != key]:
        del params[existing]
    params[key] = value


def _leaf_keys(product: Product) -> dict[str, str]:
    """Folded key → canonical spelling, for every backend key the leaf itself names."""
    known: dict[str, str] = {}
    for key in catalog.rule_keys(product.credit_rules):
        known[norm_key(key)] = key
    for entry in product.form_config:
        known[norm_key(entry["field"])] = str(entry["field"])
        if entry.get("is_ui_virtual"):
            known[norm_key(catalog.virtual_target(entry))] = catalog.virtual_target(entry)
    return known


def _virtual_ui(product: Product) -> dict[str, Mapping[str, Any]]:
    """Folded UI field → its virtual entry, for every virtual group's UI fields."""
    found = {}
    for entry in product.form_config:
        if entry.get("is_ui_virtual"):
            for ui in entry.get("ui_params") or ():
                name = str(ui.get("field") or ui.get("id") or "")
                if name:
                    found[norm_key(name)] = entry
    return found


def _options(raw: Mapping[str, Any]) -> list[Any]:
    return [o.get("value") for o in raw.get("options") or () if isinstance(o, Mapping) and "value" in o]


def read_layer(product: Product, given: Mapping[str, Any], notes: list[Note]) -> dict[str, Any]:
    """The backend values of one layer of overrides (as given, not yet fitted), keyed by the leaf's own
    spelling. Virtual UI fields are mapped to their backend parameter (a given backend value wins);
    `generate_audio` becomes `audio` on a leaf with an `audio` field; unknown and reserved keys are
    dropped with a note; None means "not given"."""
    leaf_keys, virtual = _leaf_keys(product), _virtual_ui(product)
    known = {k: k for k in VIDEO_ALLOWLIST} | leaf_keys
    has_audio = any(norm_key(e["field"]) == "audio" for e in product.form_config)
    out: dict[str, Any] = {}
    ui_given: dict[int, dict[str, tuple[Any, Any]]] = {}
    for raw_key, value in given.items():
        if value is None:
            continue
        key = norm_key(raw_key)
        if key == "generate_audio" and has_audio:
            if any(norm_key(k) == "audio" and v is not None for k, v in given.items()):
                continue
            key = "audio"
        if key in RESERVED:
            notes.append(Note(VALUE_UNKNOWN_DROPPED, {"field": str(raw_key), "value": value}))
        elif key in virtual and key not in leaf_keys:
            ui_given.setdefault(id(virtual[key]), {})[key] = (raw_key, value)
        elif key in known:
            _put(out, known[key], value)
        else:
            notes.append(Note(VALUE_UNKNOWN_DROPPED, {"field": str(raw_key), "value": value}))
    _apply_virtual(product, ui_given, out, notes)
    return out


def _apply_virtual(
    product: Product,
    ui_given: Mapping[int, Mapping[str, tuple[Any, Any]]],
    out: dict[str, Any],
    notes: list[Note],
) -> None:
    """Maps UI values given for virtual fields to their backend parameter (a given backend value wins)."""
    for entry in product.form_config:
        given = ui_given.get(id(entry))
        if not given:
            continue
        ui_values = {}
        for ui in entry.get("ui_params") or ():
            name = str(ui.get("field") or ui.get("id") or "")
            raw_key, value = given.get(norm_key(name), (None, None))
            if raw_key is None:
                ui_values[name] = ui.get("value")  # the rest of a multi-field group keeps its defaults
                continue
            offered = _options(ui)
            ui_values[name] = fit_value(name, value, offered, ui.get("value"))
            if not same_value(ui_values[name], value):
                notes.append(explain.adjusted(str(raw_key), value, ui_values[name], offered))
        target = catalog.virtual_target(entry)
        found, mapped = catalog.map_virtual(entry, ui_values)
        if not found or mapped is None:
            for raw_key, value in given.values():
                notes.append(Note(VALUE_UNKNOWN_DROPPED, {"field": str(raw_key), "value": value}))
        elif not catalog.lookup(out, target)[0]:
            _put(out, target, mapped)


# Recent answers of resolve(), oldest first (evicted first): the same request is resolved at admission (the pre-notice)
# and again at create, and bursts repeat a few combinations. Keyed by the product object's identity (the
# entry keeps it alive, so the id cannot be reused while the entry exists) and the frozen inputs.
MEMO_SIZE = 256
_memo: OrderedDict[tuple[Any, ...], tuple[Product, ResolvedTask]] = OrderedDict()


def _frozen(layer: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    # repr keeps 10 and "10", True and "true" apart, as resolution does
    return tuple(sorted((str(k), repr(v)) for k, v in (layer or {}).items()))


def resolve(
    product: Product,
    task_type: TaskType,
    said: Mapping[str, Any],
    *,
    preferred: Mapping[str, Any] | None = None,
    pinned: Mapping[str, Any] | None = None,
    exclude_rules: Iterable[int] = (),
) -> ResolvedTask:
    """The same as `resolve_fresh`, answered from a small memo when the same product object gets the same
    inputs again (each answer carries its own copy of the params)."""
    excluded = tuple(sorted(set(exclude_rules)))
    key = (id(product), str(task_type), _frozen(said), _frozen(preferred), _frozen(pinned), excluded)
    hit = _memo.get(key)
    if hit is not None:
        return replace(hit[1], params=dict(hit[1].params))
    resolved = resolve_fresh(
        product, task_type, said, preferred=preferred, pinned=pinned, exclude_rules=excluded
    )
    _memo[key] = (product, resolved)
    if len(_memo) > MEMO_SIZE:
        _memo.popitem(last=False)
    return replace(resolved, params=dict(resolved.params))


def resolve_fresh(
    product: Product,
    task_type: TaskType,
    said: Mapping[str, Any],
    *,
    preferred: Mapping[str, Any] | None = None,
    pinned: Mapping[str, Any] | None = None,
    exclude_rules: Iterable[int] = (),
) -> ResolvedTask:
    """The inner parameters and credit rule for a request on `product`.

    `said` holds what the user said in this request; `preferred` their saved or chat/config defaults
    (honoured when they fit, below anything said); `pinned` values reflection fixed after an error
    (above everything). The priced values come from `combos.search` (keep what was said when a rule
    prices it together, else change as few said values as possible, each to its nearest priced value;
    fill the rest from preferences, then form defaults). Unpriced values (aspect ratio, audio, …) are
    each the nearest offered value to the highest layer that gives one.

    Notes (ima.explain) say every change to a said or preferred value in terms of the product, and every
    dropped key. Raises ModelNotFound for a leaf of another model and NoMatchingRule when the leaf has
    no usable rule."""
    model = match_model_id(product.model_id)
    if model is None:
        raise ModelNotFound(f"Leaf {product.id!r} is not an allowed model", model_id=product.model_id)
    defaults = catalog.form_defaults(product)
    notes: list[Note] = []
    user = read_layer(product, said, notes)
    prefs = read_layer(product, preferred or {}, notes)
    pins = read_layer(product, pinned or {}, [])
    combo = combos.search(product, [pins, user, prefs, defaults], exclude=exclude_rules)
    if combo is None:
        raise NoMatchingRule(f"Leaf {product.id!r} has no usable credit rule", product=product.id)
    params = dict(defaults)
    for layer in (prefs, user, pins):
        for key, value in layer.items():
            _, default = catalog.lookup(defaults, key)
            _put(params, key, fit_value(key, value, catalog.choices(product, key), default))
    for key, value in combo.values.items():
        _put(params, key, value)
    for key in [k for k in params if norm_key(k) == catalog.DEFAULT_MARKER]:
        del params[key]
    notes += explain.changes(product, ModelId(model), user, prefs, params)
    return ResolvedTask(
        task_type=TaskType(task_type),
        model_id=ModelId(model),
        product=product,
        rule=combo.rule,
        params=params,
        notes=tuple(notes),
    )
