"""A newcomer's first hour, from a real `imabot console --sandbox` process: every reply checked exactly
(built from the locale texts), in the order a terminal shows it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from bot.jobs.progress import format_range
from bot.jobs.texts import Texts
from ima.models import ESTIMATED_SECONDS, ModelId

from .procs import ROOT

pytestmark = pytest.mark.slow
T = Texts.load()
FAST = T("model.ima-pro-fast")
PNG = (ROOT / "tests" / "data" / "tiny.png").read_bytes()


def bot(key: str, locale: str = "en", **params: object) -> str:
    """A reply line as the console prints it."""
    return "[bot] " + T(key, locale, **params)


class Sandbox:
    """One `imabot console --sandbox` process in `cwd`, with its state under `cwd/state`."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, cwd: Path, *, speed: float = 60.0) -> Sandbox:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "console",
            "--sandbox",
            "--speed",
            str(speed),
            "--state-dir",
            str(cwd / "state"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(cwd),
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "LANG": "C.UTF-8",
                "IMA_API_KEY": "",
                "PYTHONPATH": str(ROOT),
            },
        )
        box = cls(proc)
        await box.until(lambda ls: T("console.hint") in ls)  # the banner: sandbox, where state is, a hint
        return box

    async def say(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
        await self.proc.stdin.drain()

    async def until(self, predicate, within: float = 60.0) -> list[str]:  # type: ignore[no-untyped-def]
        """Reads stdout lines until predicate(new lines) holds; returns the new lines."""
        start = len(self.lines)

        async def pump() -> list[str]:
            assert self.proc.stdout is not None
            while not predicate(self.lines[start:]):
                raw = await self.proc.stdout.readline()
                if not raw:
                    err = (await self.proc.stderr.read()).decode() if self.proc.stderr else ""
                    raise AssertionError(f"sandbox exited early:\n{''.join(self.lines)}\n{err[-3000:]}")
                self.lines.append(raw.decode().rstrip("\n"))
            return self.lines[start:]

        return await asyncio.wait_for(pump(), within)

    async def reply_to(self, line: str, marker_locale: str = "en") -> list[str]:
        """The lines a line's reply prints: everything before the /help sent right after it (a marker,
        in the user's language: marker_locale)."""
        await self.say(line, "/help")
        got = await self.until(lambda ls: "      " + T("commands.help_help", marker_locale) in ls)
        return got[: got.index(bot("command.help_title", marker_locale))]

    async def finish(self, within: float = 60.0) -> tuple[int, list[str], str]:
        """Ends input and returns the exit status, the remaining stdout lines and stderr."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        out, err = await asyncio.wait_for(self.proc.communicate(), within)
        rest = out.decode().splitlines()
        self.lines += rest
        return self.proc.returncode or 0, rest, err.decode()


def job_id_of(lines: list[str]) -> str:
    """The job id in a pre-notice's Cancel hint."""
    ids = [m.group(1) for line in lines if (m := re.search(r"/cancel ([0-9a-f]{12})", line))]
    assert ids, lines
    return ids[-1]


def title_index(lines: list[str], key: str, locale: str = "en", **params: object) -> int:
    return lines.index(bot(key, locale, **params))


# -- 3. image paths -----------------------------------------------------------------------------------


async def test_a_path_that_is_not_a_readable_image_gets_a_specific_reply_and_no_job(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a picture", encoding="utf-8")
    (tmp_path / "fake.png").write_text("not a picture either", encoding="utf-8")
    big = tmp_path / "big.png"
    with big.open("wb") as f:  # a real PNG header, then 21 MiB (sparse): over the 20 MB limit
        f.write(PNG)
        f.truncate(21 * 2**20)
    box = await Sandbox.start(tmp_path)
    assert await box.reply_to("./missing.png the ocean at dusk") == [
        bot("console.path_missing", path="./missing.png", cwd=str(tmp_path))
    ]
    assert await box.reply_to("the ocean, ./notes.txt, at dusk") == [
        bot("console.path_not_image", path="./notes.txt")
    ]
    assert await box.reply_to("fake.png the ocean") == [bot("console.path_not_image", path="fake.png")]
    assert await box.reply_to(f"{big} waves") == [
        bot("console.path_too_large", path=str(big), size_mb="21.0", limit_mb="20")
    ]
    assert await box.reply_to(f"{tmp_path} waves") == [bot("console.path_folder", path=str(tmp_path))]
    assert await box.reply_to("/jobs") == [bot("command.jobs_empty")]  # not one job was made
    code, _, err = await box.finish()
    assert code == 0 and "Traceback" not in err


async def test_punctuation_after_paths_is_not_part_of_them(tmp_path: Path) -> None:
    (tmp_path / "day.png").write_bytes(PNG)
    (tmp_path / "night.png").write_bytes(PNG)
    box = await Sandbox.start(tmp_path)
    await box.say("last frame ./night.png, first frame ./day.png, from day to night")
    got = await box.until(lambda ls: any(line.startswith(bot("success.title")) for line in ls))
    assert "      " + T("prenotice.images", roles=f"{T('role.first')} + {T('role.last')}") in got
    assert not any("night.png" in line or "day.png" in line for line in got)  # no path left in the prompt
    await box.finish()


# -- 4. the sandbox remembers; Ctrl-C and /quit say what happens -------------------------------------


async def test_jobs_and_settings_survive_a_sandbox_restart(tmp_path: Path) -> None:
    box = await Sandbox.start(tmp_path)
    await box.say("/settings duration=10", "/video a paper boat on a rainy street")
    code, _, err = await box.finish()  # waits for the job
    assert code == 0, err
    first = box.lines
    job = job_id_of(first)
    assert bot("success.title") in first
    assert "      " + T("console.state", path=str(tmp_path / "state" / "sandbox.sqlite3")).strip() in [
        "      " + line for line in first
    ]

    again = await Sandbox.start(tmp_path)
    jobs = await again.reply_to("/jobs")
    line = T(
        "command.jobs_line",
        state=T("state.succeeded"),
        model=FAST,
        prompt="a paper boat on a rainy street",
        id=job,
    )
    assert jobs == [bot("command.jobs_title"), "      " + line]
    settings = await again.reply_to("/settings")
    duration = T(
        "commands.settings_line",
        field=T("field.duration"),
        value=T("unit.seconds", n=10),
        source=T("commands.source_user"),
    )
    assert "      " + duration in settings
    await again.finish()


async def test_quit_and_ctrl_c_say_that_running_jobs_resume_and_they_do(tmp_path: Path) -> None:
    box = await Sandbox.start(tmp_path, speed=1.0)  # a real-time Fast job: still running when we stop
    await box.say("/video a cat surfing a big wave")
    got = await box.until(lambda ls: any("⏳" in line for line in ls))
    job = job_id_of(got)
    await box.say("/quit")
    assert await box.until(lambda ls: ls[-1:] == [T("console.waiting", count=1)])
    box.proc.send_signal(signal.SIGINT)
    code, rest, err = await box.finish()
    assert code == 0, err
    assert rest[-1:] == [T("console.stopped", count=1)]
    assert all(line.startswith("[bot] ↻") for line in rest[:-1])  # at most a progress edit before it

    again = await Sandbox.start(tmp_path)  # the job resumes where it stood and finishes
    code, rest, err = await again.finish()
    assert code == 0, err
    assert T("console.waiting", count=1) in rest
    assert bot("success.title") in rest and any(f"/retry {job}" in line for line in rest)


# -- 5. commands: one message, the right language, specific answers ----------------------------------


async def test_cancel_answers_once_in_the_jobs_language_and_says_what_is_wrong(tmp_path: Path) -> None:
    box = await Sandbox.start(tmp_path, speed=1.0)
    assert await box.reply_to("/cancel 0123456789ab") == [bot("commands.cancel_unknown", id="0123456789ab")]
    assert await box.reply_to("/cancel") == [bot("commands.cancel_nothing")]
    await box.say("/video 竖屏 一只小狗在草地上奔跑")
    got = await box.until(lambda ls: any("⏳" in line for line in ls))
    job = job_id_of(got)
    await box.say(f"/cancel {job}")
    after = await box.until(lambda ls: bot("cancelled.title", "zh") in ls)
    closed = "[bot] ↻ " + T("progress.ended", "zh", state=T("state.cancelled", "zh"))
    # The job's message is closed, then its one "cancelled" message follows, in the job's language.
    assert [line for line in after if line.startswith("[bot]")] == [closed, bot("cancelled.title", "zh")]
    then = await box.reply_to("/jobs", "zh")  # the user's language is now their jobs' one
    assert [line for line in then if line.startswith("[bot]")] == [bot("command.jobs_title", "zh")]
    finished = await box.reply_to(f"/cancel {job}", "zh")
    assert finished == [bot("commands.cancel_finished", "zh", id=job, state=T("state.cancelled", "zh"))]
    await box.finish()


async def test_settings_explain_each_refusal_show_the_defaults_and_reset(tmp_path: Path) -> None:
    box = await Sandbox.start(tmp_path)

    def line(key: str, value: str, source: str) -> str:
        return "      " + T(
            "commands.settings_line",
            field=T(f"field.{key}"),
            value=value,
            source=T(f"commands.source_{source}"),
        )

    defaults = [
        line("model", FAST, "bot"),
        line("duration", T("commands.model_default"), "model"),
        line("aspect_ratio", T("commands.model_default"), "model"),
        line("resolution", T("commands.model_default"), "model"),
        line("locale", T("commands.language_auto"), "auto"),
    ]
    usage = "      " + T("commands.usage")
    assert await box.reply_to("/settings") == [bot("commands.settings_title"), *defaults, usage]
    refused = await box.reply_to("/settings model=kling duration=7 foo=bar")
    assert refused == [
        bot("commands.settings_title"),
        "      " + T("commands.rejected", item="model=kling", reason=T("commands.reject_model")),
        "      "
        + T(
            "commands.rejected",
            item="duration=7",
            reason=T("commands.reject_duration", value=7, offered="5, 10, 15"),
        ),
        "      " + T("commands.rejected", item="foo=bar", reason=T("commands.reject_key")),
        "      " + T("commands.nothing_saved"),
        *defaults,
        usage,
    ]
    saved = await box.reply_to("/settings model=pro aspect_ratio=9:16")
    assert saved[1] == "      " + T("commands.saved", fields="model=pro, aspect_ratio=9:16")
    assert (
        line("model", T("model.ima-pro"), "user") in saved and line("aspect_ratio", "9:16", "user") in saved
    )
    assert await box.reply_to("/settings reset") == [
        bot("commands.settings_title"),
        "      " + T("commands.reset_done"),
        *defaults,
    ]
    await box.finish()


async def test_help_lists_every_command_with_an_example(tmp_path: Path) -> None:
    box = await Sandbox.start(tmp_path)
    await box.say("/help")
    got = await box.until(lambda ls: "      " + T("commands.help_help") in ls)
    assert got == [bot("command.help_title"), *("      " + T(k) for k in _help_keys())]
    for word in ("/video", "/jobs", "/cancel", "/retry", "/settings", "/help"):
        assert any(word in line for line in got), word
    await box.finish()


def _help_keys() -> list[str]:
    from bot.commands import HELP_LINES

    return list(HELP_LINES)


async def test_other_model_drops_the_first_jobs_vendor_note(tmp_path: Path) -> None:
    box = await Sandbox.start(tmp_path)
    await box.say("/video kling a cat surfing")
    got = await box.until(lambda ls: any(line.startswith(bot("success.title")) for line in ls))
    note = "ℹ️ " + T("note.model_mapped", requested="kling", model=T("model.ima-pro"))
    assert "      " + note in got
    await box.say(f"/other {job_id_of(got)}")
    second = await box.until(lambda ls: any(line.startswith(bot("success.title")) for line in ls))
    assert bot("prenotice.title", model=FAST) in second
    assert not any("kling" in line for line in second)
    await box.finish()


# -- 6 and 8. output order, one line per progress edit, the sandbox's estimate -----------------------


async def test_progress_is_one_line_per_edit_and_the_result_follows_the_finished_line(tmp_path: Path) -> None:
    box = await Sandbox.start(tmp_path, speed=20.0)
    await box.say("/video a paper boat")
    got = await box.until(lambda ls: any(line.startswith(bot("success.title")) for line in ls))
    await box.finish()
    low, high = (round(v / 20.0) for v in ESTIMATED_SECONDS[ModelId.FAST])
    assert "      " + T("prenotice.estimate", range=format_range(T, low, high, "en")) in got
    edits = [i for i, line in enumerate(got) if line.startswith("[bot] ↻")]
    assert edits and all(not got[i + 1].startswith("      ") for i in edits)  # one line each
    done = got.index(bot("success.title"))
    assert got[done - 1].startswith("[bot] ↻ " + T("progress.done", elapsed="").split(" ")[0])
    assert got[done - 1].startswith("[bot] ↻ ✅")
    percents = [int(m.group(1)) for line in got if (m := re.search(r" (\d+)% ", line))]
    assert percents == sorted(percents) and max(percents) >= 20, percents  # the bar moves


# -- 7. `imabot run` with nothing to run -------------------------------------------------------------


async def test_run_with_no_platform_enabled_exits_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text((ROOT / "config.example.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(tmp_path),
        env={**os.environ, "IMA_API_KEY": "ima_test_key_123456", "PYTHONPATH": str(ROOT)},
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "nothing to run" in err.decode() and "--web-only" in err.decode()
    assert not (tmp_path / ".imabot").exists()  # it stopped before opening anything


async def test_web_only_runs_the_web_server_and_logs_the_address_it_bound(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "ima:\n  api_key: ima_test_key_123456\nweb:\n  host: 127.0.0.1\n  port: 0\n", encoding="utf-8"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(config),
        "--web-only",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stderr is not None
    line = ""
    while "web server on" not in line:
        raw = await asyncio.wait_for(proc.stderr.readline(), 60)
        assert raw, "imabot run --web-only exited before serving"
        line = raw.decode()
    m = re.search(r"web server on http://127\.0\.0\.1:(\d+), listening on 127\.0\.0\.1:(\d+)", line)
    assert m and m.group(1) == m.group(2) != "0", line  # the port really bound, not the 0 asked for
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert (tmp_path / ".imabot" / "imabot.sqlite3").exists()  # the default store, beside the config
