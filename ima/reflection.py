"""Pure create-retry strategies ("reflection"): what to change after a 500, 6009 or 6010 answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import catalog, combos, params
from .errors import ImaApiError
from .models import Note, Product, ResolvedTask, TaskType
from .values import value_score

MAX_ATTEMPTS = 3
DEGRADE_ORDER = ("resolution", "duration")

REFLECTION_DEGRADED = "reflection_degraded"
REFLECTION_COMPLETED = "reflection_completed"
REFLECTION_RESELECTED = "reflection_reselected"


@dataclass(frozen=True)
class Plan:
    """The inputs of one create attempt: what the user said, their preferences, the values reflection
    pinned after an error (these win over everything), and the rules ruled out."""

    said: Mapping[str, Any] = field(default_factory=dict)
    preferred: Mapping[str, Any] = field(default_factory=dict)
    pinned: Mapping[str, Any] = field(default_factory=dict)
    exclude_rules: frozenset[int] = frozenset()

    def pin(self, values: Mapping[str, Any]) -> Plan:
        """This plan with `values` pinned (a key differing only in case is replaced)."""
        folded = {catalog.norm_key(k) for k in values}
        merged = {k: v for k, v in self.pinned.items() if catalog.norm_key(k) not in folded}
        merged.update(values)
        return replace(self, pinned=merged)

    def resolve(self, product: Product, task_type: TaskType) -> ResolvedTask:
        return params.resolve(
            product,
            task_type,
            self.said,
            preferred=self.preferred,
            pinned=self.pinned,
            exclude_rules=self.exclude_rules,
        )


def _lower_values(product: Product, name: str, current: Any) -> list[Any]:
    """Values a request may carry for `name` (rule values if priced) scoring below `current`, highest first."""
    now = value_score(name, current)
    if now is None:
        return []
    lower = [(value_score(name, v), v) for v in catalog.choices(product, name)]
    return [v for s, v in sorted((t for t in lower if t[0] is not None and t[0] < now), key=lambda t: -t[0])]


def degrade(product: Product, resolved: ResolvedTask, plan: Plan) -> tuple[Plan, Note] | None:
    """After a 500: one step down in resolution, else in duration, whether the current value came from
    the user or from the defaults. A step that a non-default rule prices with the other values is
    preferred over one that is not. None if both are at the bottom."""
    steps = []
    for name in DEGRADE_ORDER:
        present, current = catalog.lookup(resolved.params, name)
        for value in _lower_values(product, name, current) if present else ():
            steps.append((name, current, value))
    if not steps:
        return None
    priced = [s for s in steps if combos.exact_rule(product.credit_rules, {**resolved.params, s[0]: s[2]})]
    name, current, chosen = (priced or steps)[0]
    note = Note(REFLECTION_DEGRADED, {"field": name, "from": current, "to": chosen})
    return plan.pin({name: chosen}), note


def complete_missing(product: Product, resolved: ResolvedTask, plan: Plan) -> tuple[Plan, Note] | None:
    """After a 6009 (contract §8.3, as the vendor): every condition of the cheapest rule whose key the
    user did not say (and reflection did not pin yet) counts as missing and is pinned to the cheapest
    rule's value, so a request built only from defaults gets the cheapest rule's conditions and one
    retry. None when nothing is missing."""
    cheapest = catalog.cheapest_rule(product.credit_rules)
    if cheapest is None:
        return None
    given = {
        catalog.norm_key(k) for k in (*plan.said, *params.read_layer(product, plan.said, []), *plan.pinned)
    }
    missing = {k: v for k, v in cheapest.conditions.items() if catalog.norm_key(k) not in given}
    if not missing:
        return None
    return plan.pin(missing), Note(REFLECTION_COMPLETED, {"fields": sorted(missing), "values": dict(missing)})


def reselect(product: Product, resolved: ResolvedTask, plan: Plan) -> tuple[Plan, Note] | None:
    """After a 6010: rule out the rejected rule, pick the best remaining one for the same request and
    pin its conditions. None when no other rule is left."""
    rejected = resolved.rule.attribute_id
    narrowed = replace(plan, exclude_rules=plan.exclude_rules | {rejected})
    combo = combos.search(
        product,
        [
            plan.pinned,
            params.read_layer(product, plan.said, []),
            params.read_layer(product, plan.preferred, []),
            catalog.form_defaults(product),
        ],
        exclude=narrowed.exclude_rules,
    )
    if combo is None:
        return None
    conditions = {
        k: v for k, v in combo.rule.conditions.items() if catalog.norm_key(k) not in catalog.UNPRICED_KEYS
    }
    note = Note(REFLECTION_RESELECTED, {"attribute_id": combo.rule.attribute_id, "previous": rejected})
    return narrowed.pin(conditions), note


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
