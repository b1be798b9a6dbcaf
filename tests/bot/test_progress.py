"""The progress rules users see: the percent, the estimate from history, the edit cadence, and the words."""

from __future__ import annotations

import pytest

from bot.jobs.progress import (
    CADENCE_S,
    Cadence,
    Estimate,
    bar,
    estimate,
    format_duration,
    format_range,
    percent,
)
from bot.jobs.runner import RunnerSettings
from bot.jobs.texts import Texts
from ima.models import ModelId

TEXTS = Texts.load()


@pytest.mark.parametrize(
    ("elapsed", "maximum", "expected"),
    [
        (0, 120, 0),
        (59.9, 120, 49),
        (60, 120, 50),
        (114, 120, 95),
        (500, 120, 95),
        (-5, 120, 0),
        (10, 0, 95),
        (0.5, 1, 50),
    ],
)
def test_percent_is_the_seed_formula_capped_at_95(elapsed: float, maximum: float, expected: int) -> None:
    assert percent(elapsed, maximum) == expected


def test_the_seed_cadence_is_30_s_for_fast_and_45_s_for_pro() -> None:
    assert CADENCE_S == {ModelId.FAST: 30.0, ModelId.PRO: 45.0}
    assert RunnerSettings().cadence == CADENCE_S


def test_the_fixed_table_holds_until_enough_jobs_finished() -> None:
    assert estimate(ModelId.FAST, [50.0] * 4, min_samples=5) == Estimate(60, 120)
    assert estimate(ModelId.PRO, [], min_samples=5) == Estimate(120, 300)
    # min_samples 0 still needs one run time.
    assert estimate(ModelId.FAST, [], min_samples=0) == Estimate(60, 120)


def test_zero_run_times_do_not_count_as_history() -> None:
    assert estimate(ModelId.FAST, [0.0, 0.0, 0.0, 0.0, 40.0], min_samples=5) == Estimate(60, 120)


def test_history_gives_the_interpolated_20th_to_90th_percentile() -> None:
    # Sorted 10..100: the 20th percentile is at 1.8 → 28, the 90th at 8.1 → 91.
    history = [100.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    got = estimate(ModelId.FAST, history, min_samples=5)
    assert got == Estimate(28, 91, from_history=True, samples=10)


def test_high_is_rounded_up_and_never_equals_low() -> None:
    assert estimate(ModelId.FAST, [42.0] * 6, min_samples=5) == Estimate(42, 43, from_history=True, samples=6)
    got = estimate(ModelId.FAST, [30.2, 30.2, 30.2, 30.2, 90.5], min_samples=5)
    assert got.high == 67 and got.low == 30  # at 3.6: 30.2 + (90.5 - 30.2) * 0.6 = 66.38 → 67


def test_cadence_waits_out_the_interval_and_skips_unchanged_text() -> None:
    c = Cadence(30.0)
    assert c.ready(0.0) and c.due(0.0, "10%")
    c.mark(0.0, "10%")
    assert not c.ready(29.9) and not c.due(29.9, "20%")
    assert c.ready(30.0) and c.due(30.0, "20%")
    assert not c.due(45.0, "10%")  # the same text again is never re-sent
    c.mark(30.0, "20%")
    assert not c.due(60.0, "20%") and c.due(60.0, "30%")
    assert not Cadence(30.0, last_at=100.0).ready(120.0) and Cadence(30.0, last_at=100.0).ready(130.0)


@pytest.mark.parametrize(
    ("seconds", "en", "zh"),
    [
        (0, "0s", "0秒"),
        (45.9, "45s", "45秒"),
        (60, "1m 00s", "1分00秒"),
        (125, "2m 05s", "2分05秒"),
        (-3, "0s", "0秒"),
    ],
)
def test_durations_read_naturally(seconds: float, en: str, zh: str) -> None:
    assert format_duration(TEXTS, seconds, "en") == en
    assert format_duration(TEXTS, seconds, "zh") == zh


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (60, 89, "60–89 s"),
        (60, 90, "1–2 min"),
        (120, 180, "2–3 min"),
        (170, 180, "about 3 min"),
        (10, 100, "1–2 min"),
        (30, 90, "1–2 min"),
        (90, 121, "2–3 min"),
    ],
)
def test_ranges_are_seconds_when_short_else_minutes(low: int, high: int, expected: str) -> None:
    assert format_range(TEXTS, low, high, "en") == expected


def test_bar_fills_in_tenths() -> None:
    assert bar(0) == "░" * 10 and bar(100) == "▓" * 10 and bar(50) == "▓" * 5 + "░" * 5
    assert bar(14) == "▓" + "░" * 9 and bar(16) == "▓▓" + "░" * 8
    assert bar(95) == "▓" * 10  # 9.5 tenths round to the full bar
    assert bar(150) == "▓" * 10 and bar(-5) == "░" * 10 and bar(50, width=4) == "▓▓░░"


def test_the_table_estimate_says_it_is_not_from_history_and_five_runs_are_enough_by_default() -> None:
    table = estimate(ModelId.FAST, [])
    assert (table.from_history, table.samples) == (False, 0)
    assert estimate(ModelId.FAST, [40.0] * 4).from_history is False
    assert estimate(ModelId.FAST, [40.0] * 5) == Estimate(40, 41, from_history=True, samples=5)
    # Sub-second run times are real run times (only zero and negative ones are dropped).
    assert estimate(ModelId.FAST, [0.5] * 5).samples == 5
    assert estimate(ModelId.FAST, [-1.0] * 5).from_history is False


def test_an_estimate_cannot_be_changed_after_the_fact() -> None:
    est = Estimate(1, 2)
    with pytest.raises(AttributeError):
        est.low = 5  # type: ignore[misc]
    assert hash(est) == hash(Estimate(1, 2))


def test_one_run_time_is_enough_when_asked_for_one() -> None:
    assert estimate(ModelId.FAST, [40.0], min_samples=1) == Estimate(40, 41, from_history=True, samples=1)
    assert estimate(ModelId.FAST, [40.0, 70.0], min_samples=0) == Estimate(
        46, 67, from_history=True, samples=2
    )
