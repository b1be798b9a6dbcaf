"""Continue a result (issue 14) through the real dispatcher, runner, emulator and SQLite: the next shot is
image-to-video whose first frame is the last frame of the video the emulator served."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.core import Action, ActionIntent, GenerationIntent, NoticeKind, Origin, Quoted
from bot.jobs.model import Job, JobState
from bot.media import last_frame_png
from bot.shots import continue_words
from ima.models import ModelId, TaskType

from .harness import pipeline
from .media_clips import decoded_frames, png_pixels, rgb_rows, sample_mp4

ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1", message_id="m1")


def gen(text: str, key: str, **kw) -> GenerationIntent:  # type: ignore[no-untyped-def]
    return GenerationIntent(origin=ORIGIN, text=text, event_keys=(key,), **kw)


async def _new_jobs(p, before: set[str]) -> list[Job]:  # type: ignore[no-untyped-def]
    return [j for j in await p.store.recent_jobs("console:u1", limit=50) if j.id not in before]


async def _finished(p, text: str = "a red kite over hills, pro, 16:9, 5s") -> Job:  # type: ignore[no-untyped-def]
    await p.dispatcher(gen(text, "orig"))
    [job] = await p.store.recent_jobs("console:u1", limit=5)
    return await p.wait_finished(job.id)


async def _uploaded(p, url: str) -> bytes:  # type: ignore[no-untyped-def]
    return await p.client.download(url, max_bytes=10 * 2**20)


async def test_continue_button_runs_image_to_video_from_the_last_frame(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        first = await _finished(p)
        assert first.state is JobState.SUCCEEDED
        before = {first.id}
        answer = await p.dispatcher(ActionIntent(ORIGIN, first.id, Action.CONTINUE, event_keys=("c:1",)))
        assert answer is None
        [shot] = await _new_jobs(p, before)
        shot = await p.wait_finished(shot.id)
        assert shot.state is JobState.SUCCEEDED
        spec = shot.spec
        assert spec.task_type is TaskType.IMAGE_TO_VIDEO
        assert (spec.model_id, spec.duration, spec.resolution) == (
            first.spec.model_id,
            first.spec.duration,
            first.spec.resolution,
        )
        assert spec.prompt == first.spec.prompt  # the button keeps the prompt
        assert shot.retry_of == first.id and shot.extra["shots"] == {"of": first.id, "action": "continue"}
        # The first frame IMA got is the last frame of the video the emulator served, pixel for pixel.
        [url] = shot.input_urls
        task = p.emulator.tasks[shot.task_id]
        assert list(task.params.get("input_images") or []) == [url]
        uploaded = await _uploaded(p, url)
        served = await _uploaded(p, first.result_url)
        assert served == sample_mp4()
        assert uploaded == last_frame_png(served)
        assert png_pixels(uploaded)[2] == rgb_rows(decoded_frames(served)[-1])
        # A redelivered click makes nothing more.
        await p.dispatcher(ActionIntent(ORIGIN, first.id, Action.CONTINUE, event_keys=("c:1",)))
        assert len(await _new_jobs(p, before)) == 1


async def test_a_continue_reply_takes_its_words_as_the_next_prompt(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        first = await _finished(p)
        for n, (text, prompt, duration) in enumerate(
            [
                ("继续，小狗跳进了河里", "小狗跳进了河里", first.spec.duration),
                ("continue: the kite lands on a roof, 10s", "the kite lands on a roof", 10),
                ("next shot", first.spec.prompt, first.spec.duration),
            ]
        ):
            before = {j.id for j in await p.store.recent_jobs("console:u1", limit=50)}
            quoted = Quoted("q", ref=first.result_ref, from_bot=True)
            assert await p.dispatcher(gen(text, f"r{n}", reply_to=quoted)) is None
            [shot] = await _new_jobs(p, before)
            assert shot.spec.task_type is TaskType.IMAGE_TO_VIDEO, text
            assert shot.spec.prompt.strip(" ,") == prompt, text
            assert shot.spec.duration == duration, text
            assert shot.spec.attachments[0].handle == f"frame:last:{first.id}"
            done = await p.wait_finished(shot.id)
            assert done.state is JobState.SUCCEEDED, (text, done.error_key)


async def test_a_reply_without_a_continue_word_stays_an_ordinary_follow_up(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        first = await _finished(p)
        quoted = Quoted("q", ref=first.result_ref, from_bot=True)
        await p.dispatcher(gen("竖屏版", "f1", reply_to=quoted))
        [shot] = await _new_jobs(p, {first.id})
        assert shot.spec.task_type is first.spec.task_type and shot.spec.aspect_ratio == "9:16"


async def test_continue_from_a_failed_or_unfinished_job_is_refused(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_failed")
        failed = await _finished(p, "a failing kite")
        assert failed.state is JobState.FAILED
        queued = p.job("a queued kite", user="u1")
        assert await p.store.add_job(queued)  # stored, never admitted: it stays queued
        for n, job in enumerate((failed, queued)):
            answer = await p.dispatcher(ActionIntent(ORIGIN, job.id, Action.CONTINUE, event_keys=(f"x:{n}",)))
            assert answer is not None and answer.kind is NoticeKind.ERROR
            assert job.id in answer.title
        assert await _new_jobs(p, {failed.id, queued.id}) == []


async def test_a_result_gone_from_the_cdn_fails_the_shot_with_nothing_charged(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        first = await _finished(p)
        # The stored result URL no longer serves (the CDN dropped it): the shot fails before any create.
        await p.store.update_job(first.id, result_url=first.result_url.replace("/cdn/", "/cdn/gone-"))
        await p.dispatcher(ActionIntent(ORIGIN, first.id, Action.CONTINUE, event_keys=("c:3",)))
        [shot] = await _new_jobs(p, {first.id})
        shot = await p.wait_finished(shot.id)
        assert (shot.state, shot.error_key, shot.task_id) == (JobState.FAILED, "shots_download_failed", "")
        final = [r for r in p.records(shot.id) if r.get("kind") == "failure"]
        assert final, p.records(shot.id)


async def test_continue_keeps_the_other_model_when_the_source_used_it(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        first = await _finished(p, "fast a paper boat on a rainy street")
        assert first.spec.model_id is ModelId.FAST
        await p.dispatcher(ActionIntent(ORIGIN, first.id, Action.CONTINUE, event_keys=("c:4",)))
        [shot] = await _new_jobs(p, {first.id})
        assert shot.spec.model_id is ModelId.FAST


@pytest.mark.parametrize(
    ("text", "rest"),
    [
        ("继续，小狗跳进了河里", "小狗跳进了河里"),
        ("接着 it starts to rain", "it starts to rain"),
        ("续：天黑了", "天黑了"),
        ("续拍", ""),
        ("continue", ""),
        ("Continue: the kite lands", "the kite lands"),
        ("  next shot - a wide view", "a wide view"),
        ("keep going!", ""),
        ("continued story", None),
        ("please continue", None),
        ("then it jumps", None),
        ("竖屏版", None),
        ("", None),
    ],
)
def test_continue_words_start_a_reply(text: str, rest: str | None) -> None:
    assert continue_words(text) == rest


async def test_the_last_frame_input_says_why_it_cannot_be_had(tmp_path: Path) -> None:
    from bot.core import AttachmentRejected
    from bot.jobs.frames import last_frame_of, read_last_frame

    async with pipeline(tmp_path) as p:
        junk_url = await p.client.upload_file(b"not a video", filename="x.mp4", content_type="video/mp4")
        good = await _finished(p)
        junk = replace(p.job("junk"), state=JobState.SUCCEEDED, result_url=junk_url)
        assert await p.store.add_job(junk)
        png = await read_last_frame(p.runner, last_frame_of(good.id))
        assert png == last_frame_png(sample_mp4())
        cases = [
            (last_frame_of("nope"), {}, "shots_source_gone"),
            (last_frame_of(good.id), {"max_bytes": len(sample_mp4()) - 1}, "shots_source_too_large"),
            (last_frame_of(junk.id), {}, "shots_unreadable_video"),
        ]
        for att, kw, key in cases:
            with pytest.raises(AttachmentRejected) as info:
                await read_last_frame(p.runner, att, **kw)
            assert info.value.key == key
        assert (await read_last_frame(p.runner, last_frame_of(good.id), max_bytes=len(sample_mp4()))) == png
