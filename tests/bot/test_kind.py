"""The decision before any job (bot/parsing/kind.py): command, chatter, request or confirm."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.parsing.kind import (
    INTAKE_PATH,
    Decision,
    IntakeError,
    Kind,
    build_intake,
    content_size,
    decide,
    load_intake,
    warm,
)

CASES: list[tuple[str, int, str, str, dict[str, str]]] = [
    # commands in both languages, with and without the slash, with their arguments
    ("/help", 0, "command", "help", {}),
    ("帮助", 0, "command", "help", {}),
    ("/帮助", 0, "command", "help", {}),
    ("help please", 0, "command", "help", {}),
    ("帮助一下", 0, "command", "help", {}),
    ("/jobs", 0, "command", "jobs", {}),
    ("任务", 0, "command", "jobs", {}),
    ("/任务", 0, "command", "jobs", {}),
    ("我的任务", 0, "command", "jobs", {}),
    ("/settings", 0, "command", "settings", {}),
    ("设置", 0, "command", "settings", {}),
    ("/settings model=fast ar=9:16", 0, "command", "settings", {"model": "fast", "aspect_ratio": "9:16"}),
    ("settings duration=10", 0, "command", "settings", {"duration": "10"}),
    ("/cancel", 0, "command", "cancel", {}),
    ("取消", 0, "command", "cancel", {}),
    ("/cancel 3f9a0c1d2e4b", 0, "command", "cancel", {"job_id": "3f9a0c1d2e4b"}),
    ("取消 3f9a0c1d2e4b", 0, "command", "cancel", {"job_id": "3f9a0c1d2e4b"}),
    ("/retry", 0, "command", "retry", {}),
    ("重试", 0, "command", "retry", {}),
    ("/retry 3f9a0c1d2e4b", 0, "command", "retry", {"job_id": "3f9a0c1d2e4b"}),
    ("/重试 3f9a0c1d2e4b", 0, "command", "retry", {"job_id": "3f9a0c1d2e4b"}),
    ("/video-jobs", 0, "command", "jobs", {}),
    ("<@123456> /jobs", 0, "command", "jobs", {}),
    ("@_user_1 帮助", 0, "command", "help", {}),
    ("／任务", 0, "command", "jobs", {}),
    ("！help", 0, "command", "help", {}),
    # a slip in a harmless command's name, without a slash
    ("jbos", 0, "command", "jobs", {}),
    ("hlep", 0, "command", "help", {}),
    ("setings", 0, "command", "settings", {}),
    # unknown slash words: the nearest real one, never a job
    ("/jbos", 0, "command", "unknown", {"word": "jbos", "suggestion": "jobs"}),
    ("/vidoe landscpae a cat", 0, "command", "unknown", {"word": "vidoe", "suggestion": "video"}),
    ("/setings", 0, "command", "unknown", {"word": "setings", "suggestion": "settings"}),
    ("/canecl", 0, "command", "unknown", {"word": "canecl", "suggestion": "cancel"}),
    ("/xyzzyq", 0, "command", "unknown", {"word": "xyzzyq", "suggestion": "help"}),
    # chatter
    ("hi", 0, "chatter", "", {}),
    ("Hello there!", 0, "chatter", "", {}),
    ("thanks!!", 0, "chatter", "", {}),
    ("谢谢", 0, "chatter", "", {}),
    ("你好，在吗？", 0, "chatter", "", {}),
    ("what can you do?", 0, "chatter", "", {}),
    ("你能做什么", 0, "chatter", "", {}),
    ("how do I use this?", 0, "chatter", "", {}),
    ("👍", 0, "chatter", "", {}),
    ("", 0, "chatter", "", {}),
    ("<@123456>", 0, "chatter", "", {}),
    # requests
    ("a cat surfing", 0, "request", "", {}),
    ("/video a cat", 0, "request", "", {}),
    ("cancel culture explained by cats", 0, "request", "", {}),
    ("help me make a video of a dog", 0, "request", "", {}),
    ("帮助 一只猫在跳舞", 0, "request", "", {}),
    ("一只猫", 0, "request", "", {}),
    ("hi", 1, "request", "", {}),  # an image is content enough
    ("", 1, "request", "", {}),
    ("/video 竖屏 10秒", 0, "request", "", {}),  # nothing to show: the dispatcher asks for a prompt
    # with images, only a slash command standing alone is a command
    ("/retry", 1, "command", "retry", {}),
    ("/jbos", 2, "command", "unknown", {"word": "jbos", "suggestion": "jobs"}),
    ("/cancel 这张图做成视频", 1, "request", "", {}),
    ("帮助", 1, "request", "", {}),
    # thin prompts
    ("/video hi", 0, "confirm", "", {}),
    ("cat", 0, "confirm", "", {}),
    ("猫", 0, "confirm", "", {}),
    ("竖屏 10秒 猫", 0, "confirm", "", {}),
    ("stop", 0, "command", "cancel", {}),
    ("shop", 0, "request", "", {}),
    ("lost", 0, "request", "", {}),
]


def test_every_decision_case() -> None:
    """All cases in one loop, every mismatch reported together."""
    wrong = []
    for text, images, kind, command, args in CASES:
        d = decide(text, images)
        got = (d.kind.value, d.command, dict(d.args))
        if got != (kind, command, args):
            wrong.append(f"{text!r} (images={images}): {got}, expected {(kind, command, args)}")
    assert not wrong, "\n".join(wrong)


def test_requests_and_confirms_carry_the_parse_and_commands_do_not() -> None:
    d = decide("竖屏 10秒 猫")
    assert d.kind is Kind.CONFIRM and d.parsed is not None and d.parsed.prompt == "猫"
    assert d.parsed.aspect_ratio == "9:16" and d.parsed.duration == 10
    assert decide("/jobs").parsed is None and decide("hi").parsed is None
    assert decide("a cat surfing").to_json() == {"kind": "request"}
    assert decide("/cancel 3f9a0c1d2e4b").to_json() == {
        "kind": "command",
        "command": "cancel",
        "args": {"job_id": "3f9a0c1d2e4b"},
    }


def test_the_thin_prompt_bar_is_configurable() -> None:
    assert decide("a dog").kind is Kind.REQUEST  # four letters: the default bar
    assert decide("dog").kind is Kind.CONFIRM
    assert decide("dog", min_prompt_chars=3).kind is Kind.REQUEST
    assert decide("a dog", min_prompt_chars=5).kind is Kind.CONFIRM
    assert decide("小狗", min_prompt_chars=4).kind is Kind.REQUEST  # a CJK character counts as two
    assert decide("小狗", min_prompt_chars=5).kind is Kind.CONFIRM
    assert decide("dog", min_prompt_chars=0).kind is Kind.REQUEST


def test_content_size_counts_letters_digits_and_cjk_twice() -> None:
    assert content_size("a dog!") == 4
    assert content_size("小狗 2") == 5
    assert content_size("… — !") == 0


def test_long_messages_are_never_chatter_or_bare_commands() -> None:
    long_thanks = "thanks " * 20
    assert decide(long_thanks).kind is not Kind.CHATTER
    assert decide("help " + "a cat dancing on the moon " * 4).kind is Kind.REQUEST


def test_bare_slips_never_cancel_or_retry() -> None:
    for slip in ("canel", "cancle", "retyr", "rerty"):
        d = decide(slip)
        assert d.kind is not Kind.COMMAND, slip


def test_a_bare_command_word_with_other_words_is_a_request() -> None:
    assert decide("retry the sunset with more clouds").kind is Kind.REQUEST
    assert decide("/retry the sunset").to_json()["command"] == "retry"  # a slash is a command
    assert dict(decide("/retry the sunset").args) == {}


def test_the_data_file_is_valid_and_problems_are_all_reported() -> None:
    words = load_intake()
    assert set(words.words.values()) == {"help", "jobs", "settings", "cancel", "retry"}
    raw: dict[str, Any] = yaml.safe_load(INTAKE_PATH.read_text(encoding="utf-8"))
    bad = {
        **raw,
        "version": 2,
        "commands": {**raw["commands"], "jobs": ["help"], "extra": ["x"]},
        "generate": ["menu"],
        "chatter": ["(unclosed"],
        "job_id": "[",
        "min_prompt_chars": -1,
        "setting_keys": [],
    }
    words2, problems = build_intake(bad)
    assert words2 is None
    text = "\n".join(problems)
    for needle in (
        "version",
        "commands: must name",
        "commands.jobs: 'help' also names help",
        "generate: 'menu'",
        "chatter[0]",
        "job_id",
        "min_prompt_chars",
        "setting_keys",
    ):
        assert needle in text, (needle, text)
    assert build_intake([]) == (None, ["the file must hold a mapping"])
    with pytest.raises(IntakeError) as err:
        raise IntakeError(problems)
    assert err.value.problems == problems


def test_warm_compiles_without_error_and_decisions_are_frozen() -> None:
    warm()
    d = decide("hi")
    assert isinstance(d, Decision)
    with pytest.raises(AttributeError):
        d.kind = Kind.REQUEST  # type: ignore[misc]


def test_the_bounds_of_chatter_and_suggestions() -> None:
    assert decide("ha" * 40).kind is Kind.CHATTER  # 80 characters: still chatter
    assert decide("ha" * 40 + "h").kind is Kind.REQUEST  # 81: too long to be chatter
    assert dict(decide("/setxx").args) == {
        "word": "setxx",
        "suggestion": "settings",
    }  # similarity 50: suggested
    assert dict(decide("/abcd").args) == {"word": "abcd", "suggestion": "help"}  # 44: too far, help instead


def test_imabot_parse_json_says_the_kind(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from bot.__main__ import main

    for argv, want in (
        (
            ["parse", "/jbos", "--json"],
            {"kind": "command", "command": "unknown", "args": {"word": "jbos", "suggestion": "jobs"}},
        ),
        (["parse", "你好", "--json"], {"kind": "chatter"}),
        (["parse", "/video hi", "--json"], {"kind": "confirm", "prompt": "hi"}),
        (["parse", "竖屏 10秒 一只小狗在草地上奔跑", "--json"], {"kind": "request", "aspect_ratio": "9:16"}),
        (["parse", "hi", "--images", "1", "--json"], {"kind": "request", "task_type": "image_to_video"}),
    ):
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert {k: out[k] for k in want} == want, (argv, out)
        assert "prompt" in out and "notes" in out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(max_size=120)
    | st.lists(
        st.sampled_from(
            [
                "/",
                "／",
                "!",
                "jobs",
                "帮助",
                "取消",
                "retry",
                " ",
                "，",
                "hi",
                "谢谢",
                "<@1>",
                "@_user_1",
                "=",
                "model",
                "3f9a0c1d2e4b",
                "竖屏",
                "10秒",
                "a cat",
                "?",
                "👍",
                "settings",
                "ar=9:16",
            ]
        ),
        max_size=12,
    ).map("".join),
    images=st.integers(min_value=-1, max_value=4),
)
def test_decide_never_raises_and_only_requests_carry_a_parse(text: str, images: int) -> None:
    d = decide(text, images)
    assert d.kind in set(Kind)
    assert (d.parsed is not None) == (d.kind in (Kind.REQUEST, Kind.CONFIRM))
    # With an image, only a slash command standing alone is not a request.
    assert d.kind is Kind.REQUEST or images <= 0 or (d.kind is Kind.COMMAND and len(text.split()) == 1)
    if d.kind is Kind.COMMAND:
        assert d.command in ("help", "jobs", "settings", "cancel", "retry", "unknown")


def test_slips_are_guessed_only_for_latin_words_of_four_letters_or_more() -> None:
    assert decide("jbos").command == "jobs"
    for word in ("hep", "job5", "jöbs"):  # three letters, a digit, a non-ASCII letter: left alone
        assert decide(word).kind is not Kind.COMMAND, word


def test_malformed_intake_data_names_each_problem() -> None:
    raw: dict[str, Any] = yaml.safe_load(INTAKE_PATH.read_text(encoding="utf-8"))
    bad = {**raw, "commands": {**raw["commands"], "help": "help"}, "chatter": "hi", "job_id": ""}
    words, problems = build_intake(bad)
    assert words is None
    assert "commands.help: must be a non-empty list of words" in problems
    assert "chatter: must be a non-empty list of regexes" in problems
    assert "job_id: missing" in problems
    assert len(problems) == 3, problems


def test_the_public_names_exist() -> None:
    import bot.parsing
    import bot.parsing.kind as kind

    for module in (kind, bot.parsing):
        assert all(hasattr(module, name) for name in module.__all__), module.__name__
    assert bot.parsing.decide is kind.decide and bot.parsing.warm is kind.warm


def test_typed_job_ids_after_a_slash_and_broken_chatter_data() -> None:
    assert dict(decide("/cancel j42").args) == {"job_id": "j42"}  # any id-like word after a slash
    assert decide("取消 j42").kind is not Kind.COMMAND  # without a slash only a real (hex) id
    raw: dict[str, Any] = yaml.safe_load(INTAKE_PATH.read_text(encoding="utf-8"))
    words, problems = build_intake({**raw, "chatter": 5})
    assert words is None and problems == ["chatter: must be a non-empty list of regexes"]


def test_each_shape_of_a_bad_word_list_is_named() -> None:
    raw: dict[str, Any] = yaml.safe_load(INTAKE_PATH.read_text(encoding="utf-8"))
    for commands_help, generate in (([], "make"), (["help", " "], []), (["help", 7], ["make", 7])):
        bad = {**raw, "commands": {**raw["commands"], "help": commands_help}, "generate": generate}
        words, problems = build_intake(bad)
        assert words is None
        assert "commands.help: must be a non-empty list of words" in problems, commands_help
        assert "generate: must be a non-empty list of words" in problems, generate
