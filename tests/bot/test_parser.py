"""The zh/en phrase parser: the phrasing corpus, the JSON shape, options, and robustness on any text."""

from __future__ import annotations

import re
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
from bot.parsing.numbers import cn_to_int, en_to_int, number_pattern
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
        ("一百〇五", 105),  # 〇 is how a zero is often written
        ("〇", 0),
        ("三", 3),
        ("三十", 30),
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


def test_a_number_token_pairs_only_a_tens_word_with_a_unit_word() -> None:
    words = {"zero": 0, "five": 5, "ten": 10, "twenty": 20, "fifteen": 15}
    token = re.compile(number_pattern(words))
    assert token.fullmatch("twenty five") and token.fullmatch("twenty-five") and token.fullmatch("fifteen")
    for not_one in ("ten five", "twenty ten", "twenty zero", "fifteen five"):
        assert token.fullmatch(not_one) is None, not_one


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
    assert parse("kitten " * 5 + ", landscpae, " + "kitten " * 5).aspect_ratio == "16:9"
    # Past 64 words, the first and the last 32 are looked at: settings come first or last.
    assert parse("kitten " * 31 + ", landscpae, " + "kitten " * 40).aspect_ratio == "16:9"
    assert parse("kitten " * 40 + ", landscpae, " + "kitten " * 31).aspect_ratio == "16:9"
    assert parse("kitten " * 32 + ", landscpae, " + "kitten " * 40).aspect_ratio is None
    assert parse("kitten " * 40 + ", landscpae, " + "kitten " * 32).aspect_ratio is None


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


# -- long messages: parameters are looked for near the ends only, so the work stays bounded ----------------

_SCENE = "a quiet village street in the rain with lanterns swinging in the wind " * 20  # 1,400 characters


def test_a_long_message_takes_its_settings_from_its_ends_only() -> None:
    """People put settings before or after a long description; inside it, "16:9 1080p" is part of the text."""
    r = parse("竖屏 " + _SCENE + "16:9 1080p in the middle " + _SCENE + " 10s")
    assert (r.aspect_ratio, r.duration, r.resolution) == ("9:16", 10, None)
    assert "16:9 1080p in the middle" in r.prompt and r.prompt.startswith("a quiet village")
    # 1,000 characters or fewer: all of it is read.
    short = parse("竖屏 " + _SCENE[:700] + " 16:9 1080p in the middle 10s")
    assert short.resolution == "1080P"


def test_a_word_cut_by_the_edge_of_the_searched_head_is_not_misread() -> None:
    """A word straddling the edge of the searched head ("4kids") is not "4k" followed by more text."""
    from bot.parsing.matcher import EDGE

    text = "x" * (EDGE - 3) + " 4kids party with balloons " + "y " * 400
    assert text.index("4kids") + 2 == EDGE and len(text) > 1000
    r = parse(text)
    assert r.resolution is None and "4kids party" in r.prompt


def test_after_a_flood_of_repeats_the_last_one_said_still_wins() -> None:
    r = parse("竖屏 " * 30 + "一只猫在跑 横屏")  # a short message: every repeat is cut
    assert r.aspect_ratio == "16:9" and r.prompt == "一只猫在跑"
    r = parse("10秒 " * 300 + "一只猫在跑 5秒")  # a long one: the last said still wins
    assert r.duration == 5 and r.prompt.endswith("一只猫在跑")
    r = parse("一只猫在跑 5秒 " + "10秒 " * 300)
    assert r.duration == 10 and r.prompt.startswith("一只猫在跑")


def test_a_typo_is_looked_for_at_both_ends_of_a_long_message() -> None:
    """More than 64 latin words: the slips at either end are still found."""
    for text in (_SCENE + ", 10s, potrait", "potrait 10s " + _SCENE, _SCENE[:700] + ", 10s, potrait"):
        r = parse(text)
        assert (r.aspect_ratio, r.duration) == ("9:16", 10), text[:30]
        assert [n.key for n in r.notes] == ["note.typo"] and "potrait" not in r.prompt


# -- known misreads, by class ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        (
            "can u do a cinematic shot of a wolf howling at the moon",
            "a cinematic shot of a wolf howling at the moon",
        ),
        ("could you make a cat surfing a wave", "a cat surfing a wave"),
        ("would you please create two foxes in the snow", "two foxes in the snow"),
        ("i want a video of a cat surfing", "a cat surfing"),
        ("i wanna see a dragon over a castle", "a dragon over a castle"),
        ("I’d like a video of a sunrise over the sea", "a sunrise over the sea"),
        ("i'd love to see a whale breaching, 10s", "a whale breaching"),
        ("gimme a dragon flying over a castle", "a dragon flying over a castle"),
        ("make me a dragon flying over a castle", "a dragon flying over a castle"),
        ("pls make a robot dancing in the rain", "a robot dancing in the rain"),
        ("can i get a video of a rocket launch", "a rocket launch"),
        ("show me a fox in the snow", "a fox in the snow"),
        ("lemme see a whale jumping", "a whale jumping"),
        ("hey can you animate a dragon breathing fire", "a dragon breathing fire"),
        ("need a vid of a sunset timelapse over the ocean", "a sunset timelapse over the ocean"),
        ("i need this for tiktok: a girl doing a dance challenge", "a girl doing a dance challenge"),
        ("can you make the video vertical? a boy flying a kite", "a boy flying a kite"),
        ("short clip: a boy flying a kite", "a boy flying a kite"),
        ("a boy flying a kite, like kling would do", "a boy flying a kite"),
        ("thanks! now a boy flying a kite", "a boy flying a kite"),
        ("ok now do a boy flying a kite", "a boy flying a kite"),
        ("make a cat surfing video", "a cat surfing"),  # the wrapper, not the opener, takes this one
        ("make it rain on a city street", "make it rain on a city street"),  # no article: "make" is content
    ],
)
def test_english_openers_are_not_left_in_the_prompt(text: str, prompt: str) -> None:
    assert parse(text).prompt == prompt


@pytest.mark.parametrize(
    "text",
    [
        "她在横屏玩游戏",
        "他用横屏看电影，吃着爆米花",
        "小孩拿着竖屏手机自拍",
        "一个男生躺在床上竖屏刷抖音",
        "女孩横屏追剧，边看边哭",
        "主播正在竖屏直播",
    ],
)
def test_a_screen_in_the_scene_is_content_not_an_aspect_ratio(text: str) -> None:
    """横屏/竖屏 as the screen someone uses in the story (在/拿着 before it, 玩/看电影/手机 after it)."""
    r = parse(text)
    assert (r.aspect_ratio, r.prompt, r.removed) == (None, text, ())


def test_the_same_words_still_set_the_aspect_ratio_when_they_ask_for_it() -> None:
    assert parse("横屏 她在玩游戏").aspect_ratio == "16:9"
    assert parse("她在玩游戏，竖屏").aspect_ratio == "9:16"
    assert parse("用横屏 一只猫在跑").aspect_ratio == "16:9"
    assert parse("海边的灯塔，要发抖音的").aspect_ratio == "9:16"
    assert parse("海边的灯塔，方形的就行").aspect_ratio == "1:1"


def test_a_word_that_ends_in_yong_is_not_the_frame_of_the_next_parameter() -> None:
    """The 用 of "急用" (a wish for speed of its own) is not "use" framing 快点出."""
    r = parse("海边的灯塔 急用 快点出")
    assert (r.prompt, r.model_id) == ("海边的灯塔", ModelId.FAST)


def test_keywords_spaced_around_a_cut_stay_spaced() -> None:
    assert parse("奶茶广告 竖屏 产品特写 镜头旋转").prompt == "奶茶广告 产品特写 镜头旋转"
    assert parse("奶茶广告竖屏产品特写").prompt == "奶茶广告产品特写"  # not spaced: joined as written
    assert parse("一只猫 竖屏在跑").prompt == "一只猫在跑"  # a space on one side only: one sentence
    assert parse("一只猫竖屏 在跑").prompt == "一只猫在跑"
    # Each cut is judged by its own sides.
    assert parse("奶茶广告 竖屏 产品特写10秒 镜头旋转").prompt == "奶茶广告 产品特写镜头旋转"
    assert parse("奶茶广告竖屏 产品特写 10秒 镜头旋转").prompt == "奶茶广告产品特写 镜头旋转"


# -- mutants the corpus did not notice (second round) -------------------------------------------------------


def test_a_trailing_newline_does_not_hide_a_setting_at_the_start() -> None:
    """Chat clients often send a trailing newline or space; the start of the text is still its start."""
    for text in ("vertical, a cat dancing\n", "vertical, a cat dancing ", "vertical, a cat dancing"):
        assert parse(text).aspect_ratio == "9:16", repr(text)


def test_only_full_width_ascii_is_folded() -> None:
    """U+FF01…U+FF5E map to ASCII; the full-width white parentheses just after them are not ASCII."""
    assert fold("！～") == "!~"
    assert fold("｟竖屏｠") == "｟竖屏｠"


@pytest.mark.parametrize(
    "text",
    [
        "a phone screen showing a message",
        "his phone screen cracks as he falls",
        "a 5 second rule joke with a cookie",
        "a 3-second delay before the explosion",
        "高清的老照片慢慢变成彩色",
        "爷爷看报纸，标题是高质量发展",
        "倒计时5秒，火箭点火升空",
        "一辆跑车在赛道上极速狂飙",
    ],
)
def test_parameter_words_that_name_things_in_the_story_stay_content(text: str) -> None:
    r = parse(text)
    assert r.prompt == text and r.removed == ()
    assert (r.aspect_ratio, r.duration, r.resolution, r.model_id) == (None, None, None, None)


def test_the_same_words_said_as_settings_still_count() -> None:
    assert parse("a cat, phone screen").aspect_ratio == "9:16"
    assert parse("a 10 second video of a cat").duration == 10
    assert parse("老照片慢慢变成彩色，高清的").resolution == "720P"
    assert parse("松鼠在树上啃松果 高质量的").model_id is ModelId.PRO
    assert parse("火箭点火升空，5秒").duration == 5


def test_a_weak_word_glued_to_a_setting_of_another_field_stays_content() -> None:
    """In "10秒手机拍摄的街景" 手机 touches the duration, but the phone is what filmed the street."""
    for text, prompt in (("10秒手机拍摄的街景", "手机拍摄的街景"), ("5秒快手主播在跳舞", "快手主播在跳舞")):
        r = parse(text)
        assert (r.prompt, r.aspect_ratio) == (prompt, None) and r.duration in (5, 10)
    r = parse("竖屏抖音风 一只猫在跳舞")  # "抖音风" is a style: only 竖屏 is a setting
    assert (r.aspect_ratio, r.prompt) == ("9:16", "抖音风 一只猫在跳舞")


def test_a_block_of_settings_closing_the_message_may_be_split_by_punctuation() -> None:
    """In "5s, landscape pro" the comma does not cut landscape off from the duration before it."""
    r = parse("a cat dancing 5s, landscape pro")
    assert (r.prompt, r.duration, r.aspect_ratio, r.model_id) == ("a cat dancing", 5, "16:9", ModelId.PRO)


def test_a_chinese_platform_name_before_english_words_is_still_read() -> None:
    """The platform name b站 ends in a Chinese character: the space after it separates it from English."""
    r = parse("发b站 a cat's day")
    assert (r.aspect_ratio, r.prompt) == ("16:9", "a cat's day")


def test_compatibility_ideographs_join_like_other_chinese_characters() -> None:
    """﨑 (U+FA11, common in names) is a Chinese character: no space is put in where 竖屏 was cut out."""
    assert parse("山﨑竖屏在散步").prompt == "山﨑在散步"
    assert parse("一只猫竖屏在跑").prompt == "一只猫在跑"


@pytest.mark.parametrize(
    "text",
    [
        "a pika",
        "kids watch luma lights glow over the lake",
        "a runway",
        "families at the wan festival tonight",
    ],
)
def test_a_vendor_name_inside_the_sentence_or_after_an_article_is_content(text: str) -> None:
    """Only a vendor name opening or closing the message is a model wish; "a pika" is the animal."""
    r = parse(text)
    assert (r.model_id, r.prompt, r.notes) == (None, text, ())


def test_the_typo_bound_at_exactly_sixty_five_words() -> None:
    """64 words are all looked at; from 65 on, the middle ones are not."""
    assert parse("kitten " * 31 + ", landscpae, " + "kitten " * 32).aspect_ratio == "16:9"
    assert parse("kitten " * 32 + ", landscpae, " + "kitten " * 32).aspect_ratio is None


def test_an_image_role_said_in_the_negative_sets_nothing() -> None:
    """Saying 不要参考图 turns the reference reading down: one image is the first frame, as by default."""
    r = parse("不要参考图，让它动起来", 1)
    assert (r.task_type, r.image_roles, r.prompt) == (TaskType.IMAGE_TO_VIDEO, ("first",), "让它动起来")
    assert parse("不要参考图，让它动起来").notes == ()  # no image: nothing to say about one either
    r = parse("不要首帧，这张做风格参考", 1)
    assert r.task_type is TaskType.REFERENCE_IMAGE_TO_VIDEO and r.notes == ()


def test_weak_words_closing_the_message_are_read_whatever_their_order() -> None:
    """The word square counts once the vendor name after it is read: pending words are looked at again."""
    for text, model in (
        ("a cat dancing, square pika", ModelId.FAST),
        ("a cat dancing on the roof, square luma", ModelId.PRO),
    ):
        r = parse(text)
        assert (r.aspect_ratio, r.model_id) == ("1:1", model) and "square" not in r.prompt


@pytest.mark.parametrize("text", ["pika a cat dancing.", "pika a cat dancing\n", "luma: a cat dancing!"])
def test_a_vendor_name_opening_a_message_that_ends_in_punctuation_is_read(text: str) -> None:
    r = parse(text)
    assert r.model_id is not None and r.prompt.startswith("a cat dancing")


def test_a_space_before_punctuation_is_tidied_away() -> None:
    """Spaces typed before a comma or a closing mark do not reach the prompt (people type "a cat , dancing")."""
    assert parse("a cat , dancing in the rain").prompt == "a cat, dancing in the rain"
    assert parse("a cat dancing in the rain (sad) !").prompt == "a cat dancing in the rain (sad)!"
    assert parse("一只猫 ， 在雨里跳舞").prompt == "一只猫， 在雨里跳舞"


def test_2k_said_with_a_vague_hd_word_is_2k_without_a_conflict() -> None:
    """Saying 2K高清 is one wish: 2K is at least HD, so the vague word yields to it silently."""
    for text in ("一只猫 2K高清", "高清 2k 一只猫"):
        r = parse(text)
        assert (r.resolution, r.notes, r.prompt) == ("2K", (), "一只猫")


def test_a_setting_spaced_from_the_weak_word_after_it_does_not_pull_it_in() -> None:
    """In "竖屏 手机拍的画面" 竖屏 is the setting and the phone that filmed the scene stays in the prompt."""
    r = parse("竖屏 手机拍的画面")
    assert (r.aspect_ratio, r.prompt) == ("9:16", "手机拍的画面")


@pytest.mark.parametrize(
    ("option", "task"),
    [
        ("first", TaskType.FIRST_LAST_FRAME_TO_VIDEO),
        ("first_frame", TaskType.FIRST_LAST_FRAME_TO_VIDEO),
        ("first-last", TaskType.FIRST_LAST_FRAME_TO_VIDEO),
        ("last_frame", TaskType.FIRST_LAST_FRAME_TO_VIDEO),
        ("frames", TaskType.FIRST_LAST_FRAME_TO_VIDEO),
        ("last", TaskType.FIRST_LAST_FRAME_TO_VIDEO),
        ("first_last", TaskType.FIRST_LAST_FRAME_TO_VIDEO),
        ("first last frame", TaskType.FIRST_LAST_FRAME_TO_VIDEO),
        ("reference", TaskType.REFERENCE_IMAGE_TO_VIDEO),
        ("ref", TaskType.REFERENCE_IMAGE_TO_VIDEO),
        ("references", TaskType.REFERENCE_IMAGE_TO_VIDEO),
    ],
)
def test_every_documented_image_role_option_is_understood(option: str, task: TaskType) -> None:
    r = parse("a cat", 2, options={"image_role": option})
    assert r.task_type is task and r.notes == ()
    said = parse("把这两张图做成参考 a cat", 2, options={"image_role": option})
    assert said.task_type is task  # the typed option wins over the words


@pytest.mark.parametrize("option", ["auto", "default"])
def test_an_auto_image_role_option_leaves_the_words_to_decide(option: str) -> None:
    assert parse("a cat", 2, options={"image_role": option}).notes == ()
    said = parse("把这两张图做成参考 a cat", 2, options={"image_role": option})
    assert said.task_type is TaskType.REFERENCE_IMAGE_TO_VIDEO and said.notes == ()


@pytest.mark.parametrize(
    ("text", "model"), [("海边的灯塔 先打个草稿", ModelId.FAST), ("海边的灯塔，先打个草稿", ModelId.FAST)]
)
def test_a_one_character_glue_word_after_a_space_or_a_comma_goes_with_the_setting(
    text: str, model: ModelId
) -> None:
    r = parse(text)
    assert (r.prompt, r.model_id) == ("海边的灯塔", model)


@pytest.mark.parametrize(
    ("text", "prompt"),
    [
        ("一只熊猫在吃竹子《竖屏》", "一只熊猫在吃竹子"),  # the emptied brackets go too
        ("a panda (make it portrait please) eating bamboo", "a panda eating bamboo"),
    ],
)
def test_settings_in_brackets_leave_no_empty_brackets(text: str, prompt: str) -> None:
    r = parse(text)
    assert (r.prompt, r.aspect_ratio) == (prompt, "9:16")


def test_image_role_notes_name_the_words_they_are_about() -> None:
    r = parse("第一张做首帧 不对 都当参考 一只猫", 2)
    assert r.notes == (
        Note("note.conflict", {"field": "image_role", "dropped": "第一张做首帧", "kept": "当参考"}),
    )
    assert parse("首尾帧 一只猫", 3).notes == (
        Note("note.frames_too_many", {"count": 3, "phrase": "首尾帧"}),
    )


def test_5k_said_with_a_vague_uhd_word_is_5k_without_a_conflict() -> None:
    assert parse("超清 5k 一只猫").notes == ()


@pytest.mark.parametrize("option", ["auto", "default", "默认", "none"])
def test_a_default_model_option_clears_the_model_said_without_a_complaint(option: str) -> None:
    r = parse("a cat dancing, pro", options={"model": option})
    assert (r.model_id, r.notes, r.prompt) == (None, (), "a cat dancing")


@pytest.mark.parametrize(
    ("size", "ratio", "resolution"),
    [
        ("7680x4320", "16:9", "8K"),
        ("2560x1080", "21:9", "1080P"),  # 64:27 reads as the ultrawide it is
        ("1023x767", "4:3", None),  # an odd size near 4:3
        ("1366x768", "16:9", None),  # the laptop size, 683:384 exactly
        ("1080x1350", "4:5", "1080P"),
        ("767x1023", "3:4", None),  # odd sizes near each portrait and landscape ratio
        ("1079x1349", "4:5", None),
        ("1349x1079", "5:4", None),
    ],
)
def test_a_pixel_size_gives_its_ratio_and_resolution(size: str, ratio: str, resolution: str | None) -> None:
    r = parse(f"{size} a city at night", 0)
    assert (r.aspect_ratio, r.resolution, r.prompt) == (ratio, resolution, "a city at night")
