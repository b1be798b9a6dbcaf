"""The zh/en phrase parser: the phrasing corpus, the JSON shape, options, and robustness on any text."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.jobs.texts import Texts
from bot.parsing import ParsedRequest, parse
from bot.parsing.matcher import fold
from bot.parsing.numbers import cn_to_int, en_to_int
from bot.parsing.parser import MAX_NOTES
from ima.models import ModelId, Note, TaskType

CORPUS = Path(__file__).resolve().parents[1] / "data" / "phrasings.yaml"
FIELDS = ("task_type", "model_id", "duration", "aspect_ratio", "resolution", "prompt", "image_roles", "notes")


def _actual(r: ParsedRequest) -> dict[str, Any]:
    return {
        "task_type": r.task_type.value,
        "model_id": r.model_id.value if r.model_id else None,
        "duration": r.duration,
        "aspect_ratio": r.aspect_ratio,
        "resolution": r.resolution,
        "prompt": r.prompt,
        "image_roles": list(r.image_roles),
        "notes": [n.key for n in r.notes],
    }


def test_corpus_of_phrasings() -> None:
    """Every case of tests/data/phrasings.yaml; all mismatches are reported together."""
    cases = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    assert len(cases) >= 200
    mismatches = []
    for i, case in enumerate(cases):
        unknown = set(case["expect"]) - set(FIELDS)
        assert not unknown, f"case {i}: unknown expected fields {unknown}"
        assert "prompt" in case["expect"], f"case {i}: every case pins the prompt"
        got = _actual(parse(case["text"], case.get("images", 0), options=case.get("options", {})))
        for field, want in case["expect"].items():
            if got[field] != want:
                mismatches.append(f"#{i} {case['text']!r} (images={case.get('images', 0)}): "
                                  f"{field} = {got[field]!r}, expected {want!r}")  # fmt: skip
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches)


def test_to_json_has_exactly_the_contract_keys() -> None:
    r = parse("横屏 一只狗 9:16 用可灵 10秒")
    rendered: list[Note] = []

    def render(note: Note) -> str:
        rendered.append(note)
        return f"<{note.key}>"

    out = r.to_json(render)
    assert list(out) == ["task_type", "model_id", "duration", "aspect_ratio", "resolution", "prompt", "notes"]
    assert out == {
        "task_type": "text_to_video", "model_id": "ima-pro", "duration": 10, "aspect_ratio": "9:16",
        "resolution": None, "prompt": "一只狗", "notes": ["<note.model_mapped>", "<note.conflict>"],
    }  # fmt: skip
    assert rendered == list(r.notes)


def test_notes_render_in_both_locales_without_model_ids() -> None:
    texts = Texts.load()
    r = parse("a dog, landscape, 9:16, kling 2.1, 5-10s")
    assert [n.key for n in r.notes] == ["note.model_mapped", "note.duration_range", "note.conflict"]
    mapped = r.notes[0]
    assert mapped.params == {"requested": "kling 2.1", "model": ModelId.PRO}
    assert r.notes[2].params == {"field": "aspect_ratio", "dropped": "landscape", "kept": "9:16"}
    for locale in ("en", "zh"):
        for note in r.notes:
            params = {k: v.display_name if isinstance(v, ModelId) else v for k, v in note.params.items()}
            text = texts(note.key, locale, **params)
            assert "ima-pro" not in text
        assert "Ima Sevio 1.0" in texts(
            mapped.key, locale, requested="kling 2.1", model=ModelId.PRO.display_name
        )


def test_conflict_keeps_the_last_value_and_names_both() -> None:
    r = parse("横屏 一只狗 9:16")
    assert r.aspect_ratio == "9:16"
    assert r.notes == (Note("note.conflict", {"field": "aspect_ratio", "dropped": "横屏", "kept": "9:16"}),)
    r = parse("9:16 一只狗 横屏")
    assert r.aspect_ratio == "16:9"


def test_vague_words_give_way_to_a_compatible_precise_value_silently() -> None:
    assert (parse("横屏 21:9 一只狗").aspect_ratio, parse("横屏 21:9 一只狗").notes) == ("21:9", ())
    r = parse("高清 1080p 一只狗")
    assert (r.resolution, r.notes) == ("1080P", ())
    r = parse("1080p 标清 一只狗")
    assert r.resolution == "480P" and [n.key for n in r.notes] == ["note.conflict"]


@pytest.mark.parametrize(
    ("text", "images", "task", "roles"),
    [
        ("a cat", 0, TaskType.TEXT_TO_VIDEO, ()),
        ("a cat", 1, TaskType.IMAGE_TO_VIDEO, ("first",)),
        ("参考 a cat", 1, TaskType.REFERENCE_IMAGE_TO_VIDEO, ("reference",)),
        ("a cat", 2, TaskType.FIRST_LAST_FRAME_TO_VIDEO, ("first", "last")),
        ("第二张做首帧", 2, TaskType.FIRST_LAST_FRAME_TO_VIDEO, ("last", "first")),
        ("style reference", 2, TaskType.REFERENCE_IMAGE_TO_VIDEO, ("reference", "reference")),
        ("a cat", 3, TaskType.REFERENCE_IMAGE_TO_VIDEO, ("reference",) * 3),
        ("a cat", 7, TaskType.REFERENCE_IMAGE_TO_VIDEO, ("reference",) * 7),
    ],
)
def test_task_type_follows_images_and_role_words(
    text: str, images: int, task: TaskType, roles: tuple
) -> None:
    r = parse(text, images)
    assert (r.task_type, r.image_roles) == (task, roles)


def test_options_win_over_the_text() -> None:
    r = parse(
        "a cat 5s landscape pro", options={"duration": "10", "aspect_ratio": "9:16", "model": "ima-pro-fast"}
    )
    assert (r.model_id, r.duration, r.aspect_ratio, r.prompt) == (ModelId.FAST, 10, "9:16", "a cat")
    assert Note("note.option_model", {"said": "pro", "model": ModelId.FAST}) in r.notes
    assert Note("note.option_overrides", {"field": "duration", "said": "5s", "used": "10"}) in r.notes
    assert parse("a cat, pro", options={"model": "default"}).model_id is None
    r = parse("a cat", options={"resolution": "what"})
    assert r.resolution is None and r.notes == (
        Note("note.option_invalid", {"field": "resolution", "value": "what"}),
    )


def test_no_image_but_words_for_one() -> None:
    r = parse("用这张图做首帧，让猫跳起来", 0)
    assert r.task_type is TaskType.TEXT_TO_VIDEO and r.prompt == "让猫跳起来"
    assert r.notes == (Note("note.images_missing", {"phrase": "用这张图做首帧"}),)


def test_fold_keeps_positions() -> None:
    for text in ("１０：９ ＨＤ", "İstanbul ß", "ＡＢＣ　一只猫", "🎬 x"):
        assert len(fold(text)) == len(text)
    assert fold("１６：９ ＨＤ") == "16:9 hd"


@pytest.mark.parametrize(
    ("token", "value"),
    [("五", 5), ("十", 10), ("十五", 15), ("两", 2), ("二十", 20), ("二十五", 25), ("一百零五", 105), ("五五", None),
     ("十百", None), ("", None)],
)  # fmt: skip
def test_chinese_numerals(token: str, value: int | None) -> None:
    assert cn_to_int(token) == value


def test_english_number_words() -> None:
    words = {"five": 5, "ten": 10, "twenty": 20, "fifteen": 15}
    assert en_to_int("ten", words) == 10
    assert en_to_int("twenty five", words) == 25
    assert en_to_int("Twenty-Five", words) == 25
    assert en_to_int("fifteen five", words) is None
    assert en_to_int("dozen", words) is None


ADVERSARIAL = [
    "fast " * 1600, "portrait 10s " * 700, "竖屏" * 4000, "1" * 8000, "十" * 8000, " " * 8000, "," * 7999 + "x",
    "kling" + "1" * 40 + "x", "<@1>" * 2000, "and " * 2000 + "10s", "一只猫和" * 2000 + "10秒", "in " * 2600 + "4k",
    "用" * 8000 + "pro", "fast portrait hd square pro " * 300, "(" * 4000 + ")" * 4000,
]  # fmt: skip


def test_long_adversarial_messages_stay_fast() -> None:
    """Regexes and the weak-word search stay near-linear (a message is capped at MAX_TEXT characters)."""
    parse("warm up: load the tables")
    slow = []
    for text in ADVERSARIAL:
        started = time.perf_counter()
        r = parse(text, 2)
        took = time.perf_counter() - started
        assert len(r.prompt) <= len(text)
        if took > 2.0:
            slow.append(f"{text[:20]!r}… ({len(text)} chars): {took:.2f}s")
    assert slow == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(max_size=300) | st.lists(st.sampled_from(
        ["竖屏", "fast", "10s", "9:16", " ", "，", "参考", "首帧", "<@1>", "/video", "pro", "4k", "from", "秒",
         "a", "portrait", "\n", "十五", "用", "kling", "--ar", "2:1", "1080x1920", "的", "模型", "@_user_1"]),
        max_size=40).map("".join),
    images=st.integers(min_value=-2, max_value=9),
)  # fmt: skip
def test_parse_never_raises_and_stays_bounded(text: str, images: int) -> None:
    r = parse(text, images)
    assert isinstance(r.task_type, TaskType)
    assert len(r.prompt) <= len(text)
    assert r.prompt == r.prompt.strip()
    assert len(r.notes) <= MAX_NOTES
    assert len(r.image_roles) == max(0, images)
    assert r.duration is None or 1 <= r.duration <= 600
    assert r.task_type is TaskType.TEXT_TO_VIDEO or images > 0
    assert set(r.image_roles) <= {"first", "last", "reference"}
