"""Test scaffolding around the fake Discord: run a DiscordAdapter against it, record what it hands on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot.adapters.discord import DiscordAdapter, DiscordSettings
from bot.core import Intent, Notice
from bot.jobs.texts import Texts

from .discord_server import FakeDiscord

TEXTS = Texts.load()


class ManualClock:
    """A clock tests move by hand (for token lifetimes and edit intervals)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """An IntentHandler stand-in: records intents, optionally answers with reply(intent), optionally reads
    the attachments through the adapter (as the pipeline does) and keeps the bytes or the rejection."""

    def __init__(
        self,
        adapter: DiscordAdapter | None = None,
        *,
        reply: Callable[[Intent], Notice | None] | None = None,
        read_attachments: bool = False,
        max_bytes: int = 20 * 1024 * 1024,
    ) -> None:
        self.adapter = adapter
        self.reply = reply
        self.read_attachments = read_attachments
        self.max_bytes = max_bytes
        self.intents: list[Intent] = []
        self.images: list[bytes] = []
        self.rejections: list[Exception] = []
        self.acked_before_handler: list[bool] = []  # filled by tests that check the 3 s deadline
        self.on_intent: Callable[[Intent], None] | None = None
        self._changed = asyncio.Condition()

    async def __call__(self, intent: Intent) -> Notice | None:
        if self.on_intent is not None:
            self.on_intent(intent)
        if self.read_attachments and self.adapter is not None:
            for att in getattr(intent, "attachments", ()):
                try:
                    self.images.append(await self.adapter.read_attachment(att, max_bytes=self.max_bytes))
                except Exception as exc:
                    self.rejections.append(exc)
        self.intents.append(intent)
        async with self._changed:
            self._changed.notify_all()
        return self.reply(intent) if self.reply else None

    async def next_intent(self, count: int = 1, within: float = 5.0) -> Intent:
        """Waits until `count` intents were recorded; returns the count-th."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.intents) >= count)
        return self.intents[count - 1]


def settings(fake: FakeDiscord, **overrides: Any) -> DiscordSettings:
    base: dict[str, Any] = {"token": fake.token, "guild_ready_timeout": 0.05, "min_edit_interval": 0.0}
    return DiscordSettings(**{**base, **overrides})


@contextlib.asynccontextmanager
async def running(
    adapter: DiscordAdapter, handler: Any, within: float = 5.0
) -> AsyncIterator[DiscordAdapter]:
    """Runs adapter until the block ends; raises what run() raised if it stops before becoming ready."""
    task = asyncio.create_task(adapter.run(handler))
    ready = asyncio.create_task(adapter.wait_ready())
    try:
        async with asyncio.timeout(within):
            done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            raise AssertionError("run() returned before the adapter became ready")
        yield adapter
    finally:
        ready.cancel()
        await adapter.close()
        async with asyncio.timeout(within):
            await asyncio.gather(task, ready, return_exceptions=True)
