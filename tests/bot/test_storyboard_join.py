"""A storyboard's joined video is owed across restarts (issue 14): a storyboard whose shots all succeeded
but whose join never ran (the process died) is joined at the next start and posted once; a join that
failed says so once and is not tried again; a storyboard that ended long ago is left alone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.core import GenerationIntent, Origin
from bot.jobs.model import Job, JobState
from bot.storyboard_chain import JOIN_RESUME_WINDOW, owes_join
from ima.emulator import Emulator, EmulatorConfig

from .harness import VirtualClock, pipeline

ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1", message_id="m1")
TWO = "分镜：1. 小狗在草地上奔跑 2. 小狗跳进河里"


async def _shots(p) -> list[Job]:  # type: ignore[no-untyped-def]
    jobs = await p.store.recent_jobs("console:u1", limit=50)
    return sorted((j for j in jobs if "storyboard" in j.extra), key=lambda j: j.extra["storyboard"]["index"])


async def _board_without_its_join(tmp_path: Path, emu: Emulator, clock: VirtualClock) -> list[Job]:
    """Runs a two-shot storyboard whose last shot succeeds while the chain is deaf (as if the process
    died right then); returns its shots."""
    async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
        chain = p.dispatcher.storyboards
        await p.dispatcher(GenerationIntent(origin=ORIGIN, text=TWO, event_keys=("sb",)))
        first, second = await _shots(p)
        await p.wait_finished(first.id, within=60)
        await chain.wait_idle()  # shot 2 queued by the chain; then the chain goes deaf
        p.runner.listeners.remove(chain.on_change)
        await p.wait_finished(second.id, within=60)
        shots = await _shots(p)
        assert [s.state for s in shots] == [JobState.SUCCEEDED] * 2
        assert owes_join(shots[1], shots[1].extra["storyboard"])
        return shots


def _joined_posts(p, shots: list[Job]) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return [r for r in p.records() if r.get("key") == f"{shots[-1].id}:storyboard-joined"]


async def test_the_next_start_joins_and_posts_once_and_the_one_after_owes_nothing(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu:
        shots = await _board_without_its_join(tmp_path, emu, clock)
        async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
            # an ordinary job that succeeded meanwhile owes no join (and does not stop the resume)
            plain = await p.submit(p.job("a kite over the sea", user="u1"))
            assert (await p.wait_finished(plain.id, within=60)).state is JobState.SUCCEEDED
            assert await p.store.add_job(replace(p.job("hi"), state=JobState.DRAFT))  # a thin prompt's
            assert _joined_posts(p, shots) == []
            await p.dispatcher.storyboards.resume()  # what App.start does once the runner started
            await p.dispatcher.storyboards.wait_idle()
            last = await p.store.get_job(shots[-1].id)
            assert last is not None and not owes_join(last, last.extra["storyboard"])
            [post] = _joined_posts(p, shots)
            assert last.extra["storyboard"]["joined_url"] in str(post)
        async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
            await p.dispatcher.storyboards.resume()
            await p.dispatcher.storyboards.wait_idle()
            assert len(_joined_posts(p, shots)) == 1
        assert len(emu.tasks) == 3  # two shots and the ordinary job


async def test_a_storyboard_that_ended_long_ago_is_not_joined_at_a_start(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu:
        shots = await _board_without_its_join(tmp_path, emu, clock)
        clock.now += JOIN_RESUME_WINDOW + 1
        async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
            await p.dispatcher.storyboards.resume()
            await p.dispatcher.storyboards.wait_idle()
            assert _joined_posts(p, shots) == []


async def test_a_failed_join_says_so_once_and_is_not_tried_again(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu:
        shots = await _board_without_its_join(tmp_path, emu, clock)
        async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
            # shot 1's video is gone from the CDN: the join cannot download it
            gone = shots[0].result_url.replace("/cdn/", "/cdn/gone-")
            await p.store.update_job(shots[0].id, result_url=gone)
            await p.dispatcher.storyboards.resume()
            await p.dispatcher.storyboards.wait_idle()
            [post] = _joined_posts(p, shots)
            assert post["kind"] == "failure"
            assert post["title"] == p.texts("shots.storyboard.join_failed", "zh", count=2)
            last = await p.store.get_job(shots[-1].id)
            assert last is not None and last.extra["storyboard"]["join_failed"] is True
        async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
            await p.dispatcher.storyboards.resume()
            await p.dispatcher.storyboards.wait_idle()
            assert len(_joined_posts(p, shots)) == 1


def test_only_the_succeeded_last_shot_of_an_unjoined_storyboard_owes_a_join() -> None:
    from bot.jobs.model import JobSpec
    from ima.models import ModelId, TaskType

    spec = JobSpec(task_type=TaskType.TEXT_TO_VIDEO, model_id=ModelId.FAST, prompt="p")
    job = Job(id="b", user_key="k", origin=ORIGIN, spec=spec, locale="en", created_at=0.0)
    done = replace(job, state=JobState.SUCCEEDED)
    info = {"id": "a", "index": 1, "shots": ["a", "b"]}
    assert owes_join(done, info)
    assert not owes_join(job, info)  # not succeeded
    assert not owes_join(done, {**info, "shots": ["b", "a"]})  # not the last shot
    assert not owes_join(done, {**info, "shots": []})
    assert not owes_join(done, {**info, "joined_url": "https://x/v.mp4"})
    assert not owes_join(done, {**info, "join_failed": True})
