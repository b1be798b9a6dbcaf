"""When the first status poll goes out, and the progress users see before it (virtual clock, real runner)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.jobs.model import JobState
from bot.jobs.poll_plan import first_poll_at, first_poll_delay, progress_until
from bot.jobs.progress import Estimate
from ima.emulator import Emulator, EmulatorConfig
from ima.models import ModelId, Task, TaskState
from ima.polling import watch_task
from tests.bot.harness import VirtualClock, pipeline

DETAIL = "/open/v1/tasks/detail"


def learned(low: int) -> Estimate:
    return Estimate(low, low + 60, from_history=True, samples=5)


@pytest.mark.parametrize(
    ("model", "est", "interval", "delay"),
    [
        (ModelId.FAST, Estimate(60, 120), 8.0, 30.0),  # nothing learned: half the seed's earliest time
        (ModelId.PRO, Estimate(120, 300), 8.0, 60.0),
        (ModelId.FAST, learned(40), 8.0, 32.0),  # learned: the 20th percentile less one interval
        (ModelId.FAST, learned(10), 8.0, 8.0),  # never earlier than one interval
        (ModelId.FAST, learned(300), 8.0, 60.0),  # never later than the seed's earliest typical time
        (ModelId.PRO, learned(300), 8.0, 120.0),
        (ModelId.FAST, Estimate(60, 120), 1.0, 3.75),  # time compressed 8x: the seed's times too
        (ModelId.FAST, learned(1), 1.0, 1.0),
    ],
)
def test_first_poll_delay(model: ModelId, est: Estimate, interval: float, delay: float) -> None:
    assert first_poll_delay(model, est, interval=interval) == delay


def test_first_poll_at_is_now_for_resumed_and_older_jobs() -> None:
    assert first_poll_at(100.0, 30.0, resumed=False, now=101.0) == 130.0
    assert first_poll_at(100.0, 30.0, resumed=True, now=150.0) == 150.0
    assert first_poll_at(100.0, None, resumed=False, now=101.0) == 101.0  # admitted before the rule
    assert first_poll_at(100.0, -5, resumed=False, now=101.0) == 100.0


async def test_progress_until_ticks_at_the_cadence_and_returns_at_the_first_poll() -> None:
    clock = VirtualClock(1000.0)
    ticks: list[float] = []

    async def tick(now: float) -> None:
        ticks.append(now - 1000.0)

    await progress_until(1075.0, every=30.0, clock=clock, sleep=clock.sleep, tick=tick)
    assert ticks == [0.0, 30.0, 60.0] and clock() == 1075.0
    await progress_until(1075.0, every=30.0, clock=clock, sleep=clock.sleep, tick=tick)
    assert len(ticks) == 3  # the first poll time has come: nothing to wait for


@pytest.mark.parametrize(("every", "ticks"), [(0.0, [0.0]), (0.5, [0.0, 0.5, 1.0])])
async def test_progress_until_with_short_or_no_cadence(every: float, ticks: list[float]) -> None:
    clock = VirtualClock(0.0)
    seen: list[float] = []

    async def tick(now: float) -> None:
        seen.append(now)

    await progress_until(1.2, every=every, clock=clock, sleep=clock.sleep, tick=tick)
    assert seen == ticks and clock() == 1.2


def poll_times(p, started: float) -> list[float]:  # type: ignore[no-untyped-def]
    return [round(r.at - started, 3) for r in p.emulator.state.requests.find(DETAIL)]


def progress_times(p, job_id: str, started: float) -> list[float]:  # type: ignore[no-untyped-def]
    """When progress edits with a percent (not the 0 % "creating" stage, not the 100 % closing) went out."""
    recs = p.records(job_id)
    return [r["at"] - started for r in recs if r["op"] == "edit" and r["progress"] not in (0, 100, None)]


async def test_a_new_kind_of_job_is_first_polled_after_half_the_seeds_earliest_time(tmp_path: Path) -> None:
    async with pipeline(tmp_path, emulator_config=EmulatorConfig(base_seconds={"ima-pro-fast": 70.0})) as p:
        job = await p.submit(p.job())
        done = await p.wait_finished(job.id)
    assert done.state is JobState.SUCCEEDED and done.extra["first_poll"] == 30.0
    polls = poll_times(p, done.started_at)
    assert polls[0] == 30.0 and all(b - a == 8.0 for a, b in itertools.pairwise(polls))
    assert len(polls) == 6  # 30, 38, … 70: from its first second it would have been 10
    assert progress_times(p, job.id, done.started_at) == [30.0, 62.0]  # the Fast cadence: 30 s


async def test_progress_edits_keep_their_cadence_before_the_first_poll(tmp_path: Path) -> None:
    async with pipeline(tmp_path, emulator_config=EmulatorConfig(base_seconds={"ima-pro": 130.0})) as p:
        job = await p.submit(p.job(model=ModelId.PRO))
        done = await p.wait_finished(job.id)
    assert done.extra["first_poll"] == 60.0 and poll_times(p, done.started_at)[0] == 60.0
    shown = progress_times(p, job.id, done.started_at)
    assert shown[0] == 45.0  # the Pro cadence, shown from elapsed time before any poll
    assert all(b - a >= 45 for a, b in itertools.pairwise(shown)) and len(shown) >= 2


async def test_learned_run_times_move_the_first_poll(tmp_path: Path) -> None:
    clock = VirtualClock()
    config = EmulatorConfig(base_seconds={"ima-pro-fast": 45.0})
    async with pipeline(tmp_path, emulator_config=config, clock=clock, global_limit=1) as p:
        for _ in range(5):
            done = await p.wait_finished((await p.submit(p.job(duration=5))).id)
        assert done.extra["first_poll"] == 30.0  # still nothing learned for the fifth
        p.emulator.state.requests.clear()
        job = await p.wait_finished((await p.submit(p.job(duration=5))).id)
    # Five runs measured at 46 s (found at the poll after 45 s): their 20th percentile less one interval.
    assert job.extra["estimate"][0] == 46 and job.extra["first_poll"] == 38.0
    assert poll_times(p, job.started_at)[:2] == [38.0, 46.0]


async def test_a_resumed_job_polls_at_once(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(clock=clock) as emulator:
        async with pipeline(tmp_path, clock=clock, emulator=emulator) as p:
            emulator.faults.add("task_seconds", seconds=300)
            job = await p.submit(p.job())
            await p.wait_for(lambda: _running(p, job.id))
            await p.runner.close()  # a shutdown mid-job: the store keeps it RUNNING
        emulator.state.requests.clear()
        restarted = clock()
        async with pipeline(tmp_path, emulator=emulator, clock=clock) as again:
            done = await again.wait_finished(job.id)
    assert done.state is JobState.SUCCEEDED and done.extra["resumed"]
    assert emulator.state.requests.find(DETAIL)[0].at == restarted  # no wait for the plan's first poll


async def _running(p, job_id: str):  # type: ignore[no-untyped-def]
    job = await p.store.get_job(job_id)
    return job if job is not None and job.state is JobState.RUNNING else None


async def test_watch_sends_no_poll_before_first_poll_at_then_one_per_interval() -> None:
    clock = VirtualClock(100.0)
    polled: list[float] = []

    async def fetch() -> Task:
        polled.append(clock())
        return Task("t1", (), TaskState.SUCCEEDED if len(polled) == 3 else TaskState.PROCESSING)

    snaps = [
        s
        async for s in watch_task(
            fetch,
            "t1",
            interval=8.0,
            started_at=100.0,
            first_poll_at=130.0,
            estimated_max=120.0,
            clock=clock,
            sleep=clock.sleep,
        )
    ]
    assert polled == [130.0, 138.0, 146.0]
    assert [s.percent for s in snaps] == [25, 31, 100]  # percent from elapsed time since the start
    polled.clear()
    clock.now = 200.0
    late = watch_task(fetch, "t1", started_at=100.0, first_poll_at=130.0, clock=clock, sleep=clock.sleep)
    await anext(late)
    assert polled == [200.0]  # first_poll_at in the past: at once
    await late.aclose()
