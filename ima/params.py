"""Pure parameter resolution: form defaults + user overrides → nearest offered values → rule → inner params."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import catalog
from .aliases import match_model_id
from .catalog import norm_key, norm_value, same_value
from .errors import ModelNotFound, NoMatchingRule
from .models import ModelId, Note, Product, ResolvedTask, TaskType

# Keys a video override may name besides the leaf's own fields (the newer runtime's allowlist, §4.8).
VIDEO_ALLOWLIST = frozenset(
    {"n", "model", "size", "resolution", "duration", "quality", "aspect_ratio", "sound", "mode",
     "generate_audio", "prompt_optimizer", "fast_pretreatment", "audio"}
)  # fmt: skip
# Set by the payload itself, or a rule marker: never taken from overrides.
RESERVED = frozenset({"prompt", "input_images", "cast", "default", "src_img_url"})
_RESOLUTION_WORDS = {"sd": 480, "hd": 720, "fhd": 1080, "full hd": 1080, "qhd": 1440, "uhd": 2160}
_K_HEIGHT = {1: 1080, 2: 1440, 4: 2160, 8: 4320}
_AUTO_WORDS = frozenset({"auto", "adaptive"})
_TRUE = frozenset({"true", "on", "yes", "1", "enabled"})
_FALSE = frozenset({"false", "off", "no", "0", "disabled"})

VALUE_ADJUSTED = "value_adjusted"
VALUE_UNKNOWN_DROPPED = "value_unknown_dropped"


def _number(text: str) -> float | None:
    match = re.search(r"\d+(?:\.\d+)?", text)
    return float(match.group()) if match else None


def value_score(field: str, value: Any) -> float | None:
    """A number that orders values of `field` for "nearest": pixel height for resolutions, seconds for
    durations, log(width/height) for aspect ratios, the number itself otherwise. None if unparsable."""
    if isinstance(value, bool):
        return None
    text = str(value).strip().lower().replace("×", "x").replace("*", "x")
    key = norm_key(field)
    if key in {"resolution", "quality", "size"}:
        if text in _RESOLUTION_WORDS:
            return float(_RESOLUTION_WORDS[text])
        if m := re.fullmatch(r"(\d+)\s*x\s*(\d+)", text):
            return float(min(int(m.group(1)), int(m.group(2))))
        if m := re.fullmatch(r"(\d+)\s*k", text):
            return float(_K_HEIGHT.get(int(m.group(1)), int(m.group(1)) * 540))
        if m := re.fullmatch(r"(\d+)\s*[pi]?", text):
            return float(m.group(1))
        return None
    if key == "aspect_ratio":
        if m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*[:/x]\s*(\d+(?:\.\d+)?)", text):
            w, h = float(m.group(1)), float(m.group(2))
            return math.log(w / h) if w > 0 and h > 0 else None
        return None
    if isinstance(value, int | float):
        return float(value)
    return _number(text) if re.fullmatch(r"\d+(?:\.\d+)?\s*[a-z秒]*", text) else None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = norm_value(value)
    return True if text in _TRUE else False if text in _FALSE else None


def fit_value(field: str, value: Any, offered: Sequence[Any], default: Any = None) -> Any:
    """The offered value (its own spelling and type) equal to `value` case-insensitively, else the
    nearest offered one, else `default` when nothing is comparable. With nothing offered, `value` itself
    (a bool-ish string becomes a bool when the default is a bool)."""
    if not offered:
        if isinstance(default, bool) and not isinstance(value, bool) and _as_bool(value) is not None:
            return _as_bool(value)
        return value
    for option in offered:
        if same_value(option, value):
            return option
    flag = _as_bool(value)
    if flag is not None:
        for option in offered:
            if isinstance(option, bool) and option is flag:
                return option
    if norm_value(value) in _AUTO_WORDS:
        for option in offered:
            if norm_value(option) in _AUTO_WORDS:
                return option
    wanted = value_score(field, value)
    scored = [(value_score(field, o), i, o) for i, o in enumerate(offered)]
    scored = [(s, i, o) for s, i, o in scored if s is not None]
    if wanted is not None and scored:
        # Ties go to the default, else to the lower value: cheaper and more likely to be accepted.
        return min(scored, key=lambda t: (abs(t[0] - wanted), not same_value(t[2], default), t[0], t[1]))[2]
    if default is not None and any(same_value(default, o) for o in offered):
        return next(o for o in offered if same_value(default, o))
    return offered[0]


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


def _virtual_ui(product: Product) -> dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """Folded UI field → (virtual entry, ui param) for every virtual group's UI fields."""
    found = {}
    for entry in product.form_config:
        if entry.get("is_ui_virtual"):
            for ui in entry.get("ui_params") or ():
                name = str(ui.get("field") or ui.get("id") or "")
                if name:
                    found[norm_key(name)] = (entry, ui)
    return found


def _options(raw: Mapping[str, Any]) -> list[Any]:
    return [o.get("value") for o in raw.get("options") or () if isinstance(o, Mapping) and "value" in o]


def _adjusted(field: str, requested: Any, used: Any, offered: Iterable[Any]) -> Note:
    return Note(
        VALUE_ADJUSTED, {"field": field, "requested": requested, "used": used, "options": list(offered)}
    )


def _read_overrides(
    product: Product, overrides: Mapping[str, Any], defaults: Mapping[str, Any], notes: list[Note]
) -> tuple[dict[str, Any], dict[str, Any], dict[int, dict[str, tuple[Any, Any]]]]:
    """(fitted backend values, requested values by field, virtual UI values by entry); drops are noted."""
    leaf_keys, virtual = _leaf_keys(product), _virtual_ui(product)
    known = {k: k for k in VIDEO_ALLOWLIST} | leaf_keys
    has_audio = any(norm_key(e["field"]) == "audio" for e in product.form_config)
    user: dict[str, Any] = {}
    requested: dict[str, Any] = {}
    ui_given: dict[int, dict[str, tuple[Any, Any]]] = {}
    for raw_key, value in overrides.items():
        if value is None:
            continue
        key = norm_key(raw_key)
        if key == "generate_audio" and has_audio:
            if any(norm_key(k) == "audio" and v is not None for k, v in overrides.items()):
                continue
            key = "audio"
        if key in virtual and key not in leaf_keys and key not in RESERVED:
            ui_given.setdefault(id(virtual[key][0]), {})[key] = (raw_key, value)
        elif key in known and key not in RESERVED:
            field = known[key]
            _, default = catalog.lookup(defaults, field)
            _put(user, field, fit_value(field, value, catalog.choices(product, field), default))
            requested[field] = value
        else:
            notes.append(Note(VALUE_UNKNOWN_DROPPED, {"field": str(raw_key), "value": value}))
    return user, requested, ui_given


def _apply_virtual(
    product: Product,
    ui_given: Mapping[int, Mapping[str, tuple[Any, Any]]],
    user: dict[str, Any],
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
                notes.append(_adjusted(str(raw_key), value, ui_values[name], offered))
        target = catalog.virtual_target(entry)
        found, mapped = catalog.map_virtual(entry, ui_values)
        if not found or mapped is None:
            for raw_key, value in given.values():
                notes.append(Note(VALUE_UNKNOWN_DROPPED, {"field": str(raw_key), "value": value}))
        elif not catalog.lookup(user, target)[0]:
            _put(user, target, mapped)


def resolve(
    product: Product,
    task_type: TaskType,
    overrides: Mapping[str, Any],
    *,
    exclude_rules: Iterable[int] = (),
) -> ResolvedTask:
    """The inner parameters and credit rule for `overrides` on `product`, with a Note for every value
    that was changed (`value_adjusted`) or dropped (`value_unknown_dropped`). Never silent.

    Merge order (low → high): form defaults, the rule's conditions, the user's values for keys the
    rule does not price. Raises ModelNotFound for a leaf of another model and NoMatchingRule when the
    leaf has no usable rule."""
    model = match_model_id(product.model_id)
    if model is None:
        raise ModelNotFound(f"Leaf {product.id!r} is not an allowed model", model_id=product.model_id)
    defaults = catalog.form_defaults(product)
    notes: list[Note] = []
    user, requested, ui_given = _read_overrides(product, overrides, defaults, notes)
    _apply_virtual(product, ui_given, user, notes)
    merged = dict(defaults)
    for key, value in user.items():
        _put(merged, key, value)
    rule = catalog.select_rule(product.credit_rules, merged, preferred=user.keys(), exclude=exclude_rules)
    if rule is None:
        raise NoMatchingRule(f"Leaf {product.id!r} has no usable credit rule", product=product.id)
    params = dict(defaults)
    priced = {norm_key(k) for k in rule.conditions if norm_key(k) not in catalog.UNPRICED_KEYS}
    for key, value in rule.conditions.items():
        _put(params, key, value)
    for key, value in user.items():
        if norm_key(key) not in priced:
            _put(params, key, value)
    for key in [k for k in params if norm_key(k) == catalog.DEFAULT_MARKER]:
        del params[key]
    for field, value in requested.items():
        present, used = catalog.lookup(params, field)
        if present and not same_value(used, value):
            notes.append(_adjusted(field, value, used, catalog.choices(product, field)))
    return ResolvedTask(
        task_type=TaskType(task_type),
        model_id=ModelId(model),
        product=product,
        rule=rule,
        params=params,
        notes=tuple(notes),
    )
