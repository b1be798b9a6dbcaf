"""The event loop the bot runs on: uvloop when it is installed (`pip install imabot[speed]`), else asyncio's.

uvloop cuts the loop's own share of every poll and Feishu call (selector, transports, callbacks). Set
IMABOT_LOOP=asyncio to run on the standard loop anyway (to compare, or to rule uvloop out).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Returns uvloop's loop constructor when uvloop is importable and not turned off, else None."""
    if os.environ.get("IMABOT_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    """ "uvloop" or "asyncio": what run() would use."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) on the loop loop_factory() picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
