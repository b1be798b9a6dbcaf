"""The event loop `imabot` runs on: uvloop when installed, the standard loop when told so."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from bot import speed


def test_the_standard_loop_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMABOT_LOOP", "asyncio")
    assert speed.loop_factory() is None and speed.loop_name() == "asyncio"

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert speed.run(which()).startswith("asyncio")


@pytest.mark.skipif(importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed")
def test_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMABOT_LOOP", raising=False)
    assert speed.loop_name() == "uvloop"

    async def which() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert speed.run(which()).startswith("uvloop")
