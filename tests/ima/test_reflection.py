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


def test_three_attempts_at_most_and_a_plan_never_changes_in_place() -> None:
    import dataclasses

    assert MAX_ATTEMPTS == 3
    plan = Plan({"duration": 5})
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.pinned = {}  # type: ignore[misc]
    assert plan.pin({"resolution": "720p"}).pinned == {"resolution": "720p"} and plan.pinned == {}


def test_500_degrades_resolution_even_when_it_came_from_the_defaults() -> None:
    product = pro()
    resolved = resolve(product, T2V, {})
    plan, note = degrade(product, resolved, Plan())
    assert plan.pinned == {"resolution": "720P"} and plan.said == {}
    assert (note.key, note.params) == (
        "reflection_degraded",
        {"field": "resolution", "from": "1080P", "to": "720P"},
    )
    assert plan.resolve(product, T2V).rule.attribute_id == 7102


def test_500_steps_to_duration_when_a_lower_resolution_has_no_price_there() -> None:
    product = pro()
    plan = Plan(pinned={"resolution": "720P"})
    resolved = plan.resolve(product, T2V)  # 10 s at 720P; 480P is priced only at 5 s
    plan, note = degrade(product, resolved, plan)
    assert note.params == {"field": "duration", "from": "10", "to": "5"}
    assert plan.pinned == {"resolution": "720P", "duration": "5"}


def test_500_pins_over_case_variants_and_keeps_what_the_user_said() -> None:
    product = pro()
    plan = Plan({"Resolution": "1080p", "aspect_ratio": "9:16"}, pinned={"RESOLUTION": "1080P"})
    plan, _ = degrade(product, plan.resolve(product, T2V), plan)
    assert plan.pinned == {"resolution": "720P"}
    assert plan.said == {"Resolution": "1080p", "aspect_ratio": "9:16"}
    again = plan.resolve(product, T2V)
    assert again.params["resolution"] == "720P" and again.params["aspect_ratio"] == "9:16"


def test_500_at_the_bottom_gives_up() -> None:
    product = pro()
    plan = Plan({"resolution": "480p", "duration": 5})
    assert degrade(product, plan.resolve(product, T2V), plan) is None


def test_500_degrades_unpriced_fields_through_the_form_options() -> None:
    product = leaf([rule(1, 5, default="enabled")], [tags("resolution", "1080p", "480p", "720p", "1080p")])
    plan, note = degrade(product, resolve(product, T2V, {}), Plan())
    assert plan.pinned == {"resolution": "720p"} and note.params["to"] == "720p"


def cheap_mode_leaf():
    return leaf(
        [
            rule(1, 30, duration="5", resolution="720p"),
            rule(2, 10, duration="5", resolution="480p", mode="std"),
        ],
        [tags("duration", 5, 5), tags("resolution", "720p", "480p", "720p")],
    )


def test_6009_pins_every_condition_of_the_cheapest_rule_the_user_did_not_say() -> None:
    product = cheap_mode_leaf()
    resolved = resolve(product, T2V, {})
    assert "mode" not in resolved.params
    plan, note = complete_missing(product, resolved, Plan())
    assert plan.pinned == {"duration": "5", "resolution": "480p", "mode": "std"}
    assert (note.key, note.params["fields"]) == ("reflection_completed", ["duration", "mode", "resolution"])
    assert note.params["values"] == {"duration": "5", "resolution": "480p", "mode": "std"}
    again = plan.resolve(product, T2V)
    assert again.params["mode"] == "std" and again.rule.attribute_id == 2


def test_6009_on_a_defaults_only_request_retries_once_with_the_cheapest_rule() -> None:
    product = pro()  # defaults 10 s / 1080P; cheapest rule 7105 is 5 s / 480P
    plan, _ = complete_missing(product, resolve(product, T2V, {}), Plan())
    assert plan.pinned == {"duration": "5", "resolution": "480P"}
    second = plan.resolve(product, T2V)
    assert second.rule.attribute_id == 7105
    assert complete_missing(product, second, plan) is None  # nothing left to add: one retry only


def test_6009_never_overrides_what_the_user_said() -> None:
    product = pro()
    plan = Plan({"RESOLUTION": "1080p"})
    plan, note = complete_missing(product, plan.resolve(product, T2V), plan)
    assert plan.pinned == {"duration": "5"} and note.params["fields"] == ["duration"]
    assert plan.resolve(product, T2V).rule.attribute_id == 7103


def test_6009_with_everything_said_gives_up() -> None:
    product = pro()
    plan = Plan({"duration": 10, "resolution": "720p"})
    assert complete_missing(product, plan.resolve(product, T2V), plan) is None


def test_6009_ignores_the_default_rule_as_cheapest() -> None:
    product = leaf(
        [rule(9, 1, default="enabled"), rule(1, 30, duration="10"), rule(2, 20, duration="5")],
        [tags("duration", "10", "5", "10")],
    )
    plan, _ = complete_missing(product, resolve(product, T2V, {}), Plan())
    assert plan.pinned == {"duration": "5"} and "default" not in plan.resolve(product, T2V).params


def test_6010_rules_out_the_rejected_rule_and_pins_the_next() -> None:
    product = leaf(
        [rule(11, 5, duration="5"), rule(12, 5, duration="5"), rule(13, 9, duration="10")],
        [tags("duration", 5, 5, 10)],
    )
    first = resolve(product, T2V, {})
    assert first.rule.attribute_id == 11
    plan, note = reselect(product, first, Plan())
    assert plan.exclude_rules == {11} and plan.pinned == {"duration": "5"}
    assert (note.key, note.params) == ("reflection_reselected", {"attribute_id": 12, "previous": 11})
    second = plan.resolve(product, T2V)
    assert second.rule.attribute_id == 12 and second.params["duration"] == "5"
    plan, note = reselect(product, second, plan)
    assert plan.exclude_rules == {11, 12} and note.params["attribute_id"] == 13
    assert plan.pinned == {"duration": "10"}


def test_6010_pins_the_new_rules_conditions_over_the_users_values() -> None:
    product = leaf(
        [rule(1, 5, duration="5", resolution="720p"), rule(2, 9, duration="10", resolution="480p")],
        [tags("duration", 5, 5, 10), tags("resolution", "720p", "480p", "720p")],
    )
    plan = Plan({"duration": 5})
    plan, _ = reselect(product, plan.resolve(product, T2V), plan)
    assert plan.pinned == {"duration": "10", "resolution": "480p"}
    again = plan.resolve(product, T2V)
    assert again.rule.attribute_id == 2 and again.params["duration"] == "10"


def test_6010_with_no_rule_left_gives_up() -> None:
    product = leaf([rule(11, 5, duration="5")], [tags("duration", 5, 5)])
    assert reselect(product, resolve(product, T2V, {}), Plan()) is None


@pytest.mark.parametrize("code", [401, 4008, 4014, 6006, 400, 429])
def test_other_codes_are_never_retried(code: int) -> None:
    product = pro()
    assert reflect(api_error_for(code, "x"), product, resolve(product, T2V, {}), Plan()) is None


@pytest.mark.parametrize(
    ("code", "key"),
    [(500, "reflection_degraded"), ("6010", "reflection_reselected"), (6009, "reflection_completed")],
)
def test_reflect_dispatches_on_the_business_code(code: int | str, key: str) -> None:
    product = pro()
    step = reflect(api_error_for(code, "x"), product, resolve(product, T2V, {}), Plan())
    assert step is not None and step[1].key == key
