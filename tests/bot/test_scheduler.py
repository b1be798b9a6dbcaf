"""The scheduler: caps, round robin, positions that match the real start order, wake-ups, the budget."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.jobs.scheduler import Scheduler, budget_allows, budget_day_start


async def settle() -> None:
    """Lets every task created so far run up to its first await: one pass over the loop's ready queue
    (FIFO), not a timed wait."""
    await asyncio.sleep(0)


def five_one_one() -> Scheduler:
    s = Scheduler(global_limit=2, per_user_limit=1)
    returned = [s.submit(f"a{i}", "A") for i in range(1, 6)]
    returned += [s.submit("b1", "B"), s.submit("c1", "C")]
    # a1 and the b1 start at once; everything else waits for a slot.
    assert returned == [0, 2, 3, 4, 5, 0, 3]
    return s


async def test_three_users_5_1_1_are_interleaved() -> None:
    s = five_one_one()
    assert s.positions() == {"a1": 1, "b1": 2, "c1": 3, "a2": 4, "a3": 5, "a4": 6, "a5": 7}
    started = [await asyncio.wait_for(s.acquire(), 1), await asyncio.wait_for(s.acquire(), 1)]
    assert started == ["a1", "b1"]
    assert (s.running_count, s.queued_count, s.running_for("A"), s.running_for("B")) == (2, 5, 1, 1)
    running = list(started)
    while s.queued_count:
        waiter = asyncio.create_task(s.acquire())
        await settle()
        assert s.waiting_count == 1  # both slots are taken (or A is at its cap): it must wait
        while s.waiting_count:
            s.release(running.pop(0))  # jobs end in the order they started
        started.append(await asyncio.wait_for(waiter, 1))
        running.append(started[-1])
    # C is not starved behind A's five jobs; A's own jobs then run one at a time.
    assert started == ["a1", "b1", "c1", "a2", "a3", "a4", "a5"]


async def test_positions_fall_as_jobs_start_and_match_the_start_order() -> None:
    s = five_one_one()
    await s.acquire()
    await s.acquire()
    assert s.positions() == {"c1": 1, "a2": 2, "a3": 3, "a4": 4, "a5": 5}
    s.release("a1")
    assert await s.acquire() == "c1"
    assert s.positions() == {"a2": 1, "a3": 2, "a4": 3, "a5": 4}
    assert s.position("c1") is None  # running, not queued
    assert s.position("unknown") is None


async def test_remove_cancels_a_queued_job_and_updates_positions() -> None:
    s = five_one_one()
    await s.acquire()
    await s.acquire()
    assert s.remove("a3") is True
    assert s.positions() == {"c1": 1, "a2": 2, "a4": 3, "a5": 4}
    assert s.remove("c1") is True
    assert s.position("a2") == 1
    assert s.remove("a3") is False  # gone already
    assert s.remove("a1") is False  # running: the runner cancels it and calls release
    assert s.queued_count == 3


async def test_a_user_whose_only_job_leaves_drops_out_of_the_rotation() -> None:
    s = Scheduler(global_limit=1, per_user_limit=1)
    s.submit("a1", "A")
    s.submit("b1", "B")
    s.submit("c1", "C")
    assert s.remove("b1")
    assert s.positions() == {"a1": 1, "c1": 2}
    s.submit("b2", "B")  # B comes back at the end of the line
    assert s.positions() == {"a1": 1, "c1": 2, "b2": 3}


async def test_release_frees_a_slot_and_wakes_exactly_one_waiter_per_slot() -> None:
    s = Scheduler(global_limit=1, per_user_limit=1)
    for user in "ABCD":
        s.submit(f"{user.lower()}1", user)
    assert await s.acquire() == "a1"
    waiters = [asyncio.create_task(s.acquire()) for _ in range(3)]
    await settle()
    assert s.waiting_count == 3
    s.release("a1")
    # The job is handed over inside release(): one waiter served, the others still waiting.
    assert (s.running_count, s.waiting_count, s.queued_count) == (1, 2, 2)
    assert await asyncio.wait_for(waiters[0], 1) == "b1"
    assert not waiters[1].done() and not waiters[2].done()
    s.release("a1")  # idempotent: frees nothing
    s.release("never-ran")
    assert s.waiting_count == 2
    s.release("b1")
    assert await asyncio.wait_for(waiters[1], 1) == "c1"
    assert not waiters[2].done()
    s.release("c1")
    assert await asyncio.wait_for(waiters[2], 1) == "d1"


async def test_the_per_user_cap_holds_while_others_still_start() -> None:
    s = Scheduler(global_limit=10, per_user_limit=2)
    for i in range(4):
        s.submit(f"a{i}", "A")
    assert [s.try_acquire(), s.try_acquire(), s.try_acquire()] == ["a0", "a1", None]
    assert s.running_for("A") == 2
    assert s.submit("b0", "B") == 0  # another user starts at once despite A's backlog
    assert s.try_acquire() == "b0"
    waiter = asyncio.create_task(s.acquire())
    await settle()
    assert s.waiting_count == 1
    s.release("a0")
    assert await asyncio.wait_for(waiter, 1) == "a2"
    assert s.running_for("A") == 2


async def test_the_global_cap_holds() -> None:
    s = Scheduler(global_limit=2, per_user_limit=5)
    for user in "ABC":
        s.submit(f"{user}-job", user)
    assert [s.try_acquire(), s.try_acquire(), s.try_acquire()] == ["A-job", "B-job", None]
    assert s.running_count == 2
    s.release("A-job")
    assert s.try_acquire() == "C-job"


async def test_a_cancelled_acquire_loses_no_job() -> None:
    s = Scheduler(global_limit=1, per_user_limit=1)
    s.submit("a1", "A")
    s.submit("b1", "B")
    assert await s.acquire() == "a1"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(s.acquire(), 0.05)  # gives up while waiting
    assert s.waiting_count == 0
    s.release("a1")
    assert s.try_acquire() == "b1"


async def test_a_job_handed_to_a_waiter_cancelled_in_the_same_tick_goes_back_to_the_front() -> None:
    s = Scheduler(global_limit=1, per_user_limit=1)
    for job, user in (("a1", "A"), ("b1", "B"), ("c1", "C")):
        s.submit(job, user)
    assert await s.acquire() == "a1"
    waiter = asyncio.create_task(s.acquire())
    await settle()
    assert s.waiting_count == 1
    s.release("a1")  # hands b1 to the waiter...
    waiter.cancel()  # ...which is cancelled before it could run
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert s.running_count == 0
    assert s.positions() == {"b1": 1, "c1": 2}
    assert s.try_acquire() == "b1"


async def test_submit_refuses_a_job_twice_and_adopt_counts_as_running() -> None:
    s = Scheduler(global_limit=2, per_user_limit=1)
    s.submit("a1", "A")
    with pytest.raises(ValueError):
        s.submit("a1", "A")
    s.adopt("resumed", "A")  # a restart found its IMA task running
    s.adopt("resumed", "A")
    assert (s.running_count, s.running_for("A"), s.is_running("resumed")) == (1, 1, True)
    assert s.try_acquire() is None  # A is at its cap
    assert s.submit("b1", "B") == 0
    assert s.try_acquire() == "b1"
    s.release("resumed")
    assert s.try_acquire() == "a1"
    assert s.try_acquire() is None


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Scheduler(global_limit=0, per_user_limit=1)
    with pytest.raises(ValueError):
        Scheduler(global_limit=1, per_user_limit=0)


@given(
    limits=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    history=st.lists(st.one_of(st.sampled_from("ABCD"), st.sampled_from(["start", "end"])), max_size=30),
    jobs=st.lists(st.sampled_from("ABCD"), min_size=1, max_size=25),
)
def test_positions_predict_the_start_order_when_jobs_end_in_start_order(
    limits: tuple[int, int], history: list[str], jobs: list[str]
) -> None:
    s = Scheduler(global_limit=limits[0], per_user_limit=limits[1])
    running: list[str] = []
    owner: dict[str, str] = {}
    # Any history of submissions, starts and ends (users leave and rejoin the rotation) ...
    for n, step in enumerate(history):
        if step == "start" and (job := s.try_acquire()):
            running.append(job)
        elif step == "end" and running:
            s.release(running.pop(0))
        elif step not in ("start", "end"):
            s.submit(f"h{n}", step)
            owner[f"h{n}"] = step
    for n, user in enumerate(jobs):
        s.submit(f"{user}{n}", user)
        owner[f"{user}{n}"] = user
    # ... then the predicted order is the real one, provided jobs end in the order they started.
    positions = s.positions()
    assert sorted(positions.values()) == list(range(1, s.queued_count + 1))
    predicted = sorted(positions, key=positions.__getitem__)
    actual: list[str] = []
    while s.queued_count:
        job = s.try_acquire()
        if job is None:
            s.release(running.pop(0))
            continue
        assert s.running_count <= limits[0]
        assert s.running_for(owner[job]) <= limits[1]
        actual.append(job)
        running.append(job)
    assert actual == predicted


def test_one_user_cannot_starve_another() -> None:
    s = Scheduler(global_limit=1, per_user_limit=1)
    for n in range(10):
        s.submit(f"a{n}", "A")
    order = [s.try_acquire()]
    s.submit("b0", "B")
    s.submit("b1", "B")
    while s.queued_count:
        s.release(order[-1])
        order.append(s.try_acquire())
    assert order[:6] == ["a0", "b0", "a1", "b1", "a2", "a3"]


def test_budget_allows_counts_spent_plus_the_estimate() -> None:
    assert budget_allows(90, 10, 100) is True
    assert budget_allows(91, 10, 100) is False
    assert budget_allows(10**6, 10, None) is True  # no budget configured
    assert budget_allows(10**6, 10, 0) is True
    assert budget_allows(100, 0, 100) is True


def test_budget_day_starts_at_local_midnight() -> None:
    now = datetime(2025, 3, 1, 20, 30, tzinfo=UTC).timestamp()  # 04:30 on 2 March in UTC+8
    assert budget_day_start(now) == datetime(2025, 3, 1, tzinfo=UTC).timestamp()
    assert budget_day_start(now, utc_offset_hours=8) == datetime(2025, 3, 1, 16, tzinfo=UTC).timestamp()


async def test_a_user_who_comes_back_lines_up_ahead_of_users_served_since() -> None:
    s = Scheduler(global_limit=1, per_user_limit=1)
    for job, user in (("a1", "A"), ("b1", "B"), ("b2", "B"), ("c1", "C"), ("c2", "C")):
        s.submit(job, user)
    for expected in ("a1", "b1", "c1"):
        assert s.try_acquire() == expected
        s.release(expected)
    # A was served before B and C last were: its new job goes first, not behind their backlog.
    assert s.submit("a2", "A") == 0  # the slot is free: it starts at once
    assert s.positions() == {"a2": 1, "b2": 2, "c2": 3}
    assert [s.try_acquire(), s.release("a2"), s.try_acquire()] == ["a2", None, "b2"]
    # A newcomer (never served) also lines up ahead of users served before.
    s.release("b2")
    s.submit("d1", "D")
    assert s.positions() == {"d1": 1, "c2": 2}


async def test_try_acquire_never_jumps_ahead_of_a_waiting_acquire() -> None:
    s = Scheduler(global_limit=1, per_user_limit=1)
    s.submit("a1", "A")
    assert s.try_acquire() == "a1"
    waiter = asyncio.create_task(s.acquire())
    await settle()
    s.submit("b1", "B")  # cannot start yet: a1 holds the only slot
    assert s.try_acquire() is None and s.waiting_count == 1
    s.release("a1")  # the slot goes to the caller that waited, not to the next try_acquire
    assert s.try_acquire() is None
    assert await asyncio.wait_for(waiter, 1) == "b1"


async def test_a_waiter_cancelled_in_the_same_tick_is_skipped_not_handed_a_job() -> None:
    s = Scheduler(global_limit=1, per_user_limit=1)
    waiter = asyncio.create_task(s.acquire())
    await settle()
    waiter.cancel()  # its future is cancelled now; its task only notices on its next turn
    s.submit("a1", "A")  # in the same tick: the job must not go to the cancelled waiter
    assert s.waiting_count == 0 and s.try_acquire() == "a1"
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (s.running_count, s.queued_count) == (1, 0)
