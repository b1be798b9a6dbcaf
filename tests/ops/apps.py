"""A whole App in the test process (console adapter fed line by line, web server on a free port) against
the emulator, sharing one virtual clock so job minutes pass without sleeping."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.adapters.console import ConsoleAdapter
from bot.app import App
from bot.config import parse_config
from bot.jobs.model import Job
from ima.emulator import DEFAULT_API_KEY, Emulator
from tests.bot.harness import VirtualClock
from tests.waiting import until_job_change


class LineFeed:
    """What the console reads: lines put here from the test (a blocking read, as stdin is)."""

    def __init__(self) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._loop = asyncio.get_running_loop()
        self.reading = asyncio.Event()  # the console adapter runs (it reads only from run())

    def say(self, line: str) -> None:
        self._lines.put(line + "\n")

    def end(self) -> None:
        self._lines.put("")

    def read_line(self) -> str:
        self._loop.call_soon_threadsafe(self.reading.set)
        return self._lines.get()


class _Sink:
    def __init__(self) -> None:
        self.text: list[str] = []

    def write(self, s: str) -> int:
        self.text.append(s)
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


@dataclass
class Running:
    app: App
    feed: LineFeed
    http: aiohttp.ClientSession
    transcript: Path

    @property
    def url(self) -> str:
        assert self.app.web is not None
        return self.app.web.url

    async def get(self, path: str) -> tuple[int, str, str]:
        async with self.http.get(self.url + path) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.text()

    async def wait_for(self, predicate: Callable[[], Any], within: float = 20.0) -> Any:
        """Waits on job changes (never by sleeping) until predicate() (sync or async) is truthy."""
        return await until_job_change(self.app.runner.listeners, predicate, within)

    async def jobs(self) -> list[Job]:
        assert self.app.store is not None
        return [
            j for user in ("tester",) for j in await self.app.store.recent_jobs(f"console:{user}", limit=500)
        ]

    def records(self) -> list[dict[str, Any]]:
        if not self.transcript.exists():
            return []
        return [json.loads(x) for x in self.transcript.read_text(encoding="utf-8").splitlines() if x.strip()]


def config_for(tmp: Path, emu: Emulator, **sections: Any) -> Any:
    data: dict[str, Any] = {
        "ima": {"api_key": DEFAULT_API_KEY, "base_url": emu.base_url, "upload_base_url": emu.upload_base_url},
        "store": {"path": str(tmp / "jobs.sqlite3")},
        "web": {"enabled": True, "host": "127.0.0.1", "port": 0},
        "jobs": {"global_concurrency": 50, "per_user_concurrency": 50, "max_pending_per_user": 500},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data)


@asynccontextmanager
async def running_app(
    tmp: Path, emu: Emulator, clock: VirtualClock, *, extra_adapters: tuple[Any, ...] = (), **sections: Any
) -> AsyncIterator[Running]:
    """Starts an App (console adapter + extra_adapters) and closes it, whatever happens."""
    feed = LineFeed()
    transcript = tmp / "transcript.jsonl"
    console = ConsoleAdapter(
        stdout=_Sink(), transcript=transcript, user="tester", cwd=tmp, read_line=feed.read_line, clock=clock
    )
    app = App(
        config_for(tmp, emu, **sections), adapters=[console, *extra_adapters], clock=clock, sleep=clock.sleep
    )
    http = aiohttp.ClientSession()
    try:
        await app.start()
        yield Running(app, feed, http, transcript)
    finally:
        feed.end()
        await app.close()
        await http.close()
