"""Pure product-catalog logic: walk the tree, pick the leaf, form defaults, compare values, pick the rule."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .aliases import match_model_id
from .errors import ModelNotFound
from .models import CreditRule, ModelId, Product

LEAF_TYPE = "3"
# Sevio rules never price these; they are left out of rule matching on purpose (contract §12.6).
UNPRICED_KEYS = frozenset({"aspect_ratio", "audio"})
DEFAULT_MARKER = "default"

_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?|秒)$")


# ---- tree walk ---------------------------------------------------------------------------------


def _walk(nodes: Any) -> Iterator[Mapping[str, Any]]:
    """Every node depth-first in list order, recursing into `children` of any node type."""
    if isinstance(nodes, Mapping):
        nodes = [nodes]
    if not isinstance(nodes, list):
        return
    for node in nodes:
        if isinstance(node, Mapping):
            yield node
            yield from _walk(node.get("children"))


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def parse_rule(raw: Any) -> CreditRule | None:
    """A CreditRule, or None for an unusable item (no attributes, attribute_id 0 or missing)."""
    if not isinstance(raw, Mapping):
        return None
    attribute_id, points = _as_int(raw.get("attribute_id")), _as_int(raw.get("points"))
    attributes = raw.get("attributes")
    if not attribute_id or points is None or not isinstance(attributes, Mapping) or not attributes:
        return None
    return CreditRule(attribute_id=attribute_id, points=points, attributes=dict(attributes))


def parse_leaf(node: Mapping[str, Any], *, category: str = "") -> Product:
    """A Product from a version leaf (`type == "3"`); unusable rules and form entries are skipped."""
    rules = tuple(r for r in (parse_rule(x) for x in node.get("credit_rules") or ()) if r is not None)
    form = tuple(dict(e) for e in node.get("form_config") or () if isinstance(e, Mapping) and e.get("field"))
    return Product(
        id=str(node.get("id") or ""),
        model_id=str(node.get("model_id") or ""),
        name=str(node.get("name") or ""),
        credit_rules=rules,
        form_config=form,
        category=category,
    )


def parse_products(data: Any, *, category: str = "") -> list[Product]:
    """The allowed (`ima-pro`/`ima-pro-fast`) version leaves of a product-list `data` tree, in tree order.

    `type` is compared as a string ("3"); an integer 3 is tolerated."""
    leaves = []
    for node in _walk(data):
        if str(node.get("type", "")).strip() == LEAF_TYPE and match_model_id(str(node.get("model_id") or "")):
            leaves.append(parse_leaf(node, category=category))
    return leaves


def select_leaf(products: Sequence[Product], model_id: ModelId, *, version: str | None = None) -> Product:
    """The LAST leaf whose normalised `model_id` is `model_id` (and whose `id` is `version`, if given).

    Raises ModelNotFound."""
    found = [
        p for p in products if match_model_id(p.model_id) == model_id and (version is None or p.id == version)
    ]
    if not found:
        what = f"{model_id.value} version {version!r}" if version else model_id.value
        raise ModelNotFound(f"The product list has no {what}", model_id=model_id.value, version=version)
    return found[-1]


# ---- values ------------------------------------------------------------------------------------


def norm_key(key: Any) -> str:
    return str(key).strip().lower()


def norm_value(value: Any) -> str:
    """The comparison form of a value: case-insensitive, `5` == `"5"` == `5.0` == `"5s"`,
    `True` == `"true"` (the vendor's SEV quirk where they differ is not reproduced)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and math.isfinite(value):
        return _number_text(float(value))
    text = str(value).strip().lower().replace("×", "x")
    seconds = _SECONDS.match(text)
    if seconds:
        text = seconds.group(1)
    if _NUMBER.match(text):
        return _number_text(float(text))
    return text


def _number_text(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def same_value(a: Any, b: Any) -> bool:
    return norm_value(a) == norm_value(b)


# ---- form defaults -----------------------------------------------------------------------------


def _ui_field(ui: Mapping[str, Any]) -> str:
    return str(ui.get("field") or ui.get("id") or "")


def virtual_target(entry: Mapping[str, Any]) -> str:
    """The backend parameter a virtual entry writes: `value_mapping.target_param`, else its `field`."""
    mapping = entry.get("value_mapping") or {}
    return str((mapping.get("target_param") if isinstance(mapping, Mapping) else None) or entry["field"])


def map_virtual(entry: Mapping[str, Any], ui_values: Mapping[str, Any]) -> tuple[bool, Any]:
    """(found, target value) of the first mapping rule whose `source_values` all equal `ui_values`."""
    mapping = entry.get("value_mapping") or {}
    for rule in (mapping.get("mapping_rules") or []) if isinstance(mapping, Mapping) else []:
        source = rule.get("source_values") or {}
        if source and all(k in ui_values and same_value(ui_values[k], v) for k, v in source.items()):
            return True, rule.get("target_value")
    return False, None


def form_defaults(product: Product) -> dict[str, Any]:
    """The default inner parameters from `form_config` (contract §4.3), virtual fields resolved."""
    params: dict[str, Any] = {}
    for entry in product.form_config:
        field = str(entry["field"])
        if entry.get("is_ui_virtual"):
            ui_values = {
                _ui_field(ui): ui.get("value") for ui in entry.get("ui_params") or () if _ui_field(ui)
            }
            found, value = map_virtual(entry, ui_values) if ui_values else (False, None)
            if found and value is not None:
                params[virtual_target(entry)] = value
                continue
        if entry.get("value") is not None:
            params[field] = entry["value"]
    return params


def form_entry(product: Product, field: str) -> Mapping[str, Any] | None:
    return next((e for e in product.form_config if str(e["field"]) == field), None)


def offered_values(product: Product, field: str) -> list[Any]:
    """The values the leaf offers for `field`: its form options, else the values its rules use."""
    entry = form_entry(product, field)
    options = [o.get("value") for o in (entry or {}).get("options") or () if isinstance(o, Mapping)]
    if options:
        return [v for v in options if v is not None]
    return rule_values(product.credit_rules, field)


def choices(product: Product, field: str) -> list[Any]:
    """The values a request may carry for `field`: the rule values when rules price the field and no
    `default: enabled` rule catches the rest (only a priced value can match a rule), else the form
    options (plus rule values); [] when the leaf does not constrain the field. Rule values of the
    unpriced keys (`aspect_ratio`, `audio`) never constrain them."""
    priced = [] if norm_key(field) in UNPRICED_KEYS else rule_values(product.credit_rules, field)
    if priced and not any(r.is_default for r in product.credit_rules):
        return priced
    seen: dict[str, Any] = {}
    for value in offered_values(product, field) + priced:
        seen.setdefault(norm_value(value), value)
    return list(seen.values())


def rule_values(rules: Iterable[CreditRule], key: str) -> list[Any]:
    """The distinct values (first spelling seen) the rules give `key`."""
    seen: dict[str, Any] = {}
    for rule in rules:
        for k, v in rule.conditions.items():
            if norm_key(k) == norm_key(key):
                seen.setdefault(norm_value(v), v)
    return list(seen.values())


# ---- credit rules (matching itself is ima/combos.py: a search over priced combinations) --------


def rule_keys(rules: Iterable[CreditRule]) -> list[str]:
    """The keys rules are matched on: every condition key of any rule, minus the unpriced ones."""
    keys: dict[str, None] = {}
    for rule in rules:
        for k in rule.conditions:
            if norm_key(k) not in UNPRICED_KEYS:
                keys.setdefault(k, None)
    return list(keys)


def lookup(params: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    """(present, value) of `key` in `params`, keys compared case-insensitively."""
    for k, v in params.items():
        if norm_key(k) == norm_key(key):
            return True, v
    return False, None


def cheapest_rule(rules: Sequence[CreditRule]) -> CreditRule | None:
    """The non-default rule with the fewest points (first on ties), else the cheapest of all."""
    plain = [r for r in rules if not r.is_default and r.conditions] or list(rules)
    return min(plain, key=lambda r: r.points) if plain else None
