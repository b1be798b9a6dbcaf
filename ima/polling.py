"""Task polling as an async generator of snapshots, with injected fetch, clock and sleep."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable

from .errors import ImaApiError, ImaTransportError, TaskFailed, TaskTimeout
from .models import MAX_WAIT_S, POLL_INTERVAL_S, RECORDS_URL, Snapshot, Task, TaskState

log = logging.getLogger("ima.polling")

BACKOFF_FIRST_S = 2.0
BACKOFF_MAX_S = 60.0
# Business codes that mean "busy, ask again later" rather than "this task is wrong".
TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})


def progress_percent(elapsed: float, estimated_max: float) -> int:
    """The seed's progress figure: min(95, floor(elapsed / estimated_max * 100))."""
    if estimated_max <= 0:
        return 95
    return max(0, min(95, math.floor(elapsed / estimated_max * 100)))


def is_transient(error: Exception) -> bool:
    """True for failures worth polling again: no answer, timeouts, 5xx, rate limits."""
    if isinstance(error, ImaTransportError):
        return True
    if isinstance(error, ImaApiError):
        code = str(error.code)
        return error.http_status >= 500 or (code.isdigit() and int(code) in TRANSIENT_CODES)
    return False


def backoff_delay(failures: int, *, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S) -> float:
    """The wait before retry number `failures` (1-based): first, 2×first, 4×first … capped."""
    return min(cap, first * 2 ** max(0, failures - 1))


async def watch_task(
    fetch: Callable[[], Awaitable[Task]],
    task_id: str,
    *,
    interval: float = POLL_INTERVAL_S,
    max_wait: float = MAX_WAIT_S,
    estimated_max: float | None = None,
    started_at: float | None = None,
    first_poll_at: float | None = None,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
) -> AsyncIterator[Snapshot]:
    """Yields a Snapshot after every successful poll; the last one yielded has state SUCCEEDED.

    The first poll goes out at once, or at the clock time `first_poll_at` when given; then one every
    `interval` (the contract's 8 s). The bot's rule for it (bot/jobs/poll_plan.py): the first poll of a
    task waits until a low percentile of the learned run times for its model, duration and resolution,
    never earlier than one interval, never later than the seed's earliest typical time (Fast 60 s, Pro
    120 s); a task resumed after a restart polls at once. A task cannot end sooner than that, so earlier
    polls would only cost CPU; progress is computed from elapsed time, so it needs no poll.

    Raises TaskFailed (failed, or deleted with `deleted=True`), TaskTimeout once more than `max_wait`
    seconds passed since `started_at` (default: now), or the fetch's own error when it is not transient.
    Transient errors (no answer, 5xx, 429) are retried with backoff, yield nothing, and never end the
    watch before `max_wait`."""
    start = clock() if started_at is None else started_at
    estimate = estimated_max if estimated_max else max_wait // 2
    failures = 0
    if first_poll_at is not None and (wait := first_poll_at - clock()) > 0:
        await sleep(wait)
    while True:
        elapsed = clock() - start
        if elapsed > max_wait:
            raise TaskTimeout(
                f"Task {task_id} timed out after {max_wait:.0f}s without explicit backend errors. "
                f"Please check your creation record at {RECORDS_URL}.",
                task_id=task_id,
                elapsed=elapsed,
            )
        try:
            task = await fetch()
        except Exception as exc:
            if not is_transient(exc):
                raise
            failures += 1
            delay = backoff_delay(failures)
            log.info(
                "poll of %s failed transiently (%s); retry %d in %.0fs",
                task_id,
                exc.__class__.__name__,
                failures,
                delay,
            )
            await sleep(delay)
            continue
        failures = 0
        elapsed = clock() - start
        if task.state is TaskState.FAILED:
            raise TaskFailed(
                f"Generation failed: {task.error or 'unknown'}", task_id=task_id, elapsed=elapsed
            )
        if task.state is TaskState.DELETED:
            raise TaskFailed("Task was deleted", task_id=task_id, deleted=True, elapsed=elapsed)
        done = task.state is TaskState.SUCCEEDED
        yield Snapshot(
            task=task, elapsed=elapsed, percent=100 if done else progress_percent(elapsed, estimate)
        )
        if done:
            return
        await sleep(interval)
