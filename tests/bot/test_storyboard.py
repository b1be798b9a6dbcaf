"""Storyboards (issue 14) through the real dispatcher, runner, emulator and SQLite: each shot starts from
the last frame of the one before, credits are held up front, cancel stops the rest, one joined mp4."""

from __future__ import annotations

import itertools
from pathlib import Path

from bot.core import Action, ActionIntent, Attachment, GenerationIntent, NoticeKind, Origin
from bot.dispatch import DispatchSettings
from bot.jobs.model import Job, JobState
from bot.jobs.scheduler import budget_day_start
from bot.media import duration_of, last_frame_png
from ima.emulator import Emulator, EmulatorConfig
from ima.models import TaskType

from .harness import VirtualClock, pipeline
from .media_clips import sample_mp4

ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1", message_id="m1")
THREE = "竖屏 分镜：1. 小狗在草地上奔跑 2. 小狗跳进河里 3. 小狗甩干身上的水"


def gen(text: str, key: str) -> GenerationIntent:
    return GenerationIntent(origin=ORIGIN, text=text, event_keys=(key,))


async def _shots(p) -> list[Job]:  # type: ignore[no-untyped-def]
    jobs = await p.store.recent_jobs("console:u1", limit=50)
    return sorted((j for j in jobs if "storyboard" in j.extra), key=lambda j: j.extra["storyboard"]["index"])


async def test_a_three_shot_storyboard_chains_last_frames_and_joins_one_video(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        assert await p.dispatcher(gen(THREE, "sb1")) is None  # the storyboard's card comes from the chain
        shots = await _shots(p)
        assert [s.state for s in shots] == [JobState.QUEUED, JobState.DRAFT, JobState.DRAFT]
        last = await p.wait_finished(shots[2].id, within=60)
        await p.dispatcher.storyboards.wait_idle()
        shots = await _shots(p)
        assert [s.state for s in shots] == [JobState.SUCCEEDED] * 3
        assert [s.spec.task_type for s in shots] == [TaskType.TEXT_TO_VIDEO] + [TaskType.IMAGE_TO_VIDEO] * 2
        assert {s.spec.aspect_ratio for s in shots} == {"9:16"} and len({s.spec.model_id for s in shots}) == 1
        # Three tasks, in order; the input image of shots 2 and 3 is the previous shot's last frame.
        tasks = [p.emulator.tasks[s.task_id] for s in shots]
        assert tasks[0].created <= tasks[1].created <= tasks[2].created
        for before, shot in itertools.pairwise(shots):
            [url] = shot.input_urls
            assert list(p.emulator.tasks[shot.task_id].params.get("input_images") or []) == [url]
            served = await p.client.download(before.result_url, max_bytes=2**24)
            assert await p.client.download(url, max_bytes=2**24) == last_frame_png(served)
        # One joined mp4 whose duration is the sum of the shots'.
        joined_url = (await p.store.get_job(last.id)).extra["storyboard"]["joined_url"]  # type: ignore[union-attr]
        joined = await p.client.download(joined_url, max_bytes=2**24)
        parts = [await p.client.download(s.result_url, max_bytes=2**24) for s in shots]
        assert abs(duration_of(joined) - sum(duration_of(x) for x in parts)) < 1e-3
        sent = [r for r in p.records() if joined_url in str(r)]
        assert sent, "the joined video was not posted"
        # One card for the storyboard, posted once and edited as the shots moved on.
        [card] = [r for r in p.records() if r.get("key") == f"{shots[0].id}:storyboard-card"]
        assert card["title"] == p.texts("shots.storyboard.title", "zh", count=3)
        assert len([r for r in p.records() if r["op"] == "edit" and r["ref"] == card["ref"]]) >= 3
        # Credits: the three charges, nothing left reserved.
        since = budget_day_start(p.clock())
        assert await p.store.credits_committed("console:u1", since=since) == sum(s.credit or 0 for s in shots)


async def test_cancel_stops_the_remaining_shots_and_returns_their_credits(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_never")  # shot 1 runs until cancelled
        await p.dispatcher(gen(THREE, "sb2"))
        shots = await _shots(p)
        since = budget_day_start(p.clock())

        async def running() -> bool:
            job = await p.store.get_job(shots[0].id)
            return job is not None and job.state is JobState.RUNNING

        await p.wait_for(running)
        assert await p.store.credits_committed("console:u1", since=since) == sum(
            s.credit or 0 for s in await _shots(p)
        )  # all three shots held up front
        await p.dispatcher(ActionIntent(ORIGIN, shots[0].id, Action.CANCEL, event_keys=("x",)))
        await p.wait_finished(shots[0].id)
        await p.dispatcher.storyboards.wait_idle()
        shots = await _shots(p)
        assert [s.state for s in shots] == [JobState.CANCELLED] * 3
        assert [s.task_id for s in shots[1:]] == ["", ""]  # never created
        assert len(p.emulator.tasks) == 1
        # Shot 1's task was created at IMA (it may be billed): its hold stays; the others' came back.
        assert await p.store.credits_committed("console:u1", since=since) == shots[0].credit


async def test_a_storyboard_longer_than_the_limit_or_the_budget_creates_nothing(tmp_path: Path) -> None:
    seven = "shots: " + " ".join(f"{i}) shot number {i}" for i in range(1, 8))
    async with pipeline(tmp_path, dispatch=DispatchSettings(daily_credit_budget=40)) as p:
        refused = await p.dispatcher(gen(seven, "sb3"))
        assert refused is not None and refused.kind is NoticeKind.ERROR and "6" in refused.title
        over = await p.dispatcher(gen(THREE, "sb4"))  # three pro shots cost more than 40 credits
        assert over is not None and over.kind is NoticeKind.ERROR
        assert await p.store.recent_jobs("console:u1", limit=50) == []
        assert p.emulator.tasks == {}
        assert await p.dispatcher(gen(THREE, "sb4")) is None  # a redelivery stays quiet


async def test_a_shot_whose_turn_came_while_the_bot_was_down_starts_at_the_next_start(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu:
        async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
            # As if the process died right after shot 1 succeeded: the chain never hears of it.
            p.runner.listeners.remove(p.dispatcher.storyboards.on_change)
            await p.dispatcher(gen(THREE, "sb5"))
            shots = await _shots(p)
            await p.wait_finished(shots[0].id)
            assert [s.state for s in await _shots(p)] == [JobState.SUCCEEDED, JobState.DRAFT, JobState.DRAFT]
        async with pipeline(tmp_path, emulator=emu, clock=clock) as p:
            await p.dispatcher.storyboards.resume()  # what App.start does after the runner started
            await p.wait_finished(shots[2].id, within=60)
            await p.dispatcher.storyboards.wait_idle()
            assert [s.state for s in await _shots(p)] == [JobState.SUCCEEDED] * 3
            assert len(emu.tasks) == 3
            assert "joined_url" in (await _shots(p))[2].extra["storyboard"]


async def test_a_failed_shot_retried_goes_on_with_the_rest_of_the_storyboard(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_failed", prompt_contains="跳进河里", times=1)
        await p.dispatcher(gen(THREE, "sb6"))
        shots = await _shots(p)
        failed = await p.wait_finished(shots[1].id, within=60)
        await p.dispatcher.storyboards.wait_idle()
        assert failed.state is JobState.FAILED
        assert (await p.store.get_job(shots[2].id)).state is JobState.CANCELLED  # type: ignore[union-attr]
        # Retry on the failed shot's message: the storyboard goes on from there.
        await p.dispatcher(ActionIntent(ORIGIN, failed.id, Action.RETRY, event_keys=("r",)))
        [retry] = [j for j in await p.store.recent_jobs("console:u1", limit=50) if j.retry_of == failed.id]
        await p.wait_finished(retry.id, within=60)
        await p.dispatcher.storyboards.wait_idle()
        retry = await p.store.get_job(retry.id)
        assert retry is not None and retry.state is JobState.SUCCEEDED
        order = retry.extra["storyboard"]["shots"]
        assert order[:2] == [shots[0].id, retry.id] and order[2] not in {s.id for s in shots}
        third = await p.wait_finished(order[2], within=60)
        await p.dispatcher.storyboards.wait_idle()
        assert third.state is JobState.SUCCEEDED and third.spec.prompt == shots[2].spec.prompt
        [url] = third.input_urls
        assert await p.client.download(url, max_bytes=2**24) == last_frame_png(
            await p.client.download(retry.result_url, max_bytes=2**24)
        )
        third = await p.store.get_job(third.id)
        assert third is not None and "joined_url" in third.extra["storyboard"]
        joined = await p.client.download(third.extra["storyboard"]["joined_url"], max_bytes=2**24)
        assert abs(duration_of(joined) - 3.0) < 1e-3


async def test_shot_one_of_a_storyboard_with_an_image_starts_from_that_image(tmp_path: Path) -> None:
    photo = tmp_path / "dog.png"
    photo.write_bytes(last_frame_png(sample_mp4()))
    async with pipeline(tmp_path) as p:
        att = Attachment(str(photo), "dog.png", "image/png", photo.stat().st_size)
        intent = GenerationIntent(
            origin=ORIGIN,
            text="shots: 1) the dog wakes up 2) the dog runs",
            attachments=(att,),
            event_keys=("sb7",),
        )
        await p.dispatcher(intent)
        shots = await _shots(p)
        assert [s.spec.task_type for s in shots] == [TaskType.IMAGE_TO_VIDEO] * 2
        first = await p.wait_finished(shots[0].id, within=60)
        [url] = first.input_urls
        assert await p.client.download(url, max_bytes=2**24) == photo.read_bytes()
        assert (await p.wait_finished(shots[1].id, within=60)).state is JobState.SUCCEEDED
