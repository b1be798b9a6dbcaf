"""Pure reflection strategies: what the next create attempt changes after 500, 6009 and 6010."""

from __future__ import annotations

import pytest

from ima import ModelId, TaskType
from ima.catalog import parse_products, select_leaf
from ima.errors import api_error_for
from ima.params import resolve
from ima.reflection import MAX_ATTEMPTS, Plan, complete_missing, degrade, reflect, reselect
from tests.ima.contract_server import load_tree
from tests.ima.test_catalog import leaf, rule, tags

T2V = TaskType.TEXT_TO_VIDEO


def pro():
    return select_leaf(parse_products(load_tree()), ModelId.PRO)


def test_three_attempts_at_most() -> None:
    assert MAX_ATTEMPTS == 3


def test_500_degrades_resolution_even_when_it_came_from_the_defaults() -> None:
    product = pro()
    resolved = resolve(product, T2V, {})
    plan, note = degrade(product, resolved, Plan())
    assert plan.overrides == {"resolution": "720P"}
    assert (note.key, note.params) == (
        "reflection_degraded",
        {"field": "resolution", "from": "1080P", "to": "720P"},
    )
    assert resolve(product, T2V, plan.overrides).rule.attribute_id == 7102


def test_500_steps_to_duration_when_a_lower_resolution_has_no_price_there() -> None:
    product = pro()
    plan = Plan({"resolution": "720P"})
    resolved = resolve(product, T2V, plan.overrides)  # 10 s at 720P; 480P is priced only at 5 s
    plan, note = degrade(product, resolved, plan)
    assert note.params == {"field": "duration", "from": "10", "to": "5"}
    assert plan.overrides == {"resolution": "720P", "duration": "5"}


def test_500_keeps_the_users_other_overrides_and_replaces_case_variants() -> None:
    product = pro()
    plan = Plan({"Resolution": "1080p", "aspect_ratio": "9:16"})
    plan, _ = degrade(product, resolve(product, T2V, plan.overrides), plan)
    assert plan.overrides == {"aspect_ratio": "9:16", "resolution": "720P"}


def test_500_at_the_bottom_gives_up() -> None:
    product = pro()
    resolved = resolve(product, T2V, {"resolution": "480p", "duration": 5})
    assert degrade(product, resolved, Plan({"resolution": "480p", "duration": 5})) is None


def test_500_degrades_unpriced_fields_through_the_form_options() -> None:
    product = leaf([rule(1, 5, default="enabled")], [tags("resolution", "1080p", "480p", "720p", "1080p")])
    plan, note = degrade(product, resolve(product, T2V, {}), Plan())
    assert plan.overrides == {"resolution": "720p"} and note.params["to"] == "720p"


def cheap_mode_leaf():
    return leaf(
        [
            rule(1, 30, duration="5", resolution="720p"),
            rule(2, 10, duration="5", resolution="480p", mode="std"),
        ],
        [tags("duration", 5, 5), tags("resolution", "720p", "480p", "720p")],
    )


def test_6009_adds_what_the_cheapest_rule_has_and_the_request_lacks() -> None:
    product = cheap_mode_leaf()
    resolved = resolve(product, T2V, {})
    assert "mode" not in resolved.params
    plan, note = complete_missing(product, resolved, Plan())
    assert plan.overrides == {"mode": "std"}
    assert (note.key, note.params) == ("reflection_completed", {"fields": ["mode"]})
    again = resolve(product, T2V, plan.overrides)
    assert again.params["mode"] == "std" and again.rule.attribute_id == 1


def test_6009_with_nothing_missing_gives_up() -> None:
    product = pro()
    assert complete_missing(product, resolve(product, T2V, {}), Plan()) is None


def test_6010_rules_out_the_rejected_rule_and_pins_the_next() -> None:
    product = leaf([rule(11, 5, duration="5"), rule(12, 5, duration="5"), rule(13, 9, duration="10")],
                   [tags("duration", 5, 5, 10)])  # fmt: skip
    first = resolve(product, T2V, {})
    assert first.rule.attribute_id == 11
    plan, note = reselect(product, first, Plan())
    assert plan.exclude_rules == {11}
    assert (note.key, note.params) == ("reflection_reselected", {"attribute_id": 12, "previous": 11})
    second = resolve(product, T2V, plan.overrides, exclude_rules=plan.exclude_rules)
    assert second.rule.attribute_id == 12 and second.params["duration"] == "5"
    plan, note = reselect(product, second, plan)
    assert plan.exclude_rules == {11, 12} and note.params["attribute_id"] == 13


def test_6010_with_no_rule_left_gives_up() -> None:
    product = leaf([rule(11, 5, duration="5")], [tags("duration", 5, 5)])
    assert reselect(product, resolve(product, T2V, {}), Plan()) is None


@pytest.mark.parametrize("code", [401, 4008, 4014, 6006, 400, 429])
def test_other_codes_are_never_retried(code: int) -> None:
    product = pro()
    assert reflect(api_error_for(code, "x"), product, resolve(product, T2V, {}), Plan()) is None


@pytest.mark.parametrize(("code", "key"), [(500, "reflection_degraded"), ("6010", "reflection_reselected")])
def test_reflect_dispatches_on_the_business_code(code: int | str, key: str) -> None:
    product = pro()
    step = reflect(api_error_for(code, "x"), product, resolve(product, T2V, {}), Plan())
    assert step is not None and step[1].key == key
