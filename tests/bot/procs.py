"""Run `imabot console` as a real child process against an emulator in the test process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from ima.emulator import DEFAULT_API_KEY, Emulator

ROOT = Path(__file__).resolve().parents[2]


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


async def start_bot(config: Path, transcript: Path, *extra: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return await asyncio.create_subprocess_exec(
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
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
        env=env,
    )


async def read_until(proc: asyncio.subprocess.Process, predicate, within: float = 60.0) -> list[str]:  # type: ignore[no-untyped-def]
    """Reads the bot's stdout line by line until predicate(lines) holds; returns the lines read."""
    lines: list[str] = []

    async def pump() -> list[str]:
        assert proc.stdout is not None
        while not predicate(lines):
            raw = await proc.stdout.readline()
            if not raw:
                err = (await proc.stderr.read()).decode() if proc.stderr else ""
                raise AssertionError(f"bot exited early; stderr:\n{err[-3000:]}")
            lines.append(raw.decode("utf-8", "replace"))
        return lines

    return await asyncio.wait_for(pump(), within)


def transcript_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
