"""`imabot console --sandbox` from a real process: a newcomer's first run, with no keys."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from .procs import ROOT

pytestmark = pytest.mark.slow


async def _sandbox(state: Path, *lines: str, speed: float = 60.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        "--sandbox",
        "--speed",
        str(speed),
        "--state-dir",
        str(state),  # never the checkout's own .imabot/
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONUNBUFFERED": "1", "IMA_API_KEY": ""},
    )
    out, err = await asyncio.wait_for(proc.communicate("\n".join(lines).encode() + b"\n"), 90)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_sandbox_chinese_request_shows_prenotice_progress_and_video(tmp_path: Path) -> None:
    code, out, err = await _sandbox(tmp_path, "/video 竖屏 10秒 一只小狗在草地上奔跑")
    assert code == 0, err
    assert "Ima Sevio 1.0-Fast" in out  # the Sevio name, never a raw model id
    assert "ima-pro" not in out
    assert "理解为" in out and "9:16" in out  # echoed what it understood, in the user's language
    assert "↻" in out  # progress edited in place
    assert "视频生成好了" in out and ".mp4" in out
    assert "Traceback" not in err


async def test_sandbox_with_a_local_image_and_bad_input(tmp_path: Path) -> None:
    png = (ROOT / "tests" / "data" / "tiny.png").read_bytes()
    img = tmp_path / "first.png"
    img.write_bytes(png)
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not a picture", encoding="utf-8")
    code, out, err = await _sandbox(
        tmp_path / "state", f"{img} make the grass sway, pro", "", "/video", f"{not_image} a test"
    )
    assert code == 0, err
    assert "Ima Sevio 1.0" in out and "image → video" in out
    assert "Your video is ready" in out
    assert "Tell me what to make" in out  # an empty request gets a specific answer
    assert "is not an image" in out  # a non-image file is refused clearly
    assert "Traceback" not in err
