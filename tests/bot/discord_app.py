"""A whole bot for tests: the real App (Discord enabled) against the fake Discord and the IMA emulator,
with one virtual clock shared by all three, so minutes of job time pass in milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import App
from bot.config import Config, parse_config
from bot.jobs.model import Job
from ima.emulator import DEFAULT_API_KEY, Emulator, EmulatorConfig
from tests.fakes.discord_server import FakeDiscord, Logged
from tests.waiting import until_job_change

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(96))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(60))


class VirtualClock:
    """Time that moves only when the bot sleeps: `sleep(dt)` advances it at once.

    `hold()` parks every sleeper at the gate until `release()`, so a test can act "mid-job" while the job
    is known to be waiting between two polls.
    """

    def __init__(self, start: float) -> None:
        self.now = start
        self.parked = 0
        self._open = asyncio.Event()
        self._open.set()
        self._changed = asyncio.Condition()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if not self._open.is_set():
            self.parked += 1
            async with self._changed:
                self._changed.notify_all()
            try:
                await self._open.wait()
            finally:
                self.parked -= 1
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def wait_parked(self, count: int = 1, within: float = 10.0) -> None:
        """Returns once `count` sleepers wait at the gate (call hold() first)."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: self.parked >= count)


@dataclass
class Rig:
    """The fake platform, the emulator, the clock and the store file one test's Apps share."""

    fake: FakeDiscord
    emulator: Emulator
    clock: VirtualClock
    store_path: Path

    @property
    def user_key(self) -> str:
        return f"discord:{self.fake.user_id}"

    def config(self, **discord: Any) -> Config:
        """The bot's config as an operator would write it, pointed at the fakes."""
        return parse_config(
            {
                "ima": {
                    "api_key": DEFAULT_API_KEY,
                    "base_url": self.emulator.base_url,
                    "upload_base_url": self.emulator.upload_base_url,
                },
                "store": {"path": str(self.store_path)},
                # Progress pacing is the runner's job (virtual time); the adapter's own real-time
                # pacing would swallow progress ticks that arrive milliseconds apart in real time.
                "discord": {"enabled": True, "token": self.fake.token, "min_edit_interval": 0, **discord},
                "web": {"enabled": False},
            }
        )

    @contextlib.asynccontextmanager
    async def app(self, *, connected: bool = True, **discord: Any) -> AsyncIterator[App]:
        """A started App; with `connected`, returns once the bot identified on the fake gateway."""
        app = App(self.config(**discord), clock=self.clock, sleep=self.clock.sleep)
        before = len(self.fake.identifies)
        try:
            await app.start()
            if connected:
                await self.fake.wait_until(lambda: len(self.fake.identifies) > before)
            yield app
        finally:
            await app.close()

    async def jobs(self, app: App, count: int = 1, within: float = 15.0) -> list[Job]:
        """Waits (woken by job changes) until the user has `count` jobs, all finished with their final
        message delivered; returns them oldest first."""
        assert app.store is not None
        store = app.store

        async def done() -> list[Job] | None:
            jobs = await store.recent_jobs(self.user_key, limit=50)
            if len(jobs) >= count and all(j.finished and j.result_ref for j in jobs):
                return sorted(jobs, key=lambda j: j.created_at)
            return None

        return await until_job_change(app.runner.listeners, done, within)

    # what users see on the fake -------------------------------------------------------------------

    def bot_messages(self, channel_id: str) -> list[dict[str, Any]]:
        """The bot's messages in a channel, oldest first (ephemeral interaction answers excluded)."""
        return [
            m
            for m in self.fake.channel_messages(channel_id)
            if m["author"]["id"] == self.fake.bot_id and not m["flags"] & 64
        ]

    def edits(self, message_id: str) -> list[Logged]:
        """Every PATCH the bot sent for a message (with the bot token), in order."""
        return self.fake.requests_to("PATCH", rf"^/channels/\d+/messages/{message_id}$")

    def message(self, ref: str) -> dict[str, Any]:
        """The message behind a "channel_id:message_id" ref."""
        return self.fake.messages[ref.split(":")[1]]


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The buttons of a message, in order."""
    return [c for row in message["components"] for c in row.get("components", [])]


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [b["custom_id"] for b in buttons(message) if "custom_id" in b]


def embed(message: dict[str, Any]) -> dict[str, Any]:
    assert len(message["embeds"]) == 1, message["embeds"]
    return message["embeds"][0]


def mentions(message: dict[str, Any]) -> list[str]:
    return re.findall(r"<@!?(\d+)>", message["content"])


@contextlib.asynccontextmanager
async def open_discord_rig(tmp_path: Path, monkeypatch: Any) -> AsyncIterator[Rig]:
    """The fake Discord (installed into discord.py) and the emulator on one virtual clock, for one test;
    checks at the end that the fake met no malformed request."""
    clock = VirtualClock(time.time())
    async with FakeDiscord(clock=clock) as fake, Emulator(EmulatorConfig(), clock=clock) as emu:
        fake.install(monkeypatch)
        yield Rig(fake, emu, clock, tmp_path / "jobs.sqlite3")
        assert fake.errors == []
