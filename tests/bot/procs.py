"""Run `imabot console` as a real child process against an emulator in the test process.

`bot_process()` is the way in: it kills the child in a `finally`, so a failed or timed-out test never leaves
an orphaned bot behind. The child's stderr goes to a file (a pipe nobody reads would fill and block it);
its stdout is a pipe the test reads line by line as its wake-up signal (the console records a message in
the transcript before printing it, so a printed line means its record is there)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml

from ima.emulator import DEFAULT_API_KEY, Emulator

ROOT = Path(__file__).resolve().parents[2]
_starts = itertools.count(1)


def write_config(tmp: Path, emulator: Emulator, **jobs: Any) -> Path:
    """A config for a fast, time-compressed bot pointed at the emulator."""
    cfg = {
        "ima": {
            "api_key": DEFAULT_API_KEY,
            "base_url": emulator.base_url,
            "upload_base_url": emulator.upload_base_url,
        },
        "store": {"path": str(tmp / "jobs.sqlite3")},
        "jobs": {
            "global_concurrency": 50,
            "per_user_concurrency": 50,
            "max_pending_per_user": 500,
            "poll_interval": 0.2,
            "progress_interval_pro": 0.5,
            "progress_interval_fast": 0.5,
            **jobs,
        },
        "web": {"enabled": False},
        "logging": {"level": "WARNING"},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


class BotProcess:
    """One running `imabot console` child."""

    def __init__(self, proc: asyncio.subprocess.Process, err_path: Path) -> None:
        self.proc = proc
        self.err_path = err_path

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace") if self.err_path.exists() else ""

    async def say(self, *lines: str) -> None:
        """Types lines into the console (stdin stays open: the bot does not exit when idle)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(line + "\n" for line in lines).encode())
        await self.proc.stdin.drain()

    async def read_until(self, predicate: Callable[[list[str]], bool], within: float = 60.0) -> list[str]:
        """Reads stdout line by line until predicate(lines) holds; returns the lines read. Raises
        AssertionError (with the stderr tail) when the bot exits first, TimeoutError after `within`."""
        lines: list[str] = []

        async def pump() -> list[str]:
            assert self.proc.stdout is not None
            while not predicate(lines):
                raw = await self.proc.stdout.readline()
                if not raw:
                    if predicate(lines):
                        break
                    await self.proc.wait()
                    raise AssertionError(
                        f"bot exited early ({self.proc.returncode}); stderr:\n{self.stderr()[-3000:]}"
                    )
                lines.append(raw.decode("utf-8", "replace"))
            return lines

        return await asyncio.wait_for(pump(), within)

    async def kill(self) -> None:
        """SIGKILLs the bot, which must still be running."""
        self.proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(self.proc.wait(), 30) == -signal.SIGKILL

    async def finish(self, within: float) -> tuple[int, str, str]:
        """Ends the input, waits for the bot to exit; returns (exit status, stdout, stderr)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        out, _ = await asyncio.wait_for(self.proc.communicate(), within)
        assert self.proc.returncode is not None
        return self.proc.returncode, out.decode("utf-8", "replace"), self.stderr()


@asynccontextmanager
async def bot_process(config: Path, transcript: Path, *extra: str) -> AsyncIterator[BotProcess]:
    """Starts `imabot console` on config; kills it when the block ends if it still runs."""
    err_path = transcript.parent / f"bot-{next(_starts)}.stderr"
    with err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "console",
            "--config",
            str(config),
            "--transcript",
            str(transcript),
            *extra,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    bot = BotProcess(proc, err_path)
    try:
        yield bot
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def transcript_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
