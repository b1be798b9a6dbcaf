"""The storyboard parser (pure): numbered shots in Chinese and English, and what is not a storyboard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.storyboard import Storyboard, parse_storyboard

CASES = [
    (
        "分镜：1. 小狗在草地上奔跑 2. 小狗跳进河里 3. 小狗甩干身上的水",
        "",
        ("小狗在草地上奔跑", "小狗跳进河里", "小狗甩干身上的水"),
    ),
    (
        "竖屏 10秒 shots: 1) a paper boat 2) it drifts into a drain",
        "竖屏 10秒",
        ("a paper boat", "it drifts into a drain"),
    ),
    ("Shots:\n1) a boat\n2) a drain\n3) the sea", "", ("a boat", "a drain", "the sea")),
    ("storyboard\nShot 1: a cat\nShot 2: the cat jumps", "", ("a cat", "the cat jumps")),
    ("pro 16:9 storyboard: 1. a dog 2. a cat", "pro 16:9", ("a dog", "a cat")),
    ("分镜：1、小狗跑 2、小狗跳", "", ("小狗跑", "小狗跳")),
    ("分镜头：(1) 日出 (2) 日落", "", ("日出", "日落")),
    ("分镜：（1）日出（2）日落", "", ("日出", "日落")),
    ("分镜：①小狗 ②小猫 ③小鸟", "", ("小狗", "小猫", "小鸟")),
    ("分镜：第一镜：小狗 第二镜：小猫", "", ("小狗", "小猫")),
    ("镜头1：小狗 镜头2：小猫", "", ("小狗", "小猫")),
    ("Shot 1: a cat, Shot 2: the cat jumps", "", ("a cat", "the cat jumps")),
    ("1. a dog runs 2.5 m\n2. it jumps", "", ("a dog runs 2.5 m", "it jumps")),
    ("横屏\n1. 海浪\n2. 灯塔", "横屏", ("海浪", "灯塔")),
    # Shot n is looked for after shot n-1: a "2)" before the first shot is header text.
    ("shots: see 2) below 1) a dog 2) a cat", "see 2) below", ("a dog", "a cat")),
    ("分镜：1. 小狗跑， 2. 小狗跳；", "", ("小狗跑", "小狗跳")),  # separators between shots are not prompt
    (
        "shots: 1) one 2) two 3) three 4) four 5) five 6) six 7) seven",
        "",
        ("one", "two", "three", "four", "five", "six", "seven"),
    ),
]


_CN = "一二三四五六七八九十"
CASES.append(
    (
        "分镜：" + " ".join(f"第{c}镜：shot {i}" for i, c in enumerate(_CN, 1)),
        "",
        tuple(f"shot {i}" for i in range(1, 11)),
    )
)
CASES.append(
    (
        "分镜：" + "".join(f"{c}镜头{i}" for i, c in enumerate("①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳", 1)),
        "",
        tuple(f"镜头{i}" for i in range(1, 21)),
    )
)


@pytest.mark.parametrize(("text", "header", "shots"), CASES)
def test_numbered_shots_become_a_storyboard(text: str, header: str, shots: tuple[str, ...]) -> None:
    assert parse_storyboard(text) == Storyboard(header=header, shots=shots)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a puppy running on grass",
        "a dog runs 2.5 m then 3) of them",  # numbers out of sequence are text
        "a dog 1. x 2. y",  # inline numbers without a keyword or named shots
        "分镜：1. 小狗",  # one shot is a plain request
        "分镜：1. 2. 小狗",  # an empty shot
        "shots: 2) a 3) b",  # not numbered from 1
        "竖屏 10秒 一只小狗在草地上奔跑",
        "make 2 shots: a dog and a cat",  # the keyword alone, no numbered shots
        "x 1. a dog\nx 2. a cat",  # numbers inside lines, no keyword
    ],
)
def test_other_messages_are_not_storyboards(text: str) -> None:
    assert parse_storyboard(text) is None


@given(st.text(max_size=300))
def test_never_raises_and_shots_are_never_empty(text: str) -> None:
    board = parse_storyboard(text)
    if board is not None:
        assert len(board.shots) >= 2
        assert all(s.strip() for s in board.shots)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "text", [" " * 100_000, "\t \n" * 30_000, "shot " * 20_000, "1. " * 30_000, "（" * 50_000]
)
def test_hostile_walls_of_text_are_read_in_linear_time(text: str) -> None:
    # A leading \s* in the marker pattern once made a wall of blanks quadratic (minutes for 100 KB).
    assert parse_storyboard(text) is None
