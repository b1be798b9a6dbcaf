"""Hostile text through the real App: control characters never reach IMA, huge messages are capped before
parsing and parsed off the loop, and an invalid /settings value is never echoed back at length."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.core import Action, ActionIntent, Command, CommandIntent, GenerationIntent, Notice, Origin
from bot.core.text import MAX_MESSAGE_CHARS, clean_text, echo
from ima.emulator import Emulator, EmulatorConfig
from tests.bot.harness import VirtualClock

from .apps import Running, running_app

ORIGIN = Origin(platform="console", chat_id="console", user_id="tester", message_id="m1", is_direct=True)


def _text(notice: Notice) -> str:
    return "\n".join((notice.title, *notice.lines))


async def _finished(r: Running) -> list | None:  # type: ignore[type-arg]
    jobs = await r.jobs()
    return jobs if jobs and all(j.finished and j.result_ref for j in jobs) else None


async def test_control_characters_never_reach_ima(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        hostile = "/video fast 5s a red\x1b[2J kite\x07 over\u202e the\x00 sea\r\nat dusk"
        assert await r.app.dispatcher(GenerationIntent(origin=ORIGIN, text=hostile)) is None
        (job,) = await r.wait_for(lambda: _finished(r))
    (task,) = emu.tasks.values()
    assert task.prompt == job.spec.prompt
    assert not any(ch in task.prompt for ch in "\x1b\x07\x00\u202e\r")
    assert "kite" in task.prompt and "[2J" in task.prompt  # only the invisible characters go


async def test_a_100_kb_message_is_capped_and_parsed_off_the_loop(tmp_path: Path) -> None:
    """Before: one 100 KB message held the loop for about a second (webhook acks and polls waited). Now it is
    cut to MAX_MESSAGE_CHARS and parsed in a worker thread while the loop keeps ticking."""
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        wall = "/video fast 5s " + "一只小狗在草地上奔跑 and a fox in the snow " * 4000
        assert len(wall) > 100_000
        await r.app.dispatcher(GenerationIntent(origin=ORIGIN, text=wall))
        done.set()
        await ticking
        (job,) = await r.wait_for(lambda: _finished(r))
    assert len(job.spec.prompt) <= MAX_MESSAGE_CHARS
    # The loop was never held for long (the parse alone takes hundreds of ms on this machine when run on it).
    assert max(gaps) < 0.25, f"loop held for {max(gaps) * 1000:.0f} ms"


@pytest.mark.parametrize("value", ["x" * 5000, "9" * 5000, "²", "1" * 5000 + "s"])
async def test_an_invalid_settings_value_is_refused_and_echoed_short(tmp_path: Path, value: str) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        for key in ("duration", "model", "nonsense"):
            intent = CommandIntent(origin=ORIGIN, command=Command.SETTINGS, args={key: value}, locale="en")
            reply = await r.app.dispatcher(intent)
            assert reply is not None
            text = _text(reply)
            assert len(text) < 1500, text[:200]
            assert value[:40] in text or len(value) < 40  # the start of what was typed is still shown
            assert value not in text or len(value) < 60
        assert (await r.app.store.get_prefs("console:tester")).duration is None  # type: ignore[union-attr]


def test_clean_text_rules() -> None:
    assert clean_text("a\ud800b\udfffc") == "abc"  # lone surrogates (the store could not encode them)
    assert clean_text("tab\tand\nnewline\r\nkept") == "tab\tand\nnewline\nkept"
    assert clean_text("no\x00nul\x1besc\x7fdel\u202ebidi") == "nonulescdelbidi"
    assert clean_text("👨\u200d👩\u200d👧 family") == "👨\u200d👩\u200d👧 family"  # joiners stay
    assert clean_text("x" * 10_000) == "x" * MAX_MESSAGE_CHARS
    assert clean_text("ab\x00" * 10, limit=5) == "ababa"
    assert clean_text(None) == "" and clean_text(5) == ""
    assert echo("k=" + "v" * 500) == "k=" + "v" * 57 + "…" and len(echo("v" * 500)) == 60
    assert echo("a\nb\tc") == "a b c"


async def test_lone_surrogates_in_commands_and_buttons_get_an_answer_not_a_crash(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        settings = CommandIntent(origin=ORIGIN, command=Command.SETTINGS, args={"dura\ud800tion": "1\udfff0"})
        reply = await r.app.dispatcher(settings)
        assert reply is not None and "\ud800" not in _text(reply) and "\udfff" not in _text(reply)
        _text(reply).encode("utf-8")
        press = ActionIntent(
            origin=ORIGIN, job_id="abc\ud800def", action=Action.RETRY, event_keys=("k\ud800",)
        )
        reply = await r.app.dispatcher(press)
        assert reply is not None and reply.title == r.app.texts("input.job_not_found", "en")
        # The store took the (cleaned) dedup key: the same press again is dropped, not a crash.
        assert await r.app.dispatcher(press) is None
