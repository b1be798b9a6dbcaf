"""The suite's one way to wait for the pipeline: re-check on every job change, never by sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


async def until_job_change(
    listeners: list[Callable[[Any], None]], check: Callable[[], Any], within: float = 20.0
) -> Any:
    """Returns check()'s first truthy result (check may be sync or async), re-checked whenever the runner
    reports a job change through `listeners`. Raises TimeoutError after `within` seconds."""
    changed = asyncio.Event()

    def wake(_job: Any) -> None:
        changed.set()

    listeners.append(wake)
    try:
        async with asyncio.timeout(within):
            while True:
                changed.clear()
                value = check()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return value
                await changed.wait()
    finally:
        listeners.remove(wake)
