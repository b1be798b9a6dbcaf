"""The suite's one way to wait for the pipeline: re-check on every job change, never by sleeping."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any


async def until_job_change(
    listeners: list[Callable[[Any], None]],
    check: Callable[[], Any],
    within: float = 20.0,
    *,
    also: Sequence[list[Callable[[Any], None]]] = (),
    recheck: float | None = None,
) -> Any:
    """Returns check()'s first truthy result (check may be sync or async), re-checked whenever the runner
    reports a job change through `listeners` (or any list in `also`: several runners), and at least
    every `recheck` seconds when given (for what changes no job). Raises TimeoutError after `within`
    seconds."""
    changed = asyncio.Event()

    def wake(_job: Any) -> None:
        changed.set()

    lists = [listeners, *also]
    for each in lists:
        each.append(wake)
    try:
        async with asyncio.timeout(within):
            while True:
                changed.clear()
                value = check()
                if asyncio.iscoroutine(value):
                    value = await value
                if value:
                    return value
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(recheck):
                        await changed.wait()
    finally:
        for each in lists:
            each.remove(wake)
