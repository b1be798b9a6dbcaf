"""The console adapter's own rules: what counts as an image path, and how a terminal shows a job."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.adapters.console import ConsoleAdapter, render_line, to_intent
from bot.adapters.console_input import PathRefusal
from bot.core import (
    Action,
    ActionIntent,
    Command,
    CommandIntent,
    GenerationIntent,
    Notice,
    NoticeKind,
    Origin,
)

PNG = (Path(__file__).resolve().parents[1] / "data" / "tiny.png").read_bytes()
ORIGIN = Origin(platform="console", chat_id="console", user_id="u")


def _intent(line: str, cwd: Path) -> GenerationIntent:
    intent = to_intent(line, user="u", seq=1, cwd=cwd)
    assert isinstance(intent, GenerationIntent), intent
    return intent


def test_frame_words_give_roles_and_punctuation_stays_out_of_paths(tmp_path: Path) -> None:
    (tmp_path / "day.png").write_bytes(PNG)
    (tmp_path / "night.png").write_bytes(PNG)
    intent = _intent("last frame ./night.png, first frame ./day.png, from day to night", tmp_path)
    assert [(a.filename, a.role, a.content_type) for a in intent.attachments] == [
        ("night.png", "last", "image/png"),
        ("day.png", "first", "image/png"),
    ]
    assert intent.text == "last frame first frame from day to night"
    # 首帧/尾帧, a full stop after the last path, and Chinese punctuation.
    intent = _intent("首帧 ./day.png，尾帧 ./night.png。从白天到黑夜", tmp_path)
    assert [(a.filename, a.role) for a in intent.attachments] == [("day.png", "first"), ("night.png", "last")]


def test_a_quoted_path_with_spaces_is_one_image(tmp_path: Path) -> None:
    (tmp_path / "my photo.png").write_bytes(PNG)
    intent = _intent('"./my photo.png" slow zoom in', tmp_path)
    assert [a.filename for a in intent.attachments] == ["my photo.png"] and intent.text == "slow zoom in"


def test_words_that_only_look_a_little_like_paths_stay_prompt_text(tmp_path: Path) -> None:
    intent = _intent("/video 16/9 a cat at 5.5 speed, day/night", tmp_path)
    assert intent.attachments == () and intent.text == "/video 16/9 a cat at 5.5 speed, day/night"


def test_each_kind_of_bad_path_refuses_the_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    (tmp_path / "small.png").write_bytes(PNG)
    cases = {
        "./gone.png a": ("console.path_missing", {"path": "./gone.png", "cwd": str(tmp_path)}),
        "notes.txt a": ("console.path_not_image", {"path": "notes.txt"}),
        f"{tmp_path}/ a": ("console.path_folder", {"path": f"{tmp_path}/"}),
    }
    for line, (key, params) in cases.items():
        assert to_intent(line, user="u", seq=1, cwd=tmp_path) == PathRefusal(key, params), line
    too_big = to_intent("./small.png a", user="u", seq=1, cwd=tmp_path, max_image_bytes=10)
    assert too_big == PathRefusal(
        "console.path_too_large", {"path": "./small.png", "size_mb": "0.0", "limit_mb": "0"}
    )


def test_settings_reset_reaches_the_command() -> None:
    intent = to_intent("/settings reset", user="u", seq=1, cwd=Path.cwd())
    assert isinstance(intent, CommandIntent) and dict(intent.args) == {"reset": ""}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _progress(pct: int) -> Notice:
    return Notice(
        NoticeKind.PROGRESS,
        "⏳ Generating",
        (f"▓ {pct}% (estimate)", "Elapsed 5s"),
        progress=pct,
        job_id="j1",
    )


async def test_a_terminal_redraws_progress_in_place_and_prints_the_result_after_the_finished_line() -> None:
    out = _Terminal()
    console = ConsoleAdapter(stdout=out)
    ref = await console.send(
        ORIGIN, Notice(NoticeKind.PRENOTICE, "🎬 Got it", ("line",), job_id="j1"), key="p"
    )
    await console.edit(ORIGIN, ref, _progress(10))
    await console.edit(ORIGIN, ref, _progress(20))
    assert out.getvalue() == (
        "[bot] 🎬 Got it\n      line\n"
        "[bot] ↻ ⏳ Generating  ▓ 10% (estimate) · Elapsed 5s"
        "\r\x1b[K[bot] ↻ ⏳ Generating  ▓ 20% (estimate) · Elapsed 5s"
    )
    await console.send(ORIGIN, Notice(NoticeKind.SUCCESS, "✅ Ready", ("url",), job_id="j1"), key="f")
    assert out.getvalue().endswith("20% (estimate) · Elapsed 5s")  # held until the message is closed
    await console.edit(
        ORIGIN, ref, Notice(NoticeKind.PROGRESS, "✅ Finished in 16s.", ("u",), progress=100, job_id="j1")
    )
    assert out.getvalue().endswith("\r\x1b[K[bot] ↻ ✅ Finished in 16s.\n[bot] ✅ Ready\n      url\n")


async def test_a_pipe_gets_one_line_per_edit_and_close_prints_a_held_result() -> None:
    out = io.StringIO()
    console = ConsoleAdapter(stdout=out)
    ref = await console.send(ORIGIN, Notice(NoticeKind.PRENOTICE, "🎬 Got it", job_id="j1"), key="p")
    await console.edit(ORIGIN, ref, _progress(10))
    await console.send(ORIGIN, Notice(NoticeKind.CANCELLED, "🚫 Cancelled", job_id="j1"), key="f")
    assert out.getvalue() == "[bot] 🎬 Got it\n[bot] ↻ ⏳ Generating  ▓ 10% (estimate) · Elapsed 5s\n"
    await console.close()  # the closing edit never came (a shutdown): the result is not lost
    assert out.getvalue().endswith("[bot] 🚫 Cancelled\n")


def test_an_edit_without_progress_is_its_title() -> None:
    notice = Notice(NoticeKind.PROGRESS, "📤 Uploading", ("Understood: …",), progress=0)
    assert render_line(notice) == "[bot] ↻ 📤 Uploading"


def test_settings_pairs_and_a_bare_word_reach_the_command() -> None:
    intent = to_intent("/settings model=pro duration=10 stray", user="u", seq=1, cwd=Path.cwd())
    assert isinstance(intent, CommandIntent) and dict(intent.args) == {"model": "pro", "duration": "10"}
    jobs = to_intent("/jobs now", user="u", seq=1, cwd=Path.cwd())
    assert isinstance(jobs, CommandIntent) and jobs.command is Command.JOBS and dict(jobs.args) == {}


def test_path_spellings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "pics").mkdir(parents=True)
    (home / "pics" / "a.png").write_bytes(PNG)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.png").write_bytes(PNG)
    (tmp_path / "c.png").write_bytes(PNG)
    (tmp_path / "logo.v2").write_bytes(PNG)  # an existing file with an odd suffix is a path too
    cwd = tmp_path / "sub"
    monkeypatch.setenv("HOME", str(home))
    for line, name in {
        "~/pics/a.png zoom": "a.png",
        "../c.png zoom": "c.png",
        "./b.png. zoom": "b.png",  # a full stop after the path
        "(./b.png) zoom": "b.png",
        f"{tmp_path}/c.png zoom": "c.png",
        "b.png zoom": "b.png",
        "../logo.v2 zoom": "logo.v2",
    }.items():
        intent = _intent(line, cwd)
        assert [a.filename for a in intent.attachments] == [name], line
        assert intent.text == "zoom", line
    # Not paths: a bare slash word, a ratio, a version number, a word with an unknown suffix.
    intent = _intent("/video 16/9 v1.5 hello.world", cwd)
    assert intent.attachments == () and intent.text == "/video 16/9 v1.5 hello.world"
    # An absolute path without a suffix is still a path.
    assert to_intent("/no/such/thing a", user="u", seq=1, cwd=cwd) == PathRefusal(
        "console.path_missing", {"path": "/no/such/thing", "cwd": str(cwd)}
    )


def test_unbalanced_quotes_still_find_the_paths(tmp_path: Path) -> None:
    (tmp_path / "c.png").write_bytes(PNG)
    intent = _intent('./c.png say "hi', tmp_path)
    assert [a.filename for a in intent.attachments] == ["c.png"] and intent.text == 'say "hi'
    intent = _intent('./c.png say "hi there"', tmp_path)  # quotes in the prompt stay
    assert [a.filename for a in intent.attachments] == ["c.png"] and intent.text == 'say "hi there"'


def test_an_unreadable_path_and_the_size_limit_boundary(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder", encoding="utf-8")
    (tmp_path / "c.png").write_bytes(PNG)
    assert to_intent("./blocker/x.png a", user="u", seq=1, cwd=tmp_path) == PathRefusal(
        "console.path_unreadable", {"path": "./blocker/x.png"}
    )
    exact = to_intent("./c.png a", user="u", seq=1, cwd=tmp_path, max_image_bytes=len(PNG))
    assert isinstance(exact, GenerationIntent) and exact.attachments[0].size == len(PNG)


def test_actions_commands_and_the_origin() -> None:
    here = Path.cwd()
    retry = to_intent("/retry 0123456789ab", user="ann", seq=7, cwd=here)
    assert isinstance(retry, ActionIntent) and (retry.job_id, retry.action) == ("0123456789ab", Action.RETRY)
    assert retry.origin == Origin("console", "console", "ann", message_id="m7", is_direct=True)
    other = to_intent("/other 0123456789ab", user="ann", seq=8, cwd=here)
    assert isinstance(other, ActionIntent) and other.action is Action.OTHER_MODEL
    cancel = to_intent("/cancel 0123456789ab", user="ann", seq=9, cwd=here)
    assert isinstance(cancel, CommandIntent) and cancel.command is Command.CANCEL
    assert dict(cancel.args) == {"job_id": "0123456789ab"}
    bare = to_intent("/cancel", user="ann", seq=9, cwd=here)
    assert isinstance(bare, CommandIntent) and bare.command is Command.CANCEL and dict(bare.args) == {}
    helps = to_intent("/help", user="ann", seq=9, cwd=here)
    assert isinstance(helps, CommandIntent) and helps.command is Command.HELP
    one = to_intent("/settings ratio=16:9", user="ann", seq=9, cwd=here)
    assert isinstance(one, CommandIntent) and dict(one.args) == {"ratio": "16:9"}
    odd = to_intent("/settings x=a=b", user="ann", seq=9, cwd=here)
    assert isinstance(odd, CommandIntent) and dict(odd.args) == {"x": "a=b"}


def test_prefixes_alone_make_a_path_and_lone_punctuation_does_not(tmp_path: Path) -> None:
    for word in ("./nosuffix", "../nosuffix", "~/nosuffix", ".\\nosuffix", "..\\nosuffix", "/nosuch/thing"):
        got = to_intent(f"{word} a", user="u", seq=1, cwd=tmp_path)
        assert isinstance(got, PathRefusal) and got.key == "console.path_missing", word
    (tmp_path / "logo.v2").write_bytes(PNG)
    assert [a.filename for a in _intent("logo.v2 spin", tmp_path).attachments] == ["logo.v2"]
    (tmp_path / "c.png").write_bytes(PNG)
    assert _intent("./c.png , spin", tmp_path).text == ", spin"  # a lone comma is a word, not a folder


def test_the_default_size_limit_is_20_mib(tmp_path: Path) -> None:
    for name, size in (("ok.png", 20 * 2**20), ("big.png", 20 * 2**20 + 1)):
        with (tmp_path / name).open("wb") as f:
            f.write(PNG)
            f.truncate(size)
    assert _intent("./ok.png a", tmp_path).attachments[0].size == 20 * 2**20
    big = to_intent("./big.png a", user="u", seq=1, cwd=tmp_path)
    assert isinstance(big, PathRefusal) and big.key == "console.path_too_large"
