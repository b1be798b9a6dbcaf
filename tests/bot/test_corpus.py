"""The whole phrasing corpus (tests/data/phrasings.yaml + tests/data/corpus/*.yaml) in one loop: every
mismatch is reported at once, with the exact-match rate; plus the corpus's own shape (size, languages,
non-requests, look-alike content)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.parsing import ParsedRequest, parse
from bot.parsing.kind import Kind, decide

DATA = Path(__file__).resolve().parents[1] / "data"
FIELDS = (
    "kind",
    "task_type",
    "model_id",
    "duration",
    "aspect_ratio",
    "resolution",
    "prompt",
    "image_roles",
    "notes",
)
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


# The C loader when it is built: the corpus loads ten times faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def load_corpus() -> tuple[tuple[str, int, dict[str, Any]], ...]:
    """(file, index, case) for every case, the project's first corpus first. Read once per run."""
    files = [DATA / "phrasings.yaml", *sorted((DATA / "corpus").glob("*.yaml"))]
    return tuple(
        (f.name, i, c)
        for f in files
        for i, c in enumerate(yaml.load(f.read_text(encoding="utf-8"), Loader=_LOADER))
    )


def _actual(text: str, images: int, options: dict[str, str]) -> dict[str, Any]:
    d = decide(text, images, options=options)
    # The decision's own reading when it made one (the same call: half the work on 1,800 cases).
    r: ParsedRequest = d.parsed if d.parsed is not None else parse(text, images, options=options)
    return {
        "kind": d.kind.value + (f":{d.command}" if d.command else ""),
        "task_type": r.task_type.value,
        "model_id": r.model_id.value if r.model_id else None,
        "duration": r.duration,
        "aspect_ratio": r.aspect_ratio,
        "resolution": r.resolution,
        "prompt": r.prompt,
        "image_roles": list(r.image_roles),
        "notes": [n.key for n in r.notes],
    }


def test_every_phrasing_is_read_as_meant() -> None:
    cases = load_corpus()
    mismatches, exact = [], 0
    for name, i, case in cases:
        want = case["expect"]
        assert set(want) <= set(FIELDS), f"{name}#{i}: unknown expected fields {set(want) - set(FIELDS)}"
        kind = want.get("kind", "request")
        assert kind not in ("request", "confirm") or "prompt" in want, (
            f"{name}#{i}: a request pins its prompt"
        )
        images = case.get("images", 0)
        got = _actual(case["text"], images, case.get("options", {}))
        wrong = []
        if kind in ("request", "confirm"):
            # Any request may be thin enough to confirm first; it must never be taken for chatter or a command.
            if got["kind"] not in (want.get("kind", "request"), "confirm"):
                wrong.append(f"kind = {got['kind']!r}, expected {kind!r}")
            wrong += [
                f"{f} = {got[f]!r}, expected {v!r}" for f, v in want.items() if f != "kind" and got[f] != v
            ]
        elif got["kind"] != kind:
            wrong.append(f"kind = {got['kind']!r}, expected {kind!r}")
        if wrong:
            mismatches.append(f"{name}#{i} {case['text']!r} (images={images}): " + "; ".join(wrong))
        else:
            exact += 1
    rate = exact / len(cases)
    assert not mismatches, f"{len(mismatches)} mismatches, {rate:.1%} exact:\n" + "\n".join(mismatches)


def _language(text: str) -> str:
    cjk, latin = bool(_CJK.search(text)), bool(_LATIN_WORD.search(text))
    return "mixed" if cjk and latin else "zh" if cjk else "en"


def test_the_corpus_is_big_varied_and_holds_the_hard_classes() -> None:
    cases = [c for _, _, c in load_corpus()]
    assert len(cases) >= 1200
    texts = [c["text"] for c in cases]
    assert len(set(texts)) >= len(texts) - 40, "mostly distinct phrasings"
    share = {lang: sum(_language(t) == lang for t in texts) / len(texts) for lang in ("zh", "en", "mixed")}
    assert share["zh"] >= 0.58 and share["en"] >= 0.25 and share["mixed"] >= 0.05, share  # ≈ 60 / 30 / 10
    non_requests = [c for c in cases if c["expect"].get("kind", "request") not in ("request", "confirm")]
    assert len(non_requests) >= 150
    lookalikes = [c for f, _, c in load_corpus() if "lookalikes" in f]
    assert len(lookalikes) >= 100


def test_non_requests_never_parse_into_a_job() -> None:
    """The decision, not the parser, stops them: every non-request is a command or chatter."""
    for _, _, case in load_corpus():
        kind = case["expect"].get("kind", "request")
        if kind not in ("request", "confirm"):
            d = decide(case["text"], case.get("images", 0))
            assert d.kind in (Kind.COMMAND, Kind.CHATTER) and d.parsed is None, case["text"]
