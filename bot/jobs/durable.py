"""Store writes that outlast a store fault: a job's task waits for the store to heal instead of dying."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._schema import StoreError

log = logging.getLogger("imabot.runner")

T = TypeVar("T")

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0


def is_fault(exc: BaseException) -> bool:
    """True for a store failure worth retrying (SQLite failed: disk full, read-only, locked, corrupt),
    False for a refusal about one job (JobNotFound, InvalidTransition, DuplicateJob …), which a retry
    cannot change."""
    return type(exc) is StoreError


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    sleep: Callable[[float], Awaitable[object]],
    stop: Callable[[], bool],
    on_fault: Callable[[StoreError], None] = lambda _exc: None,
    first: float = FIRST_DELAY_S,
    cap: float = MAX_DELAY_S,
) -> T:
    """Returns call()'s result, calling it again with doubling waits (first, 2×first … cap) while it
    fails with a store fault (each one is passed to on_fault first). Raises the fault once stop() is true (shutdown: the store keeps the job
    where it stood), and any other error at once."""
    delay = first
    while True:
        try:
            return await call()
        except StoreError as exc:
            if not is_fault(exc):
                raise
            on_fault(exc)
            if stop():
                raise
            log.warning("store write failed (%s); retrying in %.1f s", exc, delay)
        await sleep(delay)
        delay = min(cap, delay * 2)
