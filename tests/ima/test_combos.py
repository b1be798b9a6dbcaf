"""The search over priced combinations: said → chosen tables over the bundled emulator fixture's rule
shapes (full grid, grid with holes, models that differ, a default rule), in every served spelling and
over real HTTP against the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ima import ImaClient, ModelId, TaskType
from ima.combos import exact_rule, priced_keys, search
from ima.emulator import DEFAULT_API_KEY, Emulator, EmulatorConfig
from ima.emulator.config import DurationType, ResolutionCase, Variants
from ima.params import resolve
from tests.ima.combo_table import DURATIONS, RESOLUTIONS, bundled, chosen, main, said_of
from tests.ima.test_catalog import leaf, rule, tags

T2V = TaskType.TEXT_TO_VIDEO
FULL, HOLED, DEFAULT = "full grid", "holed grid", "default rule"

# Rows: said duration (None = not said); columns: said resolution None, 480p, 720p, 1080p, 4K.
# Cells: "duration/height" chosen. Every said value a rule prices together is kept; otherwise as few
# said values change as possible, duration kept first, each to its nearest priced value.
EXPECTED = {
    FULL: {  # ima-pro-fast: 480p/720p × 5/10/15 s, no 1080p
        None: ["5/720", "5/480", "5/720", "5/720", "5/720"],
        5: ["5/720", "5/480", "5/720", "5/720", "5/720"],
        7: ["5/720", "5/480", "5/720", "5/720", "5/720"],
        10: ["10/720", "10/480", "10/720", "10/720", "10/720"],
        15: ["15/720", "15/480", "15/720", "15/720", "15/720"],
        20: ["15/720", "15/480", "15/720", "15/720", "15/720"],
    },
    HOLED: {  # ima-pro: 480p/720p × 5/10/15 s, 1080p only at 5 and 10 s
        None: ["5/720", "5/480", "5/720", "5/1080", "5/1080"],
        5: ["5/720", "5/480", "5/720", "5/1080", "5/1080"],
        7: ["5/720", "5/480", "5/720", "5/1080", "5/1080"],
        10: ["10/720", "10/480", "10/720", "10/1080", "10/1080"],
        15: ["15/720", "15/480", "15/720", "15/720", "15/720"],  # 1080p is not priced at 15 s: 720p
        20: ["15/720", "15/480", "15/720", "10/1080", "15/720"],  # 20 s must change; 1080p can stay
    },
    DEFAULT: {  # ima-pro-v0: a fallback rule, 720p at 5/10 s, form offers only 720p and 5/10 s
        None: ["5/720"] * 5,
        5: ["5/720"] * 5,
        7: ["5/720"] * 5,
        10: ["10/720"] * 5,
        15: ["10/720"] * 5,
        20: ["10/720"] * 5,
    },
}


def shapes(variants: Variants | None = None) -> dict[str, Any]:
    by_title = bundled(variants)
    return {key: next(p for t, p in by_title.items() if t.startswith(key)) for key in EXPECTED}


def cell(product: Any, duration: Any, resolution: Any) -> str:
    d, r, _ = chosen(product, said_of(duration, resolution))
    return f"{d}/{r.removesuffix('p')}"


VARIANTS = [
    Variants(),
    Variants(duration_type=DurationType.NUMBER, resolution_case=ResolutionCase.UPPER, root_level=True),
]


@pytest.mark.parametrize("variants", VARIANTS, ids=["canonical", "numbers-uppercase-root"])
@pytest.mark.parametrize("shape", list(EXPECTED))
def test_said_to_chosen_table(shape: str, variants: Variants) -> None:
    product = shapes(variants)[shape]
    got = {d: [cell(product, d, r) for r in RESOLUTIONS] for d in DURATIONS}
    assert got == EXPECTED[shape]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.mark.parametrize("model", [ModelId.PRO, ModelId.FAST])
async def test_every_chosen_combination_is_accepted_by_the_emulator_first_time(
    session: aiohttp.ClientSession, model: ModelId
) -> None:
    emu = await Emulator(EmulatorConfig(variants=VARIANTS[1])).start(host="127.0.0.1", port=0)
    try:
        client = ImaClient(
            session, DEFAULT_API_KEY, base_url=emu.base_url, upload_base_url=emu.upload_base_url
        )
        product = await client.fetch_product(T2V, model)
        for duration in DURATIONS:
            for resolution in RESOLUTIONS:
                said = said_of(duration, resolution)
                created = await client.create_task(T2V, model, "p", overrides=said)
                assert created.attempts == 1, said
                assert created.resolved.rule.attribute_id == chosen(product, said)[2]
    finally:
        await emu.stop()


def test_the_issue_example_keeps_15_s_and_says_why() -> None:
    resolved = resolve(shapes()[HOLED], T2V, {"duration": 15, "resolution": "1080p"})
    assert (resolved.params["duration"], resolved.params["resolution"], resolved.rule.attribute_id) == (
        "15",
        "720p",
        1106,
    )
    assert [(n.key, dict(n.params)) for n in resolved.notes] == [
        (
            "combination_not_offered",
            {
                "model": "ima-pro",
                "field": "resolution",
                "requested": "1080p",
                "used": "720p",
                "source": "said",
                "with_field": "duration",
                "with_value": 15,
                "allowed": ["5", "10"],
                "allowed_field": "duration",
                "limit": "max",
            },
        )
    ]


def test_a_value_no_rule_offers_becomes_the_nearest_never_the_cheapest() -> None:
    holed = shapes()[HOLED]
    assert cell(holed, None, "4K") == "5/1080"  # not 480p, the cheapest resolution
    resolved = resolve(holed, T2V, {"duration": 7})
    assert [(n.key, n.params["requested"], n.params["used"]) for n in resolved.notes] == [
        ("value_not_offered", 7, "5")
    ]


def test_a_value_not_offered_whose_nearest_clashes_says_both() -> None:
    resolved = resolve(shapes()[HOLED], T2V, {"duration": 20, "resolution": "1080p"})
    (note,) = resolved.notes
    assert note.key == "value_not_offered_with"
    assert {
        k: note.params[k] for k in ("requested", "used", "with_field", "with_value", "allowed", "limit")
    } == {
        "requested": 20,
        "used": "10",
        "with_field": "resolution",
        "with_value": "1080p",
        "allowed": ["5", "10"],
        "limit": "max",
    }


def test_a_tie_between_two_neighbours_goes_to_the_lower_value() -> None:
    assert cell(shapes()[HOLED], 7.5, None) == "5/720"


def test_the_result_does_not_depend_on_the_order_said() -> None:
    holed = shapes()[HOLED]
    one = resolve(holed, T2V, {"duration": 15, "resolution": "1080p"})
    two = resolve(holed, T2V, {"resolution": "1080p", "duration": 15})
    assert (one.rule, dict(one.params)) == (two.rule, dict(two.params))


def test_preferences_yield_to_what_was_said_and_are_kept_when_they_fit() -> None:
    holed = shapes()[HOLED]
    fits = resolve(holed, T2V, {"resolution": "480p"}, preferred={"duration": 15, "aspect_ratio": "9:16"})
    assert (fits.params["duration"], fits.params["aspect_ratio"], fits.notes) == ("15", "9:16", ())
    clash = resolve(holed, T2V, {"resolution": "1080p"}, preferred={"duration": 15})
    assert (clash.params["duration"], clash.params["resolution"]) == ("10", "1080p")
    (note,) = clash.notes
    assert (note.key, note.params["source"], note.params["field"]) == (
        "combination_not_offered",
        "preferred",
        "duration",
    )


def test_a_said_value_wins_over_the_same_preference() -> None:
    resolved = resolve(shapes()[HOLED], T2V, {"duration": 10}, preferred={"DURATION": 15})
    assert resolved.params["duration"] == "10" and resolved.notes == ()


def test_unsaid_priced_keys_come_from_the_nearest_priced_default_not_the_cheapest() -> None:
    product = leaf(
        [
            rule(1, 9, duration="10", resolution="480p"),
            rule(2, 20, duration="10", resolution="720p"),
            rule(3, 5, duration="5", resolution="1080p"),
        ],
        [tags("duration", "5", "5", "10"), tags("resolution", "1080p", "480p", "720p", "1080p")],
    )
    # 1080p (the default) is not priced at 10 s: its nearest priced neighbour wins, not the cheaper 480p
    resolved = resolve(product, T2V, {"duration": 10})
    assert resolved.rule.attribute_id == 2 and resolved.notes == ()  # a default changed: no note


def test_a_default_rule_prices_any_offered_combination_the_plain_rules_lack() -> None:
    product = leaf(
        [rule(1, 12, default="enabled"), rule(2, 26, duration="10", resolution="720p")],
        [tags("duration", "5", "5", "10"), tags("resolution", "480p", "480p", "720p", "1080p")],
    )
    kept = resolve(product, T2V, {"duration": 10, "resolution": "1080p"})
    assert (kept.rule.attribute_id, kept.params["resolution"], kept.notes) == (1, "1080p", ())
    assert "default" not in kept.params
    exact = resolve(product, T2V, {"duration": "10s", "resolution": "720P"})
    assert exact.rule.attribute_id == 2 and exact.params["resolution"] == "720p"


def test_excluded_rules_are_never_chosen() -> None:
    holed = shapes()[HOLED]
    resolved = resolve(holed, T2V, {"duration": 15, "resolution": "1080p"}, exclude_rules={1106})
    assert resolved.rule.attribute_id != 1106
    assert search(holed, [{}], exclude=[r.attribute_id for r in holed.credit_rules]) is None


def test_priced_keys_put_duration_first_and_leave_out_unpriced_ones() -> None:
    product = leaf(
        [rule(1, 5, mode="std", resolution="720p", audio="true", aspect_ratio="16:9", duration="5")], []
    )
    assert priced_keys(product.credit_rules) == ["duration", "resolution", "mode"]


def test_audio_and_aspect_ratio_in_a_rule_never_block_it() -> None:
    product = leaf(
        [rule(1, 5, duration="5", audio="true"), rule(2, 9, duration="10", audio="true")],
        [tags("duration", 5, 5, 10), tags("audio", True, True, False)],
    )
    resolved = resolve(product, T2V, {"duration": 10, "audio": False})
    assert resolved.rule.attribute_id == 2 and resolved.params["audio"] is False and resolved.notes == ()


def test_exact_rule_is_the_first_plain_rule_whose_conditions_all_hold() -> None:
    rules = leaf(
        [rule(9, 1, default="enabled"), rule(1, 5, duration="5"), rule(2, 6, duration="5", mode="x")], []
    ).credit_rules
    assert exact_rule(rules, {"DURATION": "5s", "mode": "x"}).attribute_id == 1
    assert exact_rule(rules, {"duration": 10}) is None
    assert exact_rule(rules, {}) is None


def test_the_table_script_prints_both_grids(capsys: pytest.CaptureFixture[str]) -> None:
    assert main() == 0
    out = capsys.readouterr().out
    assert "## full grid" in out and "## holed grid" in out
    assert (
        "| 15 s · 1080p | 15 s · 720p | 1106 · 90 | Ima Sevio 1.0 offers 1080P only up to 10 s, so this is 720P at 15 s |"
        in out
    )
