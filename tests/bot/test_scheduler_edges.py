"""Scheduler edges the start order and the caps depend on: adopted jobs move the queue, a handed-back
job counts once against its user's cap, and limits below 1 are refused by name."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs.scheduler import Scheduler


async def test_adopting_a_running_job_moves_the_positions_already_shown() -> None:
    """After a restart, a resumed job of user A takes A's only slot: B's job now starts first."""
    s = Scheduler(global_limit=10, per_user_limit=1)
    s.submit("a1", "A")
    s.submit("b1", "B")
    assert s.positions() == {"a1": 1, "b1": 2}
    s.adopt("a0", "A")
    assert s.positions() == {"b1": 1, "a1": 2}
    assert s.try_acquire() == "b1" and s.try_acquire() is None  # a1 waits for a0, as shown


async def test_a_job_handed_back_by_a_cancelled_waiter_counts_once_against_the_cap() -> None:
    s = Scheduler(global_limit=2, per_user_limit=1)
    for job, user in (("a1", "A"), ("b1", "B"), ("c1", "C")):
        s.submit(job, user)
    assert [await s.acquire(), await s.acquire()] == ["a1", "b1"]
    waiter = asyncio.create_task(s.acquire())
    await asyncio.sleep(0)  # the waiter parks: both slots are taken
    s.release("b1")  # hands c1 to the waiter...
    waiter.cancel()  # ...which is cancelled before it runs: c1 goes back to the queue
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert s.running_for("C") == 0 and s.try_acquire() == "c1"
    assert s.running_for("C") == 1
    s.release("a1")
    s.submit("c2", "C")
    assert s.try_acquire() is None  # C is at its cap of one, with a slot free


@pytest.mark.parametrize(("global_limit", "per_user_limit"), [(0, 1), (1, 0)])
def test_limits_below_one_are_refused_by_name(global_limit: int, per_user_limit: int) -> None:
    with pytest.raises(ValueError, match=r"^limits must be at least 1$"):
        Scheduler(global_limit=global_limit, per_user_limit=per_user_limit)
