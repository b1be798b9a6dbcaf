"""Command replies through the real dispatcher, store and emulator catalog: exact texts, one reply, the
user's or the job's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import Command, CommandIntent, NoticeKind, Origin
from bot.dispatch import DispatchSettings
from bot.jobs.model import JobState
from bot.jobs.texts import Texts

from .harness import pipeline

T = Texts.load()
ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1", message_id="m1")


def cmd(command: Command, locale: str | None = None, **args: str) -> CommandIntent:
    return CommandIntent(origin=ORIGIN, command=command, args=args, locale=locale)


def line(key: str, value: str, source: str, loc: str = "en") -> str:
    return T(
        "commands.settings_line",
        loc,
        field=T(f"field.{key}", loc),
        value=value,
        source=T(f"commands.source_{source}", loc),
    )


def rejected(item: str, reason_key: str, **params: object) -> str:
    return T("commands.rejected", item=item, reason=T(reason_key, **params))


async def test_settings_check_each_value_against_the_models_offer(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        got = await p.dispatcher(
            cmd(
                Command.SETTINGS, model="kling", duration="7", ar="2:1", resolution="8K", language="fr", x="1"
            )
        )
        assert got is not None and got.kind is NoticeKind.ERROR
        assert got.lines[:7] == (
            rejected("model=kling", "commands.reject_model"),
            rejected("duration=7", "commands.reject_duration", value=7, offered="5, 10, 15"),
            rejected("ar=2:1", "commands.reject_aspect_ratio", offered="16:9, 9:16, 1:1, 4:3, 3:4, 21:9"),
            rejected("resolution=8K", "commands.reject_resolution", offered="480P, 720P"),
            rejected("language=fr", "commands.reject_language"),
            rejected("x=1", "commands.reject_key"),
            T("commands.nothing_saved"),
        )
        assert got.lines[-1] == T("commands.usage")
        words = await p.dispatcher(cmd(Command.SETTINGS, duration="ten"))
        assert words is not None and words.lines[0] == rejected(
            "duration=ten", "commands.reject_duration_number"
        )
        assert await p.store.get_prefs("console:u1") == (await p.store.get_prefs("nobody"))  # nothing saved


async def test_settings_save_what_fits_and_show_where_each_default_comes_from(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(default_duration=5)) as p:
        await p.store.set_chat_defaults("console", "c1", aspect_ratio="1:1")
        got = await p.dispatcher(
            cmd(Command.SETTINGS, model="pro", duration="10秒", resolution="1080p", foo="bar")
        )
        assert got is not None and got.kind is NoticeKind.INFO
        assert got.lines == (
            T("commands.saved", fields="model=pro, duration=10秒, resolution=1080p"),
            rejected("foo=bar", "commands.reject_key"),
            line("model", T("model.ima-pro"), "user"),
            line("duration", T("unit.seconds", n=10), "user"),
            line("aspect_ratio", "1:1", "chat"),
            line("resolution", "1080P", "user"),
            line("locale", T("commands.language_auto"), "auto"),
            T("commands.usage"),
        )
        prefs = await p.store.get_prefs("console:u1")
        assert (prefs.duration, prefs.resolution, prefs.aspect_ratio) == (10, "1080P", None)
        cleared = await p.dispatcher(cmd(Command.SETTINGS, duration="default", language="zh"))
        assert cleared is not None and cleared.locale == "zh"  # the reply is in the new language
        assert cleared.lines[0] == T("commands.saved", "zh", fields="duration=default, language=zh")
        assert line("duration", T("unit.seconds", "zh", n=5), "bot", "zh") in cleared.lines
        assert line("locale", T("language.zh", "zh"), "user", "zh") in cleared.lines
        reset = await p.dispatcher(cmd(Command.SETTINGS, 重置=""))
        assert reset is not None and reset.lines[0] == T("commands.reset_done", "zh")
        assert line("model", T("model.ima-pro-fast"), "bot", "zh") in reset.lines
        assert (await p.store.get_prefs("console:u1")).locale is None


async def test_a_value_clears_a_model_and_ratios_are_written_canonically(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        await p.dispatcher(cmd(Command.SETTINGS, model="pro", aspect_ratio="16：9"))
        prefs = await p.store.get_prefs("console:u1")
        assert prefs.aspect_ratio == "16:9" and set(prefs.models.values()) == {
            p.dispatcher.settings.default_model.other
        }
        await p.dispatcher(cmd(Command.SETTINGS, model="default"))
        assert (await p.store.get_prefs("console:u1")).models == {}


@pytest.mark.parametrize(("platform_locale", "expected"), [("zh-CN", "zh"), (None, "en")])
async def test_help_lists_every_command_in_the_users_language(
    tmp_path: Path, platform_locale: str | None, expected: str
) -> None:
    async with pipeline(tmp_path) as p:
        got = await p.dispatcher(cmd(Command.HELP, platform_locale))
    from bot.commands import HELP_LINES

    assert got is not None and got.title == T("command.help_title", expected)
    assert got.lines == tuple(T(k, expected) for k in HELP_LINES)


async def test_cancel_replies(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_never")
        unknown = await p.dispatcher(cmd(Command.CANCEL, job_id="feedfeedfeed"))
        assert unknown is not None and unknown.title == T("commands.cancel_unknown", id="feedfeedfeed")
        assert unknown.lines == ()
        nothing = await p.dispatcher(cmd(Command.CANCEL))
        assert nothing is not None and nothing.title == T("commands.cancel_nothing")
        from .test_dispatch import gen

        await p.dispatcher(gen("一条小河在山谷里流淌", "m1"))
        (job,) = await p.store.recent_jobs("console:u1")
        # With a job running, a wrong id gets the unfinished ids, in the user's language (their jobs' one).
        wrong = await p.dispatcher(cmd(Command.CANCEL, job_id="feedfeedfeed"))
        assert wrong is not None and wrong.title == T("commands.cancel_unknown", "zh", id="feedfeedfeed")
        assert wrong.lines == (T("commands.cancel_open", "zh", ids=f"`{job.id}`"),)
        assert await p.dispatcher(cmd(Command.CANCEL)) is None  # the job's own message answers
        done = await p.wait_finished(job.id)
        assert done.state is JobState.CANCELLED
        again = await p.dispatcher(cmd(Command.CANCEL, "en", job_id=job.id))
        assert again is not None
        assert again.title == T("commands.cancel_finished", "zh", id=job.id, state=T("state.cancelled", "zh"))
        someone = CommandIntent(
            origin=Origin("console", "c1", "u2"), command=Command.CANCEL, args={"job_id": job.id}
        )
        other = await p.dispatcher(someone)
        assert other is not None and other.title == T("input.not_your_job")


@pytest.mark.parametrize(("text", "loc"), [("/settings reset", "en"), ("设置 重置", "zh")])
async def test_settings_reset_typed_as_a_message_resets(tmp_path: Path, text: str, loc: str) -> None:
    # Feishu and Discord mentions hand the command over as message text: the reset must survive that path.
    from bot.core import GenerationIntent

    async with pipeline(tmp_path) as p:
        await p.dispatcher(cmd(Command.SETTINGS, model="pro", duration="10"))
        got = await p.dispatcher(GenerationIntent(origin=ORIGIN, text=text, locale=loc))
        assert got is not None and got.lines[0] == T("commands.reset_done", loc)
        prefs = await p.store.get_prefs("console:u1")
        assert prefs.duration is None and not any(prefs.models.values())
        assert not [j for j in await p.store.recent_jobs("console:u1") if j.state is not JobState.CANCELLED]
