"""One owner per store, and a store lost under a running bot: through the real App (and real processes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

from bot.app import App
from bot.core import GenerationIntent, Origin
from bot.jobs._lock import StoreLocked
from ima.emulator import Emulator, EmulatorConfig
from tests.bot.harness import VirtualClock
from tests.bot.procs import ROOT, bot_process, write_config

from .apps import config_for, running_app

pytestmark = pytest.mark.timeout(300)


def _intent(text: str, n: int = 1) -> GenerationIntent:
    origin = Origin(
        platform="console", chat_id="console", user_id="tester", message_id=f"m{n}", is_direct=True
    )
    return GenerationIntent(origin=origin, text=text, locale="en")


async def test_a_second_app_on_the_same_store_stops_at_start_naming_the_holder(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as first:
        second = App(config_for(tmp_path, emu), clock=clock, sleep=clock.sleep)  # the same store file
        with pytest.raises(StoreLocked) as refused:
            await second.start()
        await second.close()
        message = str(refused.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}" in message
        assert str(tmp_path / "jobs.sqlite3") in message
        assert second.store is None  # it never opened the file
        # The first one still owns and serves it.
        status, _, _ = await first.get("/healthz")
        assert status == 200
    # Once the owner is gone, the store is free again.
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as again:
        assert again.app.store is not None


async def test_a_second_imabot_process_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    async with Emulator(EmulatorConfig(speed=45.0)) as emu:
        config = write_config(tmp_path, emu)
        transcript = tmp_path / "transcript.jsonl"
        async with bot_process(config, transcript) as first:
            await first.say("/jobs")  # its answer proves the first bot is up (and holds the lock)
            await first.read_until(lambda lines: any("[bot]" in ln for ln in lines), within=120)
            code, text = await _start_console(config)
            holder = json.loads((tmp_path / "jobs.sqlite3.lock").read_text())
            assert first.returncode is None  # untouched
        assert code == 3, text
        assert "Traceback" not in text
        assert f"pid {holder['pid']} on {holder['host']}" in text
        assert holder["pid"] == first.proc.pid


async def test_a_store_deleted_under_a_running_bot_turns_health_red_and_refuses_new_jobs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        assert r.app.check_store() == ""
        assert (await r.get("/healthz"))[0] == 200
        (tmp_path / "jobs.sqlite3").unlink()
        with caplog.at_level(logging.CRITICAL, logger="imabot.store"):
            fault = r.app.check_store()
        assert "deleted" in fault
        assert any(
            rec.levelno == logging.CRITICAL and "STORE LOST" in rec.getMessage() for rec in caplog.records
        )
        status, _, body = await r.get("/healthz")
        assert status == 503
        health = json.loads(body)
        assert health["store"] is False and "deleted" in health["store_error"]
        refusal = await r.app.dispatcher(_intent("/video fast 5s a fox crossing a frozen river"))
        assert refusal is not None and refusal.title == r.app.texts("hostile.store_lost", "en")
        assert await r.jobs() == []  # nothing was recorded, nothing sent to IMA
        assert emu.tasks == {}


async def test_a_store_replaced_under_a_running_bot_is_noticed(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        path = tmp_path / "jobs.sqlite3"
        shutil.copy(path, tmp_path / "backup.sqlite3")
        os.replace(tmp_path / "backup.sqlite3", path)  # same bytes, another file
        assert "replaced" in r.app.check_store()
        assert (await r.get("/healthz"))[0] == 503
        refusal = await r.app.dispatcher(_intent("/video fast 5s a lantern on a lake", 2))
        assert refusal is not None and refusal.title == r.app.texts("hostile.store_lost", "en")


async def test_the_console_exits_non_zero_when_its_store_was_lost(tmp_path: Path) -> None:
    """A lost store is fatal for the console's exit status: a script running it must not read success."""
    async with Emulator(EmulatorConfig(speed=45.0)) as emu:
        config = write_config(tmp_path, emu)
        transcript = tmp_path / "transcript.jsonl"
        async with bot_process(config, transcript) as bot:
            await bot.say("/jobs")
            await bot.read_until(lambda lines: any("[bot]" in ln for ln in lines), within=120)
            (tmp_path / "jobs.sqlite3").unlink()
            await bot.say("/quit")
            code, _out, err = await bot.finish(within=120)
        assert code == 3, err
        assert "STORE LOST" in err and "deleted" in err
        assert "Traceback" not in err


async def _start_console(config: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        "--config",
        str(config),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def _config_with_store(tmp_path: Path, store: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        json.dumps(
            {
                "ima": {"api_key": "ima_test", "base_url": "http://127.0.0.1:9"},
                "store": {"path": str(store)},
                "web": {"enabled": False},
            }
        ),
        encoding="utf-8",
    )
    return path


async def test_a_corrupt_store_stops_the_start_with_what_where_and_what_to_do(tmp_path: Path) -> None:
    store = tmp_path / "jobs.sqlite3"
    store.write_bytes(b"this is not SQLite " * 200)
    code, err = await _start_console(_config_with_store(tmp_path, store))
    assert code == 3, err
    assert "Traceback" not in err
    assert str(store) in err and "not a database" in err and "Restore it from a backup" in err
    assert store.read_bytes() == b"this is not SQLite " * 200  # left as it was, for the operator


async def test_a_read_only_store_path_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    # /sys is read-only even for root (file modes are not: this suite may run as root).
    store = Path("/sys/imabot-test/jobs.sqlite3")
    if os.access("/sys", os.W_OK) and not store.parent.exists():
        with contextlib.suppress(OSError):
            store.parent.mkdir()
            store.parent.rmdir()
            pytest.skip("/sys is writable here")
    code, err = await _start_console(_config_with_store(tmp_path, store))
    assert code == 3, err
    assert "Traceback" not in err
    assert str(store) in err and "writable" in err
