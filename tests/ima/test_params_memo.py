"""resolve() answers repeats from a memo: the same answer as a fresh resolution, never a shared params dict,
and never an answer for other inputs or another product object."""

from __future__ import annotations

import copy

from ima import params
from ima.params import resolve, resolve_fresh
from tests.ima.combo_table import bundled

HOLED, FULL = "holed grid", "full grid"


def shape(name: str):
    return next(p for t, p in bundled().items() if t.startswith(name))


def test_a_repeat_gives_the_fresh_answer_and_its_own_params() -> None:
    product = shape(HOLED)
    said = {"duration": 15, "resolution": "1080p"}
    first = resolve(product, "text_to_video", said)
    first.params["duration"] = 99  # a caller that writes into its answer must not change the next one
    second = resolve(product, "text_to_video", said)
    fresh = resolve_fresh(product, "text_to_video", said)
    assert second == fresh and second.params["duration"] != 99
    assert second.params is not first.params


def test_each_input_is_part_of_the_key() -> None:
    product = shape(HOLED)
    base = resolve(product, "text_to_video", {"duration": 10})
    assert resolve(product, "text_to_video", {"duration": 5}).params != base.params
    assert resolve(product, "text_to_video", {"duration": "10"}) == resolve_fresh(
        product, "text_to_video", {"duration": "10"}
    )
    preferred = resolve(product, "text_to_video", {}, preferred={"resolution": "480p"})
    assert preferred == resolve_fresh(product, "text_to_video", {}, preferred={"resolution": "480p"})
    assert preferred.params != resolve(product, "text_to_video", {}).params
    pinned = resolve(product, "text_to_video", {}, pinned={"resolution": "1080p"})
    assert pinned == resolve_fresh(product, "text_to_video", {}, pinned={"resolution": "1080p"})
    assert pinned.params != resolve(product, "text_to_video", {}).params
    rule = base.rule.attribute_id
    other = resolve(product, "text_to_video", {"duration": 10}, exclude_rules=[rule])
    assert other.rule.attribute_id != rule
    assert other == resolve_fresh(product, "text_to_video", {"duration": 10}, exclude_rules=[rule])


def test_an_equal_but_distinct_product_is_resolved_afresh() -> None:
    product = shape(FULL)
    twin = copy.deepcopy(product)
    resolve(product, "text_to_video", {"duration": 10})
    answer = resolve(twin, "text_to_video", {"duration": 10})
    assert answer.product is twin


def test_the_memo_stays_bounded() -> None:
    product = shape(FULL)
    for seconds in range(params.MEMO_SIZE + 20):
        resolve(product, "text_to_video", {"duration": seconds})
    assert len(params._memo) == params.MEMO_SIZE
    kept = {key[2] for key in params._memo}  # the oldest answers went first; the newest stay
    assert (("duration", repr(params.MEMO_SIZE + 19)),) in kept and (("duration", "0"),) not in kept
