"""Pure create-retry strategies ("reflection"): what to change after a 500, 6009 or 6010 answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import catalog
from .errors import ImaApiError
from .models import Note, Product, ResolvedTask
from .params import value_score

MAX_ATTEMPTS = 3
DEGRADE_ORDER = ("resolution", "duration")

REFLECTION_DEGRADED = "reflection_degraded"
REFLECTION_COMPLETED = "reflection_completed"
REFLECTION_RESELECTED = "reflection_reselected"


@dataclass(frozen=True)
class Plan:
    """The inputs of one create attempt: user overrides (grown by reflection) and rules ruled out."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    exclude_rules: frozenset[int] = frozenset()

    def with_values(self, values: Mapping[str, Any]) -> Plan:
        merged = {k: v for k, v in self.overrides.items() if catalog.norm_key(k) not in _folded(values)}
        merged.update(values)
        return Plan(merged, self.exclude_rules)


def _folded(values: Mapping[str, Any]) -> set[str]:
    return {catalog.norm_key(k) for k in values}


def _lower_values(product: Product, name: str, current: Any) -> list[Any]:
    """Values a request may carry for `name` (rule values if priced) scoring below `current`, highest first."""
    now = value_score(name, current)
    if now is None:
        return []
    lower = [(value_score(name, v), v) for v in catalog.choices(product, name)]
    return [v for s, v in sorted((t for t in lower if t[0] is not None and t[0] < now), key=lambda t: -t[0])]


def _has_exact_rule(product: Product, params: Mapping[str, Any]) -> bool:
    rule = catalog.select_rule(product.credit_rules, params)
    if rule is None or rule.is_default:
        return False
    priced = [k for k in rule.conditions if catalog.norm_key(k) not in catalog.UNPRICED_KEYS]
    return all(catalog.same_value(catalog.lookup(params, k)[1], rule.conditions[k]) for k in priced)


def degrade(product: Product, resolved: ResolvedTask, plan: Plan) -> tuple[Plan, Note] | None:
    """After a 500: one step down in resolution, else in duration, whether the current value came from
    the user or from the defaults. A step that some rule prices with the other values is preferred over
    one that is not. None if both are at the bottom."""
    steps = []
    for name in DEGRADE_ORDER:
        present, current = catalog.lookup(resolved.params, name)
        for value in _lower_values(product, name, current) if present else ():
            steps.append((name, current, value))
    if not steps:
        return None
    priced = [s for s in steps if _has_exact_rule(product, {**resolved.params, s[0]: s[2]})]
    name, current, chosen = (priced or steps)[0]
    note = Note(REFLECTION_DEGRADED, {"field": name, "from": current, "to": chosen})
    return plan.with_values({name: chosen}), note


def complete_missing(product: Product, resolved: ResolvedTask, plan: Plan) -> tuple[Plan, Note] | None:
    """After a 6009: add the cheapest rule's conditions that the sent parameters lack. None if none."""
    cheapest = catalog.cheapest_rule(product.credit_rules)
    if cheapest is None:
        return None
    missing = {k: v for k, v in cheapest.conditions.items() if not catalog.lookup(resolved.params, k)[0]}
    if not missing:
        return None
    return plan.with_values(missing), Note(REFLECTION_COMPLETED, {"fields": sorted(missing)})


def reselect(product: Product, resolved: ResolvedTask, plan: Plan) -> tuple[Plan, Note] | None:
    """After a 6010: rule out the rejected rule, pick the best remaining one for the same parameters
    and pin its conditions. None when no other rule is left."""
    rejected = resolved.rule.attribute_id
    exclude = plan.exclude_rules | {rejected}
    rule = catalog.select_rule(product.credit_rules, resolved.params, exclude=exclude)
    if rule is None or rule.attribute_id == rejected:
        return None
    pinned = Plan(plan.with_values(dict(rule.conditions)).overrides, frozenset(exclude))
    return pinned, Note(REFLECTION_RESELECTED, {"attribute_id": rule.attribute_id, "previous": rejected})


def error_code(error: ImaApiError) -> int | None:
    try:
        return int(str(error.code))
    except (TypeError, ValueError):
        return None


def reflect(
    error: ImaApiError, product: Product, resolved: ResolvedTask, plan: Plan
) -> tuple[Plan, Note] | None:
    """The plan for the next attempt after `error`, with a Note saying what changed; None to give up
    (401, 4008, 4014, 6006 and unknown codes are never retried)."""
    strategy = {500: degrade, 6009: complete_missing, 6010: reselect}.get(error_code(error) or 0)
    return strategy(product, resolved, plan) if strategy else None
