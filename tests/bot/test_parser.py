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
                mismatches.append(
                    f"#{i} {case['text']!r} (images={case.get('images', 0)}): "
                    f"{field} = {got[field]!r}, expected {want!r}"
                )
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
        "task_type": "text_to_video",
        "model_id": "ima-pro",
        "duration": 10,
        "aspect_ratio": "9:16",
        "resolution": None,
        "prompt": "一只狗",
        "notes": ["<note.model_mapped>", "<note.conflict>"],
    }
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
    # The ends of the full-width block (！ U+FF01, ～ U+FF5E) and what lies just outside it (⦅ U+FF5F).
    assert fold("！～⦅") == "!~⦅" and fold("İ！～⦅") == "İ!~⦅"


@pytest.mark.parametrize(
    ("token", "value"),
    [
        ("五", 5),
        ("十", 10),
        ("十五", 15),
        ("两", 2),
        ("二十", 20),
        ("二十五", 25),
        ("一百零五", 105),
        ("五五", None),
        ("十百", None),
        ("", None),
    ],
)
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
    "fast " * 1600,
    "portrait 10s " * 700,
    "竖屏" * 4000,
    "1" * 8000,
    "十" * 8000,
    " " * 8000,
    "," * 7999 + "x",
    "kling" + "1" * 40 + "x",
    "<@1>" * 2000,
    "and " * 2000 + "10s",
    "一只猫和" * 2000 + "10秒",
    "in " * 2600 + "4k",
    "用" * 8000 + "pro",
    "fast portrait hd square pro " * 300,
    "(" * 4000 + ")" * 4000,
]


def test_long_adversarial_messages_stay_fast() -> None:
    """Regexes and the weak-word search stay near-linear (a message is capped at MAX_TEXT characters).
    CPU time, not wall time: a busy machine (CI, parallel runs) must not fail a bound on the algorithm."""
    parse("warm up: load the tables")
    slow = []
    for text in ADVERSARIAL:
        started = time.process_time()
        r = parse(text, 2)
        took = time.process_time() - started
        assert len(r.prompt) <= len(text)
        if took > 2.0:
            slow.append(f"{text[:20]!r}… ({len(text)} chars): {took:.2f}s")
    assert slow == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(max_size=300)
    | st.lists(
        st.sampled_from(
            [
                "竖屏",
                "fast",
                "10s",
                "9:16",
                " ",
                "，",
                "参考",
                "首帧",
                "<@1>",
                "/video",
                "pro",
                "4k",
                "from",
                "秒",
                "a",
                "portrait",
                "\n",
                "十五",
                "用",
                "kling",
                "--ar",
                "2:1",
                "1080x1920",
                "的",
                "模型",
                "@_user_1",
            ]
        ),
        max_size=40,
    ).map("".join),
    images=st.integers(min_value=-2, max_value=9),
)
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


# -- tests that kill mutants the corpus did not notice ------------------------------------------------


def test_a_long_message_is_read_to_its_end() -> None:
    """Parameters after the first hundreds of characters still count (the cut is MAX_TEXT, not less)."""
    body = "一只小猫在窗台上晒太阳，尾巴慢慢摇来摇去，窗外的树叶随风轻轻摆动，阳光透过玻璃洒在地板上，" * 6
    r = parse(body + "竖屏 10秒")
    assert len(body) > 200 and (r.aspect_ratio, r.duration) == ("9:16", 10)
    assert r.prompt == body.rstrip("，")
    en = "a small red fox trots through deep fresh snow at dawn while soft light spreads over the hills " * 3
    r = parse(en + ", portrait, 5s")
    assert (r.aspect_ratio, r.duration) == ("9:16", 5) and r.prompt == en.strip()


def test_square_and_portrait_are_not_compatible() -> None:
    """A vague value yields silently only to a precise value of the same orientation."""
    r = parse("方形 一只狗 9:16")
    assert r.aspect_ratio == "9:16"
    assert r.notes == (Note("note.conflict", {"field": "aspect_ratio", "dropped": "方形", "kept": "9:16"}),)
    r = parse("竖屏 一只狗 1:1")
    assert r.aspect_ratio == "1:1" and [n.key for n in r.notes] == ["note.conflict"]
    r = parse("横屏 一只狗 1:1")
    assert r.aspect_ratio == "1:1" and [n.key for n in r.notes] == ["note.conflict"]
    assert parse("竖屏 一只狗 3:4").notes == ()  # both portrait: silent


def test_the_ideographic_space_separates_like_a_space() -> None:
    assert fold("一只猫\u3000竖屏") == "一只猫 竖屏"
    assert fold("Ａ\u3000Ｂ") == "a b"
    assert fold("İ\u3000Ａ") == "İ a"  # the slow path (a letter that lower-cases to two) folds it too
    r = parse("一只猫\u3000快速")
    assert (r.model_id, r.prompt) == (ModelId.FAST, "一只猫")


def test_a_mention_that_is_also_the_prefix_is_cut_once() -> None:
    from bot.parsing import default_tables
    from bot.parsing.matcher import prefix_spans

    norm = fold("<@123> <@456> a cat <@789>")
    spans = prefix_spans(default_tables(), norm)
    assert spans == [(0, 6), (7, 13), (20, 26)]
    assert parse("<@123> <@456> a cat <@789>").prompt == "a cat"


def test_the_same_note_is_given_once() -> None:
    r = parse("一只狗 横屏 竖屏 横屏 竖屏")
    assert r.aspect_ratio == "9:16"
    assert r.notes == (Note("note.conflict", {"field": "aspect_ratio", "dropped": "横屏", "kept": "竖屏"}),)
    r = parse("kling a dog kling")
    assert [n.key for n in r.notes] == ["note.model_mapped"]


def test_slips_in_parameter_words_are_read_where_they_cannot_be_content() -> None:
    r = parse("a boy riding a bike, landscpae")
    assert (r.aspect_ratio, r.prompt) == ("16:9", "a boy riding a bike")
    assert r.notes == (Note("note.typo", {"said": "landscpae", "meant": "landscape"}),)
    r = parse("a cat, potrait, 10 secnods")
    assert (r.aspect_ratio, r.duration, r.prompt) == ("9:16", 10, "a cat")
    r = parse("landscpae mode, a cat")
    assert (r.aspect_ratio, r.prompt, r.removed) == ("16:9", "a cat", ("landscpae mode",))
    assert parse("the landscpae of iceland").aspect_ratio is None  # an article ties it to the prompt
    assert parse("a cat, landsc").aspect_ratio == "16:9"  # similarity exactly 80: still read
    assert parse("a cat, sqre").aspect_ratio is None  # four letters: too short to guess
    assert parse("a cat, squre").aspect_ratio == "1:1"  # five letters: read
    assert parse("@landscpae a cat").aspect_ratio is None  # a mention is never a slip
    fillers = " ".join(["kitten"] * 63)
    assert parse(f"{fillers}, landscpae").aspect_ratio == "16:9"  # the 64th word is still looked at
    assert parse(f"{fillers} kitten, landscpae").aspect_ratio is None  # past the bound: not looked at


def test_removed_lists_the_cut_words_once_in_order() -> None:
    r = parse("/video 竖屏 10秒，极速 一只小狗在草地上奔跑 竖屏")
    assert r.removed == ("竖屏", "10秒", "极速")
    assert parse("a paper boat drifting").removed == ()
    assert parse("make this character dance", 1).removed == ()  # evidence words stay in the prompt


def test_a_slip_after_a_mention_in_the_middle_is_still_read() -> None:
    r = parse("a cat <@123456>, landscpae")
    assert (r.aspect_ratio, r.prompt) == ("16:9", "a cat")


@pytest.mark.parametrize(
    ("text", "field", "value", "prompt"),
    [
        (
            "pika a cat dancing",
            "model_id",
            ModelId.FAST,
            "a cat dancing",
        ),  # a vendor name opening the message
        ("a cat dancing, luma", "model_id", ModelId.PRO, "a cat dancing"),  # … or closing it
        ("a pika eating grass", "model_id", None, "a pika eating grass"),  # an article: the animal
        ("海滩上的海螺", "model_id", None, "海滩上的海螺"),  # Chinese vendor words are everyday words
        (
            "/video portrait a fox in the snow",
            "aspect_ratio",
            "9:16",
            "a fox in the snow",
        ),  # after the prefix
        ("/video portrait of a fox", "aspect_ratio", None, "portrait of a fox"),
        ("fast please: a jellyfish glowing", "model_id", ModelId.FAST, "a jellyfish glowing"),
        ("a baby laughing, vertical and 5s", "aspect_ratio", "9:16", "a baby laughing"),
        ("the vertical and horizontal lines", "aspect_ratio", None, "the vertical and horizontal lines"),
        ("a fox in the snow, make it vertical please, 4k", "aspect_ratio", "9:16", "a fox in the snow"),
        (
            "一个人在玩手机10秒",
            "aspect_ratio",
            None,
            "一个人在玩手机",
        ),  # touching another field's word: content
        ("手机竖屏 一只猫", "aspect_ratio", "9:16", "一只猫"),  # touching its own field's word: a parameter
    ],
)
def test_weak_words_by_their_place(text: str, field: str, value: object, prompt: str) -> None:
    r = parse(text)
    assert (getattr(r, field), r.prompt) == (value, prompt)


def test_rare_values_and_option_spellings() -> None:
    r = parse("高清 6k 一只狗")
    assert (r.resolution, r.notes) == ("6K", ())  # 6K is sharper than 高清: silent
    for said in ("last", "last_frame", "last-frame"):
        r = parse("a cat", 2, options={"image_role": said})
        assert (r.task_type, r.notes) == (TaskType.FIRST_LAST_FRAME_TO_VIDEO, ()), said


def test_the_cut_is_exactly_max_text() -> None:
    from bot.parsing.parser import MAX_TEXT

    filler = "a" * (MAX_TEXT - 4)
    assert parse(filler + " 10s").duration == 10  # the last character is the MAX_TEXT-th: read
    assert parse(filler + "a 10s").duration is None  # one more: the "s" is cut off
