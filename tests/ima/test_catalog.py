"""Pure catalog and parameter resolution: tree walk, leaf choice, defaults, rules, nearest values, notes."""

from __future__ import annotations

from typing import Any

import pytest

from ima import ModelId, ModelNotAllowed, ModelNotFound, TaskType, normalize_model_id
from ima.catalog import (
    choices,
    form_defaults,
    norm_value,
    parse_leaf,
    parse_products,
    select_leaf,
)
from ima.combos import exact_rule
from ima.models import CreditRule, Product
from ima.params import fit_value, resolve, value_score
from tests.ima.contract_server import load_tree

T2V = TaskType.TEXT_TO_VIDEO


def rule(attribute_id: int, points: int, **attributes: Any) -> dict[str, Any]:
    return {"attribute_id": attribute_id, "points": points, "attributes": attributes}


def tags(field: str, value: Any, *options: Any) -> dict[str, Any]:
    return {
        "field": field,
        "type": "tags",
        "value": value,
        "options": [{"label": str(o), "value": o} for o in options],
    }


def leaf(rules: list[dict[str, Any]], form: list[dict[str, Any]], *, model_id: str = "ima-pro") -> Product:
    return parse_leaf(
        {
            "id": f"{model_id}-x",
            "type": "3",
            "name": "Leaf",
            "model_id": model_id,
            "credit_rules": rules,
            "form_config": form,
        }
    )


def products() -> list[Product]:
    return parse_products(load_tree(), category="text_to_video")


# ---- model names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ima-pro", ModelId.PRO),
        ("  IMA-PRO-FAST ", ModelId.FAST),
        ("Ima Sevio 1.0", ModelId.PRO),
        ("Ima Sevio 1.0-Fast", ModelId.FAST),
        ("ima  sevio 1.0 fast", ModelId.FAST),
        ("seedance", ModelId.PRO),
        ("Seedance 2.0 Fast", ModelId.FAST),
        ("pro", ModelId.PRO),
        ("fast", ModelId.FAST),
        ("专业版", ModelId.PRO),
        ("高质量", ModelId.PRO),
        ("极速", ModelId.FAST),
        ("快速", ModelId.FAST),
        ("ima_pro_fast", ModelId.FAST),
    ],
)
def test_model_names_and_aliases_normalise(name: str, expected: ModelId) -> None:
    assert normalize_model_id(name) is expected


def test_other_models_are_refused_naming_the_two_allowed() -> None:
    with pytest.raises(ModelNotAllowed) as info:
        normalize_model_id("kling")
    assert "ima-pro" in info.value.message and "ima-pro-fast" in info.value.message
    assert "Ima Sevio 1.0-Fast" in info.value.hint
    assert info.value.details["allowed"] == ["ima-pro", "ima-pro-fast"]


# ---- tree walk and leaf choice -----------------------------------------------------------------


def test_tree_walk_keeps_only_allowed_leaves_below_a_type_1_root() -> None:
    found = products()
    assert [p.id for p in found] == ["ima-pro-2025", "ima-pro-fast-v3", "ima-pro-v7"]
    assert all(p.category == "text_to_video" for p in found)


def test_leaf_type_is_compared_as_string_and_groups_are_not_leaves() -> None:
    tree = [
        {
            "id": "g",
            "type": "2",
            "model_id": "ima-pro",
            "children": [
                {
                    "id": "a",
                    "type": "3",
                    "model_id": "ima-pro",
                    "name": "A",
                    "credit_rules": [rule(1, 1, duration="5")],
                },
                {"id": "b", "type": "4", "model_id": "ima-pro", "name": "B"},
            ],
        }
    ]
    assert [p.id for p in parse_products(tree)] == ["a"]


def test_last_leaf_wins_and_raw_model_id_is_kept() -> None:
    chosen = select_leaf(products(), ModelId.PRO)
    assert chosen.id == "ima-pro-v7"
    older = select_leaf(products(), ModelId.PRO, version="ima-pro-2025")
    assert older.model_id == "IMA-PRO"  # raw value, matched case-insensitively


def test_missing_model_or_version_is_model_not_found() -> None:
    with pytest.raises(ModelNotFound):
        select_leaf(products(), ModelId.FAST, version="nope")
    with pytest.raises(ModelNotFound):
        select_leaf(products()[:1], ModelId.FAST)


def test_unusable_rules_are_skipped() -> None:
    product = leaf(
        [
            rule(0, 5, duration="5"),
            {"attribute_id": 3, "points": 1, "attributes": {}},
            rule(9, 5, duration="5"),
        ],
        [],
    )
    assert [r.attribute_id for r in product.credit_rules] == [9]


# ---- defaults ----------------------------------------------------------------------------------


def test_form_defaults_skip_null_values() -> None:
    pro = select_leaf(products(), ModelId.PRO)
    assert form_defaults(pro) == {
        "duration": 10,
        "resolution": "1080p",
        "aspect_ratio": "16:9",
        "audio": True,
    }


def virtual_leaf() -> Product:
    virtual = {
        "field": "mode",
        "is_ui_virtual": True,
        "value": "std",
        "ui_params": [
            {
                "field": "quality",
                "value": "720p",
                "options": [{"label": "720p", "value": "720p"}, {"label": "1080p", "value": "1080p"}],
            }
        ],
        "value_mapping": {
            "target_param": "mode",
            "mapping_rules": [
                {"source_values": {"quality": "720p"}, "target_value": "std"},
                {"source_values": {"quality": "1080p"}, "target_value": "pro"},
            ],
        },
    }
    return leaf([rule(1, 10, mode="std"), rule(2, 30, mode="pro")], [virtual, tags("duration", 5, 5, 10)])


def test_virtual_field_default_comes_from_its_ui_params() -> None:
    assert form_defaults(virtual_leaf()) == {"mode": "std", "duration": 5}


def test_virtual_ui_override_is_mapped_before_rule_matching() -> None:
    resolved = resolve(virtual_leaf(), T2V, {"quality": "1080P"})
    assert resolved.params["mode"] == "pro" and "quality" not in resolved.params
    assert resolved.rule.attribute_id == 2
    assert resolved.notes == ()


def test_backend_field_wins_over_its_virtual_ui_field() -> None:
    resolved = resolve(virtual_leaf(), T2V, {"quality": "1080p", "mode": "std"})
    assert resolved.params["mode"] == "std" and resolved.rule.attribute_id == 1


def test_unknown_virtual_ui_value_becomes_nearest_with_a_note() -> None:
    resolved = resolve(virtual_leaf(), T2V, {"quality": "4K"})
    assert resolved.params["mode"] == "pro"
    assert [(n.key, n.params["used"]) for n in resolved.notes] == [("value_adjusted", "1080p")]


# ---- values and rules --------------------------------------------------------------------------


def test_values_compare_case_insensitively_and_across_types() -> None:
    assert norm_value("1080P") == norm_value("1080p")
    assert norm_value(5) == norm_value("5") == norm_value(5.0) == norm_value("5s")
    assert norm_value(True) == norm_value("true") != norm_value("TRUE ") + "x"
    assert norm_value("16:9") != norm_value("9:16")


def test_default_rule_is_the_fallback_and_never_exact_matches() -> None:
    rules = [CreditRule(1, 5, {"default": "enabled"}), CreditRule(2, 9, {"duration": "10"})]
    assert exact_rule(rules, {"duration": 10}).attribute_id == 2
    assert exact_rule(rules, {"duration": 15}) is None and exact_rule(rules, {}) is None


def test_rule_matching_ignores_aspect_ratio_and_audio() -> None:
    rules = [CreditRule(1, 5, {"duration": "5", "aspect_ratio": "1:1"}), CreditRule(2, 7, {"duration": "10"})]
    assert exact_rule(rules, {"duration": 5, "aspect_ratio": "16:9", "audio": False}).attribute_id == 1


def test_defaults_resolve_to_the_rule_with_its_own_spelling() -> None:
    resolved = resolve(select_leaf(products(), ModelId.PRO), T2V, {})
    assert resolved.rule.attribute_id == 7104 and resolved.credit == 160
    assert resolved.params == {"duration": "10", "resolution": "1080P", "aspect_ratio": "16:9", "audio": True}
    assert resolved.notes == ()


def test_numbers_in_rules_match_string_form_values() -> None:
    fast = select_leaf(products(), ModelId.FAST)
    resolved = resolve(fast, T2V, {"duration": 10})
    assert resolved.rule.attribute_id == 8002
    assert resolved.params["duration"] == 10  # the rule's own type


def test_an_offered_value_no_plain_rule_prices_is_kept_under_the_default_rule() -> None:
    fast = select_leaf(products(), ModelId.FAST)
    resolved = resolve(fast, T2V, {"resolution": "480p"})
    # The default rule prices any offered combination (contract §13.4): the user's 480p is kept.
    assert resolved.rule.attribute_id == 8001 and resolved.credit == 12
    assert resolved.params["resolution"] == "480p" and resolved.notes == ()


def test_a_combination_a_plain_rule_prices_is_not_sent_under_the_default_rule() -> None:
    fast = select_leaf(products(), ModelId.FAST)
    resolved = resolve(fast, T2V, {"resolution": "720P", "duration": "10"})
    assert resolved.rule.attribute_id == 8002 and resolved.params["duration"] == 10


def test_default_rule_is_used_when_no_priced_key_matches() -> None:
    product = leaf(
        [rule(1, 12, default="enabled"), rule(2, 26, duration=10, resolution="720p")],
        [tags("duration", "5", "5", "10"), tags("resolution", "480p", "480p", "720p")],
    )
    resolved = resolve(product, T2V, {})
    assert resolved.rule.attribute_id == 1 and resolved.credit == 12
    assert resolved.params == {"duration": "5", "resolution": "480p"}


# ---- nearest supported values and notes --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "requested", "offered", "expected"),
    [
        ("resolution", "4K", ["480p", "720p", "1080P"], "1080P"),
        ("resolution", "1440p", ["480p", "720p"], "720p"),
        ("resolution", "hd", ["480p", "720p", "1080p"], "720p"),
        ("resolution", "1920x1080", ["480p", "720p", "1080p"], "1080p"),
        ("duration", 12, ["5", "10", "15"], "10"),
        ("duration", "8s", [5, 10], 10),
        ("duration", 7.5, [5, 10], 5),
        ("aspect_ratio", "2:1", ["16:9", "9:16", "1:1"], "16:9"),
        ("aspect_ratio", "3:4", ["16:9", "9:16", "1:1"], "9:16"),
        ("aspect_ratio", "adaptive", ["16:9", "auto"], "auto"),
        ("audio", "off", [True, False], False),
    ],
)
def test_fit_value_picks_the_nearest_offered_value(
    field: str, requested: Any, offered: list[Any], expected: Any
) -> None:
    assert fit_value(field, requested, offered) == expected
    assert type(fit_value(field, requested, offered)) is type(expected)


def test_fit_value_without_options_passes_through_and_coerces_bools() -> None:
    assert fit_value("seed", 42, []) == 42
    assert fit_value("audio", "false", [], default=True) is False


def test_value_score_orders_resolutions_by_height() -> None:
    assert (
        value_score("resolution", "480p")
        < value_score("resolution", "720P")
        < value_score("resolution", "4k")
    )
    assert value_score("resolution", "banana") is None


def test_unsupported_override_becomes_nearest_with_a_note() -> None:
    pro = select_leaf(products(), ModelId.PRO)
    resolved = resolve(pro, T2V, {"resolution": "4K", "duration": 15, "aspect_ratio": "4:3"})
    assert resolved.params["resolution"] == "1080P" and resolved.params["duration"] == "10"
    assert resolved.params["aspect_ratio"] == "1:1"
    notes = {n.params["field"]: n.params for n in resolved.notes}
    assert notes["resolution"] == {
        "model": "ima-pro",
        "field": "resolution",
        "requested": "4K",
        "used": "1080P",
        "source": "said",
    }
    assert notes["duration"]["used"] == "10" and notes["aspect_ratio"]["used"] == "1:1"
    assert all(n.key == "value_not_offered" for n in resolved.notes)


def test_matching_override_gets_no_note_and_is_sent_in_the_rules_spelling() -> None:
    pro = select_leaf(products(), ModelId.PRO)
    resolved = resolve(pro, T2V, {"resolution": "720p", "duration": "5"})
    assert resolved.rule.attribute_id == 7101
    assert resolved.params["resolution"] == "720P" and resolved.params["duration"] == "5"
    assert resolved.notes == ()


def test_unpriced_choices_use_the_form_options() -> None:
    pro = select_leaf(products(), ModelId.PRO)
    assert choices(pro, "aspect_ratio") == ["16:9", "9:16", "1:1", "adaptive"]
    assert choices(pro, "resolution") == ["720P", "1080P", "480P"]


def test_unknown_keys_are_dropped_with_a_note_and_default_never_sent() -> None:
    pro = select_leaf(products(), ModelId.PRO)
    resolved = resolve(pro, T2V, {"colour": "red", "default": "enabled", "mode": "pro", "seed": 7})
    assert "colour" not in resolved.params and "default" not in resolved.params
    assert resolved.params["mode"] == "pro" and resolved.params["seed"] == 7  # allowlist and form field
    dropped = [n.params for n in resolved.notes if n.key == "value_unknown_dropped"]
    assert dropped == [{"field": "colour", "value": "red"}, {"field": "default", "value": "enabled"}]


def test_generate_audio_is_rewritten_to_audio() -> None:
    pro = select_leaf(products(), ModelId.PRO)
    resolved = resolve(pro, T2V, {"generate_audio": False})
    assert resolved.params["audio"] is False and "generate_audio" not in resolved.params


def test_explicit_audio_wins_over_generate_audio() -> None:
    pro = select_leaf(products(), ModelId.PRO)
    assert resolve(pro, T2V, {"generate_audio": False, "audio": True}).params["audio"] is True


def test_override_of_a_rule_key_the_rule_rejects_is_noted() -> None:
    product = leaf(
        [
            rule(1, 5, duration="5", resolution="720p"),
            rule(2, 9, duration="10", resolution="720p"),
            rule(3, 9, duration="5", resolution="1080p"),
        ],
        [tags("duration", 5, 5, 10), tags("resolution", "720p", "720p", "1080p")],
    )
    resolved = resolve(product, T2V, {"duration": 10, "resolution": "1080p"})
    assert resolved.rule.attribute_id == 2
    assert [(n.key, n.params["field"], n.params["used"]) for n in resolved.notes] == [
        ("combination_not_offered", "resolution", "720p")
    ]
    assert resolved.notes[0].params | {} == {
        "model": "ima-pro",
        "field": "resolution",
        "requested": "1080p",
        "used": "720p",
        "source": "said",
        "with_field": "duration",
        "with_value": 10,
        "allowed": ["5"],
        "allowed_field": "duration",
        "limit": "max",
    }


def test_none_overrides_mean_not_given() -> None:
    pro = select_leaf(products(), ModelId.PRO)
    assert resolve(pro, T2V, {"duration": None}).params["duration"] == "10"
