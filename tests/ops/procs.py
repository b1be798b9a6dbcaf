"""`imabot run` as a child process of a test: stdout discarded, stderr into a file the test can read."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def start_run(config: Path, err_path: Path) -> asyncio.subprocess.Process:
    """Starts `python -m bot run --config CONFIG` from the repository root; the caller kills it."""
    with err_path.open("wb") as err:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
            cwd=str(ROOT),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
