"""One test per way of sending IMA a wrong request that an earlier mutation run showed no test noticed
(issue 10), plus the client side of "an unreadable 500 to create leaves the outcome unknown"."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from ima import ModelId, TaskType
from ima._transport import _as_code, decode_envelope
from ima.catalog import cheapest_rule, lookup, map_virtual, parse_leaf, rule_keys
from ima.errors import CreateOutcomeUnknown, ImaApiError, ImaTransportError, NoMatchingRule
from ima.models import CreditRule
from ima.params import fit_value, resolve
from ima.reflection import Plan, reselect
from tests.ima.combo_table import bundled
from tests.ima.test_catalog import leaf, rule, tags

T2V = TaskType.TEXT_TO_VIDEO


def holed():
    return next(p for t, p in bundled().items() if t.startswith("holed"))


def test_lookup_ignores_the_case_and_spaces_of_keys() -> None:
    assert lookup({"Duration ": 5}, "DURATION") == (True, 5)
    assert lookup({"duration": 5}, "resolution") == (False, None)
    resolved = resolve(holed(), T2V, {"DURATION": 15, "Resolution": "480P"})
    assert resolved.rule.attribute_id == 1103


def test_the_default_rule_is_never_the_cheapest_while_a_priced_rule_exists() -> None:
    rules = [
        CreditRule(9, 1, {"default": "enabled"}),
        CreditRule(1, 5, {"duration": "5"}),
        CreditRule(2, 3, {"duration": "10"}),
        CreditRule(3, 3, {"duration": "15"}),
    ]
    assert cheapest_rule(rules).attribute_id == 2  # fewest points, first on a tie
    assert cheapest_rule(rules[:1]).attribute_id == 9
    assert cheapest_rule([]) is None


def test_audio_and_aspect_ratio_are_never_priced_keys() -> None:
    rules = [
        CreditRule(1, 5, {"Audio": "true", "aspect_ratio": "16:9", "duration": "5", "default": "enabled"})
    ]
    assert rule_keys(rules) == ["duration"]


def test_the_default_marker_is_never_sent() -> None:
    product = leaf(
        [rule(9, 4, default="enabled"), rule(1, 5, duration="5")], [tags("duration", "10", "5", "10")]
    )
    resolved = resolve(product, T2V, {"default": "enabled"})
    assert resolved.rule.attribute_id == 9 and "default" not in {k.lower() for k in resolved.params}
    plan, _ = reselect(product, resolve(product, T2V, {"duration": 5}), Plan({"duration": 5}))
    assert "default" not in {k.lower() for k in plan.pinned}
    assert "default" not in {k.lower() for k in plan.resolve(product, T2V).params}


def test_a_form_field_named_like_the_default_marker_is_not_sent_either() -> None:
    product = leaf([rule(1, 5, duration="5")], [tags("duration", "5", "5"), tags("Default", "enabled")])
    assert "default" not in {k.lower() for k in resolve(product, T2V, {}).params}


def test_case_variants_of_a_key_are_sent_once() -> None:
    resolved = resolve(holed(), T2V, {"Resolution": "480p", "ASPECT_RATIO": "9:16"})
    folded = [k.lower() for k in resolved.params]
    assert sorted(folded) == sorted(set(folded))
    assert resolved.params["resolution"] == "480p" and resolved.params["aspect_ratio"] == "9:16"


def test_value_fitting_prefers_an_exact_match_in_the_offered_spelling() -> None:
    assert fit_value("mode", "PRO", ["std", "pro"]) == "pro"  # no score: only the exact pass finds it
    assert fit_value("mode", "turbo", ["std", "pro"], default="pro") == "pro"
    assert fit_value("mode", "turbo", ["std", "pro"]) == "std"


def test_a_virtual_field_maps_only_when_every_source_value_matches() -> None:
    entry = {
        "field": "mode",
        "is_ui_virtual": True,
        "value_mapping": {
            "mapping_rules": [
                {"source_values": {"quality": "1080p", "fps": "60"}, "target_value": "pro"},
                {"source_values": {"quality": "720P"}, "target_value": "std"},
            ]
        },
    }
    assert map_virtual(entry, {"quality": "1080p", "fps": "30"}) == (False, None)
    assert map_virtual(entry, {"quality": "1080P", "fps": 60}) == (True, "pro")
    assert map_virtual(entry, {"quality": "720p"}) == (True, "std")
    assert map_virtual(
        {"field": "mode", "value_mapping": {"mapping_rules": [{"source_values": {}}]}}, {}
    ) == (False, None)


@pytest.mark.parametrize("code", [True, False, None, "", "abc", "X5", "5-", 1.5, [0]])
def test_a_code_that_is_not_a_number_is_no_envelope(code: Any) -> None:
    assert _as_code(code) is None
    with pytest.raises(ImaTransportError) as info:
        decode_envelope(200, json.dumps({"code": code, "data": {"id": "x"}}).encode())
    assert not isinstance(info.value, ImaApiError)


@pytest.mark.parametrize(("code", "expected"), [(0, 0), (200.0, 200), (" 6009 ", 6009), ("-1", -1)])
def test_numeric_codes_in_any_spelling(code: Any, expected: int) -> None:
    assert _as_code(code) == expected


def test_the_error_text_falls_back_to_msg() -> None:
    with pytest.raises(ImaApiError) as info:
        decode_envelope(200, json.dumps({"code": 6009, "msg": "no rule"}).encode())
    assert info.value.message == "no rule" and info.value.code == 6009
    with pytest.raises(ImaApiError) as info:
        decode_envelope(200, json.dumps({"code": 6009, "message": "first", "msg": "second"}).encode())
    assert info.value.message == "first"


@pytest.mark.parametrize("status", [500, 502, 503, 200])
def test_an_unreadable_answer_to_create_is_outcome_unknown_never_a_plain_transport_error(status: int) -> None:
    with pytest.raises(CreateOutcomeUnknown) as info:
        decode_envelope(status, b"<html>Internal Server Error</html>", create=True)
    assert info.value.details["http_status"] == status
    with pytest.raises(ImaTransportError) as plain:
        decode_envelope(status, b"<html>Internal Server Error</html>")
    assert not isinstance(plain.value, CreateOutcomeUnknown)


def test_a_leaf_with_no_usable_rule_is_no_matching_rule() -> None:
    product = parse_leaf(
        {
            "id": "x",
            "type": "3",
            "name": "X",
            "model_id": "ima-pro",
            "credit_rules": [{"attribute_id": 0, "points": 5, "attributes": {"duration": "5"}}],
            "form_config": [],
        }
    )
    with pytest.raises(NoMatchingRule):
        resolve(product, T2V, {})


def test_a_leaf_of_another_model_is_refused() -> None:
    from ima.errors import ModelNotFound

    with pytest.raises(ModelNotFound):
        resolve(leaf([rule(1, 5, duration="5")], [], model_id="kling"), T2V, {})
    assert ModelId.PRO.other is ModelId.FAST


def virtual_with_target(ui_key: str = "field") -> dict[str, Any]:
    return {
        "field": "quality_mode",
        "is_ui_virtual": True,
        "value": "std",
        "ui_params": [
            {
                ui_key: "quality",
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


@pytest.mark.parametrize("ui_key", ["field", "id"])
def test_a_virtual_field_writes_its_target_param_and_ui_params_may_be_named_by_id(ui_key: str) -> None:
    from ima.catalog import form_defaults

    product = leaf([rule(1, 10, mode="std"), rule(2, 30, mode="pro")], [virtual_with_target(ui_key)])
    assert form_defaults(product) == {"mode": "std"}
    resolved = resolve(product, T2V, {"quality": "1080p"})
    assert resolved.params == {"mode": "pro"} and resolved.rule.attribute_id == 2


def test_500_skips_a_value_with_no_score_and_degrades_the_next_field() -> None:
    from ima.reflection import degrade

    product = leaf(
        [rule(1, 5, default="enabled")],
        [tags("resolution", "auto", "auto", "720p"), tags("duration", 10, 5, 10)],
    )
    plan, note = degrade(product, resolve(product, T2V, {}), Plan())
    assert plan.pinned == {"duration": 5} and note.params["field"] == "duration"


def test_allowlisted_keys_pass_on_a_leaf_that_does_not_name_them() -> None:
    product = leaf([rule(1, 5, duration="5")], [tags("duration", "5", "5")])
    said = {
        "model": "v2",
        "aspect_ratio": "16:9",
        "generate_audio": False,
        "n": 2,
        "sound": "on",
        "quality": "high",
        "size": "1024x1024",
        "mode": "std",
        "prompt_optimizer": True,
        "fast_pretreatment": False,
        "audio": True,
        "resolution": "720p",
    }
    resolved = resolve(product, T2V, said)
    assert {k: resolved.params[k] for k in said} == said and resolved.notes == ()


def test_payload_keys_are_never_taken_from_overrides_even_when_the_form_names_them() -> None:
    form = [
        tags("duration", "5", "5"),
        *({"field": k, "value": None} for k in ("prompt", "input_images", "cast", "src_img_url")),
    ]
    product = leaf([rule(1, 5, duration="5")], form)
    said = {
        "prompt": "x",
        "input_images": ["u"],
        "cast": {"points": 0},
        "src_img_url": ["u"],
        "default": "on",
    }
    resolved = resolve(product, T2V, said)
    assert set(resolved.params) == {"duration"}
    assert sorted(n.params["field"] for n in resolved.notes) == sorted(said)


def test_500_ignores_offered_values_without_a_score() -> None:
    from ima.reflection import degrade

    product = leaf(
        [rule(1, 5, default="enabled")], [tags("resolution", "1080p", "auto", "480p", "720p", "1080p")]
    )
    plan, _ = degrade(product, resolve(product, T2V, {}), Plan())
    assert plan.pinned == {"resolution": "720p"}


def test_a_virtual_target_no_rule_prices_is_still_a_known_key_and_odd_options_are_ignored() -> None:
    virtual = {
        "field": "style_ui",
        "is_ui_virtual": True,
        "ui_params": [
            {
                "field": "look",
                "value": "film",
                "options": [
                    ["value"],
                    "value",
                    {"label": "film", "value": "film"},
                    {"label": "anime", "value": "anime"},
                ],
            }
        ],
        "value_mapping": {
            "target_param": "style",
            "mapping_rules": [
                {"source_values": {"look": "film"}, "target_value": "cinematic"},
                {"source_values": {"look": "anime"}, "target_value": "toon"},
            ],
        },
    }
    product = leaf([rule(1, 5, duration="5")], [tags("duration", "5", "5"), virtual])
    assert resolve(product, T2V, {"style": "noir"}).params["style"] == "noir"  # a backend value, kept
    mapped = resolve(product, T2V, {"look": "Anime"})
    assert mapped.params["style"] == "toon" and mapped.notes == ()


def test_a_default_rule_with_conditions_is_not_the_cheapest_either() -> None:
    rules = [CreditRule(9, 1, {"default": "enabled", "duration": "5"}), CreditRule(1, 5, {"duration": "10"})]
    assert cheapest_rule(rules).attribute_id == 1


def two_field_virtual() -> dict[str, Any]:
    return {
        "field": "mode",
        "is_ui_virtual": True,
        "ui_params": [
            {
                "field": "look",
                "value": "film",
                "options": [{"label": "a", "value": "film"}, {"label": "b", "value": "anime"}],
            },
            {"field": "speed", "value": "slow", "options": [{"label": "c", "value": "slow"}]},
        ],
        "value_mapping": {
            "target_param": "mode",
            "mapping_rules": [{"source_values": {"look": "film", "speed": "slow"}, "target_value": 0}],
        },
    }


def test_a_virtual_combination_with_no_mapping_is_dropped_with_a_note() -> None:
    product = leaf([rule(1, 5, duration="5")], [tags("duration", "5", "5"), two_field_virtual()])
    resolved = resolve(product, T2V, {"look": "anime"})
    assert resolved.params["mode"] == 0  # the form default's mapping: "anime" has none
    assert [(n.key, dict(n.params)) for n in resolved.notes] == [
        ("value_unknown_dropped", {"field": "look", "value": "anime"})
    ]


def test_a_falsy_backend_value_still_wins_over_its_virtual_ui_field() -> None:
    product = leaf([rule(1, 5, duration="5")], [tags("duration", "5", "5"), two_field_virtual()])
    assert resolve(product, T2V, {"look": "film", "mode": ""}).params["mode"] == ""
    assert resolve(product, T2V, {"look": "film"}).params["mode"] == 0


@pytest.mark.parametrize(
    ("text", "height"),
    [
        ("fhd", 1080),
        ("full hd", 1080),
        ("sd", 480),
        ("4k", 2160),
        ("2K", 1440),
        ("8k", 4320),
        ("3k", 1620),
        ("720x1280", 720),
        ("1280×720", 720),
        ("1080i", 1080),
        ("uhd", 2160),
    ],
)
def test_resolution_scores_are_pixel_heights(text: str, height: int) -> None:
    from ima.values import value_score

    assert value_score("resolution", text) == height


def test_a_layer_that_gives_none_does_not_hide_a_lower_one() -> None:
    from ima.combos import search

    combo = search(holed(), [{"duration": None}, {"duration": "10"}, {"resolution": "480p"}])
    assert combo is not None and combo.values == {"duration": "10", "resolution": "480p"}


def test_distance_is_zero_for_the_same_value_and_infinite_without_scores() -> None:
    from ima.values import distance

    assert distance("duration", "5", 5) == 0.0 and distance("duration", "15s", 10) == 5.0
    assert distance("resolution", "ultra", "720p") == math.inf == distance("resolution", "720p", "ultra")
    assert distance("duration", 5, None) == math.inf == distance("duration", None, 5)


def test_an_unscored_value_with_a_default_not_offered_falls_back_to_the_first_option() -> None:
    assert fit_value("mode", "turbo", ["std", "pro"], default="eco") == "std"


def test_a_none_in_a_higher_layer_does_not_hide_a_lower_one_under_the_default_rule() -> None:
    from ima.combos import search

    product = leaf(
        [rule(9, 3, default="enabled"), rule(1, 5, duration="5")], [tags("duration", "5", "5", "10")]
    )
    combo = search(product, [{"duration": None}, {"duration": "10"}, {"duration": "5"}])
    assert combo is not None and combo.values == {"duration": "10"} and combo.rule.attribute_id == 9
