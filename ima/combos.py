"""Pure search over priced combinations: which credit rule (and which priced values) a request gets.

A *combination* is one value for every priced key (the keys credit rules are conditioned on, minus the
unpriced `aspect_ratio`/`audio`). Every non-default rule prices exactly its own combination; a
`default: enabled` rule prices any combination of offered values (contract §4.8)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import catalog
from .catalog import lookup, norm_key, same_value
from .models import CreditRule, Product
from .values import distance, fit_value, value_score

# Which said value is kept when two can't be kept together: what the user sees longest first.
KEY_PRIORITY = ("duration", "resolution", "quality", "size", "mode")


@dataclass(frozen=True)
class Combo:
    """The chosen priced values (rule spelling) and the rule the server will compute for them."""

    values: Mapping[str, Any]
    rule: CreditRule


def priced_keys(rules: Iterable[CreditRule]) -> list[str]:
    """The priced keys (first spelling seen), `KEY_PRIORITY` first, then in rule order."""
    keys = catalog.rule_keys(rules)
    rank = {k: i for i, k in enumerate(KEY_PRIORITY)}
    return sorted(keys, key=lambda k: rank.get(norm_key(k), len(rank)))


def _plain(rule: CreditRule) -> bool:
    return not rule.is_default and any(norm_key(k) not in catalog.UNPRICED_KEYS for k in rule.conditions)


def exact_rule(rules: Sequence[CreditRule], params: Mapping[str, Any]) -> CreditRule | None:
    """The first non-default rule all of whose priced conditions equal `params` (what the server computes)."""
    for rule in rules:
        if _plain(rule) and all(
            same_value(lookup(params, k)[1], v) and lookup(params, k)[0]
            for k, v in rule.conditions.items()
            if norm_key(k) not in catalog.UNPRICED_KEYS
        ):
            return rule
    return None


def _first_given(key: str, layers: Sequence[Mapping[str, Any]]) -> tuple[bool, Any]:
    for layer in layers:
        present, value = lookup(layer, key)
        if present and value is not None:
            return True, value
    return False, None


def _fill(product: Product, key: str, layers: Sequence[Mapping[str, Any]]) -> Any:
    """The highest layer's value for `key`, fitted to what the leaf offers; None when no layer has one."""
    present, value = _first_given(key, layers)
    if not present:
        return None
    return fit_value(key, value, catalog.choices(product, key), _first_given(key, layers[-1:])[1])


def _rank(values: Mapping[str, Any], keys: Sequence[str], layers: Sequence[Mapping[str, Any]]) -> tuple:
    parts: list[Any] = []
    for layer in layers:
        given = [(k, v) for k in keys for present, v in [lookup(layer, k)] if present and v is not None]
        got = [lookup(values, k)[1] for k, _ in given]
        changed = tuple(g is None or not same_value(g, v) for (_, v), g in zip(given, got, strict=True))
        parts += [
            sum(changed),
            changed,
            tuple(distance(k, v, g) for (k, v), g in zip(given, got, strict=True)),
        ]
    scores = []
    for k in keys:
        score = value_score(k, lookup(values, k)[1])
        scores.append(math.inf if score is None else score)
    return (*parts, tuple(scores))


def search(
    product: Product, layers: Sequence[Mapping[str, Any]], *, exclude: Iterable[int] = ()
) -> Combo | None:
    """The combination to send, from `layers` ordered most important first (reflection pins, what the
    user said, preferences, form defaults; the LAST layer is taken as the form defaults).

    Order of preference between priced combinations (first difference decides):
      1. for each layer in turn: fewest of its values changed; then keep the values of higher-priority
         keys (`KEY_PRIORITY`: duration, resolution, …, then rule order); then each changed value as
         near as possible to the one given (by its score: seconds, pixel height, ratio);
      2. lower values (by score, in key-priority order);
      3. a non-default rule over the default rule's open combination, then rule order.
    Keys a rule does not condition on are filled from the layers, fitted to the offered values. Rules in
    `exclude` are never used. None when no usable rule is left."""
    excluded = set(exclude)
    usable = [r for r in product.credit_rules if r.attribute_id not in excluded]
    keys = priced_keys(usable)
    default = next((r for r in usable if r.is_default), None)
    candidates: list[tuple[tuple, dict[str, Any]]] = []
    for index, rule in enumerate(r for r in usable if _plain(r)):
        values = {k: _fill(product, k, layers) for k in keys if not lookup(rule.conditions, k)[0]}
        values.update({k: v for k, v in rule.conditions.items() if norm_key(k) not in catalog.UNPRICED_KEYS})
        candidates.append(((*_rank(values, keys, layers), 0, index), values))
    if default is not None:
        values = {k: _fill(product, k, layers) for k in keys}
        candidates.append(((*_rank(values, keys, layers), 1, 0), values))
    if not candidates:
        return None
    _, best = min(candidates, key=lambda c: c[0])
    chosen = {k: v for k, v in best.items() if v is not None}
    rule = exact_rule(usable, chosen) or default
    if rule is None:  # only reachable with a plain candidate, whose own rule always matches exactly
        raise AssertionError("a plain combination always has its rule")
    return Combo(chosen, rule)
