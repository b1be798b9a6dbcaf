"""Intents through the real dispatcher into the real runner: dedup, preferences, refusals, buttons, commands."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.core import (
    Action,
    ActionIntent,
    Attachment,
    Command,
    CommandIntent,
    GenerationIntent,
    NoticeKind,
    Origin,
    Quoted,
)
from bot.dispatch import DispatchSettings
from bot.jobs.model import JobState
from bot.jobs.notices import render_notes
from ima.models import ModelId, TaskType

from .harness import pipeline

ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1", message_id="m1")


def gen(
    text: str, *keys: str, user: str = "u1", attachments: tuple[Attachment, ...] = (), **kw
) -> GenerationIntent:  # type: ignore[no-untyped-def]
    origin = Origin(platform="console", chat_id="c1", user_id=user, message_id="m1")
    return GenerationIntent(origin=origin, text=text, attachments=attachments, event_keys=keys, **kw)


async def _only_job(p):  # type: ignore[no-untyped-def]
    jobs = await p.store.recent_jobs("console:u1", limit=10)
    assert len(jobs) == 1
    return jobs[0]


async def test_redelivered_event_makes_one_job_and_one_reply(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        assert (
            await p.dispatcher(
                gen("/video 竖屏 10秒 一只小狗在草地上奔跑", "feishu:event:e1", "feishu:message:m1")
            )
            is None
        )
        assert (
            await p.dispatcher(
                gen("/video 竖屏 10秒 一只小狗在草地上奔跑", "feishu:event:e2", "feishu:message:m1")
            )
            is None
        )
        job = await _only_job(p)
        done = await p.wait_finished(job.id)
        assert done.state is JobState.SUCCEEDED
        assert (done.spec.aspect_ratio, done.spec.duration, done.locale) == ("9:16", 10, "zh")
        assert len([r for r in p.records() if r["op"] == "send" and r["kind"] == "prenotice"]) == 1
        assert len(p.emulator.tasks) == 1
        assert p.dispatcher.deduplicated == 1


async def test_said_beats_user_pref_beats_chat_default_beats_config(tmp_path: Path) -> None:
    settings = DispatchSettings(default_model=ModelId.FAST, default_aspect_ratio="1:1", default_duration=5)
    async with pipeline(tmp_path, dispatch=settings) as p:
        await p.store.set_chat_defaults("console", "c1", aspect_ratio="4:3")
        await p.store.set_prefs(
            "console:u1", aspect_ratio="16:9", models={TaskType.TEXT_TO_VIDEO: ModelId.PRO}
        )
        await p.dispatcher(gen("a lighthouse at dawn", "k1"))
        job = await _only_job(p)
        assert (job.spec.model_id, job.spec.aspect_ratio, job.spec.duration) == (ModelId.PRO, "16:9", 5)
        await p.dispatcher(gen("fast 9:16 a lighthouse at dusk", "k2", user="u2"))
        other = (await p.store.recent_jobs("console:u2"))[0]
        assert (other.spec.model_id, other.spec.aspect_ratio) == (ModelId.FAST, "9:16")
        await p.dispatcher(gen("a lighthouse at night", "k3", user="u3"))
        third = (await p.store.recent_jobs("console:u3"))[0]
        assert third.spec.aspect_ratio == "4:3"  # the chat default, no user preference


async def test_refusals_are_specific_and_create_nothing(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        empty = await p.dispatcher(gen("/video", "r1"))
        assert empty is not None and empty.kind is NoticeKind.ERROR and "Tell me what to make" in empty.title
        pdf = Attachment("x", "report.pdf", "application/pdf", 1000)
        refused = await p.dispatcher(gen("animate this", "r2", attachments=(pdf,)))
        assert refused is not None and "report.pdf" in refused.title and "not an image" in refused.title
        huge = Attachment("y", "big.png", "image/png", 200 * 2**20)
        too_big = await p.dispatcher(gen("用这张图", "r3", attachments=(huge,)))
        assert too_big is not None and "big.png" in too_big.title and "太大" in too_big.title
        # A redelivered bad request is answered once, not twice.
        assert await p.dispatcher(gen("animate this", "r2", attachments=(pdf,))) is None
        assert await p.store.recent_jobs("console:u1") == []
        assert len(p.emulator.tasks) == 0


async def test_other_model_button_and_owner_check(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        await p.dispatcher(gen("a red kite over hills", "b1"))
        job = await _only_job(p)
        await p.wait_finished(job.id)
        stranger = Origin(platform="console", chat_id="c1", user_id="intruder")
        refused = await p.dispatcher(ActionIntent(origin=stranger, job_id=job.id, action=Action.RETRY))
        assert refused is not None and refused.kind is NoticeKind.ERROR
        assert (
            await p.dispatcher(
                ActionIntent(origin=ORIGIN, job_id=job.id, action=Action.OTHER_MODEL, event_keys=("click:1",))
            )
            is None
        )
        # The same click redelivered does nothing.
        assert (
            await p.dispatcher(
                ActionIntent(origin=ORIGIN, job_id=job.id, action=Action.OTHER_MODEL, event_keys=("click:1",))
            )
            is None
        )
        jobs = await p.store.recent_jobs("console:u1")
        assert len(jobs) == 2
        again = jobs[0]
        assert again.retry_of == job.id and again.spec.model_id is job.spec.model_id.other
        done = await p.wait_finished(again.id)
        assert done.state is JobState.SUCCEEDED


async def test_commands_jobs_settings_cancel(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_never")
        shown = await p.dispatcher(CommandIntent(origin=ORIGIN, command=Command.JOBS, locale="en"))
        assert shown is not None and "no videos yet" in shown.title
        saved = await p.dispatcher(
            CommandIntent(
                origin=ORIGIN,
                command=Command.SETTINGS,
                locale="en",
                args={"model": "pro", "duration": "10", "aspect_ratio": "9:16"},
            )
        )
        assert saved is not None and any("Ima Sevio 1.0" in line for line in saved.lines)
        prefs = await p.store.get_prefs("console:u1")
        assert prefs.duration == 10 and prefs.aspect_ratio == "9:16"
        bad = await p.dispatcher(
            CommandIntent(origin=ORIGIN, command=Command.SETTINGS, locale="en", args={"resolution": "8K"})
        )
        assert bad is not None and any("8K" in line for line in (bad.title, *bad.lines))
        assert (await p.store.get_prefs("console:u1")).resolution is None  # the bad value was not stored
        await p.dispatcher(gen("a slow river", "c1"))
        job = await _only_job(p)
        assert job.spec.model_id is ModelId.PRO and job.spec.duration == 10
        await p.wait_for(lambda: _running(p, job.id))
        cancelled = await p.dispatcher(CommandIntent(origin=ORIGIN, command=Command.CANCEL, locale="en"))
        assert cancelled is None  # one message per action: the job's own "Cancelled" message answers
        done = await p.wait_finished(job.id)
        assert done.state is JobState.CANCELLED


async def _running(p, job_id: str):  # type: ignore[no-untyped-def]
    job = await p.store.get_job(job_id)
    return job is not None and job.state is JobState.RUNNING


# -- replies (issue 15): follow-ups of job messages, quoted images ---------------------------------


def reply(text: str, key: str, ref: str, *, attachments: tuple[Attachment, ...] = (), quoted=()):  # type: ignore[no-untyped-def]
    return gen(
        text, key, attachments=attachments, reply_to=Quoted("q", ref=ref, from_bot=True, attachments=quoted)
    )


async def _finished_job(p, text: str = "a red kite over hills, pro, 16:9, 5s"):  # type: ignore[no-untyped-def]
    await p.dispatcher(gen(text, "orig"))
    job = await _only_job(p)
    return await p.wait_finished(job.id)


async def test_a_reply_to_a_result_is_a_follow_up_with_the_changes_said(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        job = await _finished_job(p)
        shown: list[str] = []
        for text, key, ref, change in [
            ("same again but 1:1", "f1", job.result_ref, {"aspect_ratio": "1:1"}),
            ("竖屏版", "f2", job.notice_ref, {"aspect_ratio": "9:16"}),
            ("换快速模型", "f3", job.result_ref, {"model_id": ModelId.FAST}),
            ("10 秒的", "f4", job.result_ref, {"duration": 10}),
        ]:
            before = {j.id for j in await p.store.recent_jobs("console:u1", limit=50)}
            assert await p.dispatcher(reply(text, key, ref)) is None
            new = [j for j in await p.store.recent_jobs("console:u1", limit=50) if j.id not in before]
            assert len(new) == 1, text
            expected = replace(job.spec, **change)
            assert replace(new[0].spec, notes=()) == replace(expected, notes=()), text
            assert new[0].retry_of == job.id and new[0].input_urls == job.input_urls
            ((key_, params),) = new[0].spec.notes
            assert key_ == "platforms.followup.changed" and params["job_id"] == job.id
            shown.append(" ".join(render_notes(p.texts, new[0].spec.notes, new[0].locale)))
            await p.wait_finished(new[0].id)
        assert "aspect ratio 16:9 → 1:1" in shown[0] and job.id in shown[0]
        assert "画幅 16:9 → 9:16" in shown[1]
        assert "模型 Ima Sevio 1.0 → Ima Sevio 1.0-Fast" in shown[2]
        assert "时长 5秒 → 10秒" in shown[3]


async def test_a_reply_that_asks_for_nothing_starts_nothing(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        job = await _finished_job(p)
        for i, text in enumerate(["thanks!", "太棒了", "love it ❤️", "haha"]):
            assert await p.dispatcher(reply(text, f"t{i}", job.result_ref)) is None, text
        assert [j.id for j in await p.store.recent_jobs("console:u1", limit=50)] == [job.id]
        # "again" with no change runs the same settings, and says so
        assert await p.dispatcher(reply("再来一个", "again", job.result_ref)) is None
        jobs = await p.store.recent_jobs("console:u1", limit=50)
        assert len(jobs) == 2 and jobs[0].spec.notes == (("platforms.followup.same", {"job_id": job.id}),)
        assert replace(jobs[0].spec, notes=()) == replace(job.spec, notes=())


async def test_a_reply_quoting_an_image_uses_it_and_the_reply_text_is_the_prompt(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        photo = Attachment("https://cdn.example/cat.png", "cat.png", "image/png", 100)
        assert (
            await p.dispatcher(reply("animate this, gentle breeze", "q1", "c1:404", quoted=(photo,))) is None
        )
        job = await _only_job(p)
        assert job.spec.task_type is TaskType.IMAGE_TO_VIDEO
        assert job.spec.prompt == "animate this, gentle breeze"
        assert [(a.handle, a.role) for a in job.spec.attachments] == [(photo.handle, "first")]


async def test_a_quoted_image_is_a_reference_when_the_reply_says_so(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        photo = Attachment("https://cdn.example/style.png", "style.png", "image/png", 100)
        await p.dispatcher(
            reply("use this as a style reference, a boy riding a bike", "q2", "c1:5", quoted=(photo,))
        )
        job = await _only_job(p)
        assert [a.role for a in job.spec.attachments] == ["reference"]


async def test_a_reply_with_its_own_image_is_an_ordinary_request(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        job = await _finished_job(p)
        own = Attachment("https://cdn.example/own.png", "own.png", "image/png", 100)
        await p.dispatcher(reply("make the waves move", "o1", job.result_ref, attachments=(own,)))
        new = (await p.store.recent_jobs("console:u1", limit=5))[0]
        assert (
            new.id != job.id
            and new.retry_of == ""
            and [a.handle for a in new.spec.attachments] == [own.handle]
        )


# -- the edges mutation testing found untested --------------------------------------------------------


async def test_the_image_count_limit_is_inclusive(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(max_images=2)) as p:
        img = Attachment("https://cdn.example/a.png", "a.png", "image/png", 10)
        p.emulator.faults.add("media_never")
        assert await p.dispatcher(gen("from day to night", "i2", attachments=(img, img))) is None
        over = await p.dispatcher(gen("from day to night", "i3", user="u2", attachments=(img, img, img)))
        assert over is not None and over.kind is NoticeKind.ERROR and "2" in over.title
        (job,) = await p.store.recent_jobs("console:u1")
        assert job.trace_id == job.id  # logs follow a job by its id
        assert await p.store.recent_jobs("console:u2") == []


async def test_the_pending_cap_admits_exactly_that_many(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(max_pending_per_user=2)) as p:
        p.emulator.faults.add("media_never")
        assert await p.dispatcher(gen("a slow river at dawn", "p1")) is None
        assert await p.dispatcher(gen("a slow river at noon", "p2")) is None
        third = await p.dispatcher(gen("a slow river at dusk", "p3"))
        assert third is not None and third.kind is NoticeKind.ERROR
        assert len(await p.store.recent_jobs("console:u1")) == 2


async def test_a_user_at_the_daily_budget_is_refused(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(daily_credit_budget=10)) as p:
        job = await _finished_job(p)
        assert job.credit
        spent = await p.store.credits_spent("console:u1", since=0)
        p.dispatcher.settings = DispatchSettings(daily_credit_budget=spent)  # exactly at the budget
        refused = await p.dispatcher(gen("a windmill in a storm", "b2"))
        assert refused is not None and refused.kind is NoticeKind.ERROR
        p.dispatcher.settings = DispatchSettings(daily_credit_budget=spent + 1)
        assert await p.dispatcher(gen("a windmill in a storm", "b3")) is None
        assert len(await p.store.recent_jobs("console:u1")) == 2


async def test_requests_while_shutting_down_are_refused(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        await p.runner.close()
        paused = await p.dispatcher(gen("a lighthouse at dawn", "s1"))
        assert paused is not None and paused.kind is NoticeKind.ERROR
        assert await p.store.recent_jobs("console:u1") == []


async def test_the_users_model_beats_the_chats(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        await p.store.set_chat_defaults("console", "c1", models={TaskType.TEXT_TO_VIDEO: ModelId.FAST})
        await p.store.set_prefs("console:u1", models={TaskType.TEXT_TO_VIDEO: ModelId.PRO})
        await p.dispatcher(gen("a lighthouse at dawn", "m1"))
        assert (await _only_job(p)).spec.model_id is ModelId.PRO
        await p.dispatcher(gen("a lighthouse at dusk", "m2", user="u2"))
        assert (await p.store.recent_jobs("console:u2"))[0].spec.model_id is ModelId.FAST


async def test_an_explicit_image_role_wins_over_the_parsers(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        a = Attachment("https://cdn.example/a.png", "a.png", "image/png", 10, role="last")
        b = Attachment("https://cdn.example/b.png", "b.png", "image/png", 10, role="first")
        await p.dispatcher(gen("from day to night", "r1", attachments=(a, b)))
        job = await _only_job(p)
        assert [(x.handle, x.role) for x in job.spec.attachments] == [(b.handle, "first"), (a.handle, "last")]


async def test_a_stored_language_beats_the_text_and_the_platform(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        await p.store.set_prefs("console:u1", locale="zh")
        await p.dispatcher(gen("a lighthouse at dawn", "l1", locale="en"))
        assert (await _only_job(p)).locale == "zh"


async def test_a_follow_up_over_the_pending_cap_is_refused_with_a_reason(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(max_pending_per_user=1)) as p:
        p.emulator.faults.add("media_never")
        await p.dispatcher(gen("a red kite over hills, 16:9", "c1"))
        job = await _only_job(p)
        await p.wait_for(lambda: _running(p, job.id))
        running = await p.store.get_job(job.id)
        refused = await p.dispatcher(reply("竖屏版", "c2", running.notice_ref))
        assert refused is not None and refused.kind is NoticeKind.ERROR
        assert [j.id for j in await p.store.recent_jobs("console:u1")] == [job.id]
