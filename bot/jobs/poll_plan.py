"""When a job's first status poll goes out, and the progress edits shown before it.

The rule (applied at admission, stored in the job as `extra["first_poll"]`, seconds after the task's start):

* The first poll waits until a low percentile of the learned run times of this model, duration and resolution:
  the 20th percentile the estimate already computes (`progress.estimate`, at least `min_samples` finished
  jobs), less one poll interval. A run time is only known to within a poll (it is measured to the poll that
  found the video), and a job found finished at its first poll says only "at most this long": without the
  one interval less, the plan could learn later first polls but never earlier ones. Without that history
  it waits half the seed's earliest typical time (Fast 30 s, Pro 60 s).
* Never earlier than one poll interval (the contract's 8 s), never later than the seed's earliest typical
  time (Fast 60 s, Pro 120 s): a task is not expected to end before it, so earlier polls only cost CPU.
* After the first poll, every poll interval, as the contract says (`ima.polling.watch_task`).
* A job resumed after a restart polls at once (it may have finished while the bot was down).

The seed's times are in contract seconds; a time-compressed bot (a poll interval below 8 s, as in the
sandbox) compresses them by the same factor.

Progress edits do not depend on polls: their percent is the seed's formula over elapsed time, so until the
first poll `progress_until` shows them at the same cadence, and users see no difference.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ima.models import ESTIMATED_SECONDS, POLL_INTERVAL_S, ModelId

from .progress import Estimate

NO_HISTORY_FRACTION = 0.5  # of the seed's earliest typical time, when nothing was learned yet


def first_poll_delay(model: ModelId, est: Estimate, *, interval: float) -> float:
    """Seconds from the task's start to its first poll (see the module docstring); interval is the poll
    interval in use (8 s in production, less when time is compressed)."""
    scale = interval / POLL_INTERVAL_S
    earliest = ESTIMATED_SECONDS[ModelId(model)][0] * scale
    wanted = est.low - interval if est.from_history else earliest * NO_HISTORY_FRACTION
    return max(interval, min(float(wanted), earliest))


def first_poll_at(started: float, stored_delay: object, *, resumed: bool, now: float) -> float:
    """The clock time of the first poll: started + the stored delay; now for a resumed job or a job
    admitted before the rule existed (no stored delay)."""
    if resumed or not isinstance(stored_delay, int | float):
        return now
    return started + max(0.0, float(stored_delay))


async def progress_until(
    first_at: float,
    *,
    every: float,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    tick: Callable[[float], Awaitable[None]],
) -> None:
    """Calls tick(now) at once and then every `every` seconds until first_at, then returns at first_at
    (tick decides whether a progress edit is due). Returns at once when first_at has passed."""
    while (now := clock()) < first_at:
        await tick(now)
        step = every if every > 0 else first_at - now
        await sleep(max(0.0, min(first_at, now + step) - now))
