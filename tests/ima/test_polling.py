"""watch_task(): snapshots, progress, end states, timeout and transient retries with a fake clock."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ima import AuthError, ImaApiError, ImaTransportError, ServerError, TaskFailed, TaskTimeout
from ima.models import RECORDS_URL, Media, Task, TaskState
from ima.polling import backoff_delay, progress_percent, watch_task


class FakeTime:
    """A clock that only moves when the code under test sleeps (or a fetch takes time)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def task(state: TaskState, *, url: str = "", error: str = "") -> Task:
    media = Media(resource_status=1 if url else 0, status="", url=url, cover_url="", error=error)
    return Task(id="t1", medias=(media,), state=state, error=error)


class Script:
    """An injected fetch answering from a list (the last item repeats); records the clock at each call."""

    def __init__(self, time: FakeTime, items: Sequence[Task | Exception], *, cost: float = 0.0) -> None:
        self.time, self.items, self.cost = time, list(items), cost
        self.calls: list[float] = []

    async def __call__(self) -> Task:
        self.calls.append(self.time.now)
        self.time.now += self.cost
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, Exception):
            raise item
        return item


def watch(time: FakeTime, fetch: Script, **kw):
    kw.setdefault("clock", time.clock)
    kw.setdefault("sleep", time.sleep)
    return watch_task(fetch, "t1", **kw)


PROCESSING = task(TaskState.PROCESSING)
DONE = task(TaskState.SUCCEEDED, url="https://cdn.test/v.mp4")


async def test_polls_at_once_then_every_interval_until_success() -> None:
    time = FakeTime()
    fetch = Script(time, [PROCESSING, PROCESSING, DONE])
    snaps = [s async for s in watch(time, fetch)]
    assert fetch.calls == [1000.0, 1008.0, 1016.0]
    assert [s.task.state for s in snaps] == [TaskState.PROCESSING, TaskState.PROCESSING, TaskState.SUCCEEDED]
    assert [s.elapsed for s in snaps] == [0.0, 8.0, 16.0]
    assert snaps[-1].percent == 100 and snaps[-1].task.url == "https://cdn.test/v.mp4"


async def test_progress_follows_the_seed_formula_with_the_default_estimate() -> None:
    time = FakeTime()
    fetch = Script(time, [PROCESSING, DONE])
    snaps = [s async for s in watch(time, fetch, interval=600.0, max_wait=2400.0)]
    assert snaps[0].percent == 0
    time2 = FakeTime()
    fetch2 = Script(time2, [PROCESSING, PROCESSING, DONE])
    snaps2 = [s async for s in watch(time2, fetch2, interval=600.0, started_at=time2.now - 10)]
    assert [s.percent for s in snaps2[:2]] == [0, 50]  # 610 / 1200 → 50 (estimated_max = 2400 // 2)


def test_progress_percent_is_floored_and_capped_at_95() -> None:
    assert progress_percent(59.9, 120) == 49
    assert progress_percent(119, 120) == 95
    assert progress_percent(10_000, 120) == 95
    assert progress_percent(0, 120) == 0
    assert progress_percent(5, 0) == 95 and progress_percent(5, -1) == 95  # no estimate: never 100
    assert progress_percent(0.5, 1) == 50 and progress_percent(-3, 120) == 0


async def test_estimated_max_can_be_given() -> None:
    time = FakeTime()
    fetch = Script(time, [PROCESSING, PROCESSING, DONE])
    snaps = [s async for s in watch(time, fetch, interval=30.0, estimated_max=120.0)]
    assert [s.percent for s in snaps] == [0, 25, 100]


async def test_gives_up_after_max_wait_pointing_at_the_creation_records() -> None:
    time = FakeTime()
    fetch = Script(time, [PROCESSING])
    with pytest.raises(TaskTimeout) as info:
        async for _ in watch(time, fetch, interval=8.0, max_wait=40.0):
            pass
    assert fetch.calls == [1000.0, 1008.0, 1016.0, 1024.0, 1032.0, 1040.0]  # 40 is not yet past the cap
    assert info.value.task_id == "t1" and RECORDS_URL in info.value.links
    assert RECORDS_URL in info.value.message and "40s" in info.value.message


async def test_a_restarted_watch_continues_the_same_clock() -> None:
    time = FakeTime()
    fetch = Script(time, [PROCESSING])
    with pytest.raises(TaskTimeout):
        async for _ in watch(time, fetch, max_wait=2400.0, started_at=time.now - 2401):
            pass
    assert fetch.calls == []


async def test_failed_and_deleted_tasks_raise() -> None:
    time = FakeTime()
    fetch = Script(time, [PROCESSING, task(TaskState.FAILED, error="content policy")])
    snaps = []
    with pytest.raises(TaskFailed) as info:
        async for s in watch(time, fetch):
            snaps.append(s)
    assert len(snaps) == 1 and "content policy" in info.value.message and not info.value.deleted
    fetch = Script(time, [task(TaskState.DELETED)])
    with pytest.raises(TaskFailed) as info:
        async for _ in watch(time, fetch):
            pass
    assert info.value.deleted and "deleted" in info.value.message


@pytest.mark.parametrize(
    "error",
    [
        ImaTransportError("reset"),
        ServerError("busy", code=500),
        ImaApiError("bad gateway", code=502, http_status=502),
        ImaApiError("slow down", code=429),
    ],
)
async def test_transient_errors_are_retried_with_backoff_without_yielding(error: Exception) -> None:
    time = FakeTime()
    fetch = Script(time, [PROCESSING, error, error, error, DONE])
    snaps = [s async for s in watch(time, fetch)]
    assert [s.task.state for s in snaps] == [TaskState.PROCESSING, TaskState.SUCCEEDED]
    assert time.sleeps == [8.0, 2.0, 4.0, 8.0]


async def test_transient_errors_never_end_the_watch_before_max_wait() -> None:
    time = FakeTime()
    fetch = Script(time, [ImaTransportError("down")], cost=30.0)  # each failed call also takes 30 s
    with pytest.raises(TaskTimeout):
        async for _ in watch(time, fetch, max_wait=2400.0):
            pass
    assert time.now - 1000.0 > 2400.0
    assert max(time.sleeps) == 60.0


@pytest.mark.parametrize("error", [AuthError("bad key", code=401), ImaApiError("no such task", code=404)])
async def test_other_errors_end_the_watch(error: Exception) -> None:
    time = FakeTime()
    fetch = Script(time, [error])
    with pytest.raises(type(error)):
        async for _ in watch(time, fetch):
            pass
    assert len(fetch.calls) == 1


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_delay(n) for n in (1, 2, 3, 6, 7, 20)] == [2.0, 4.0, 8.0, 60.0, 60.0, 60.0]


async def test_the_first_poll_can_wait_for_a_given_clock_time() -> None:
    time = FakeTime()
    fetch = Script(time, [PROCESSING, DONE])
    snaps = [s async for s in watch(time, fetch, first_poll_at=1_060.0)]
    assert fetch.calls == [1060.0, 1068.0] and time.sleeps == [60.0, 8.0]
    assert [s.elapsed for s in snaps] == [60.0, 68.0]


@pytest.mark.parametrize("first_poll_at", [1_000.0, 900.0])
async def test_a_first_poll_time_already_passed_polls_at_once(first_poll_at: float) -> None:
    time = FakeTime()
    fetch = Script(time, [DONE])
    [s async for s in watch(time, fetch, first_poll_at=first_poll_at)]
    assert fetch.calls == [1000.0] and time.sleeps == []


async def test_a_first_poll_after_the_wait_limit_still_ends_in_a_timeout() -> None:
    time = FakeTime()
    fetch = Script(time, [PROCESSING])
    with pytest.raises(TaskTimeout):
        [s async for s in watch(time, fetch, first_poll_at=1_100.0, max_wait=50.0)]
    assert fetch.calls == []


def test_transient_means_no_answer_5xx_or_a_busy_code() -> None:
    from ima.polling import is_transient

    assert is_transient(ImaTransportError("x"))
    assert all(is_transient(ImaApiError("x", code=c)) for c in (429, 500, 502, "503", 504))
    assert not any(is_transient(ImaApiError("x", code=c)) for c in (401, 501, 505, 6009))
    assert is_transient(ImaApiError("x", code=7, http_status=500))
    assert not is_transient(ImaApiError("x", code=7, http_status=499))
    assert not is_transient(ImaApiError("x", code="abc")) and not is_transient(ValueError("x"))


async def test_a_failing_first_poll_backs_off_from_the_first_step() -> None:
    time = FakeTime()
    fetch = Script(time, [ImaTransportError("reset"), DONE])
    [s async for s in watch(time, fetch)]
    assert time.sleeps == [2.0]


async def test_a_first_poll_less_than_a_second_away_still_waits() -> None:
    time = FakeTime()
    fetch = Script(time, [DONE])
    [s async for s in watch(time, fetch, first_poll_at=1_000.5)]
    assert time.sleeps == [0.5] and fetch.calls == [1000.5]


async def test_a_success_resets_the_backoff_and_elapsed_is_read_after_the_fetch() -> None:
    time = FakeTime()
    fetch = Script(time, [ImaTransportError("a"), PROCESSING, ImaTransportError("b"), DONE], cost=1.0)
    snaps = [s async for s in watch(time, fetch)]
    assert time.sleeps == [2.0, 8.0, 2.0]
    assert [s.elapsed for s in snaps] == [4.0, 16.0]  # each fetch takes 1 s, counted in the snapshot
