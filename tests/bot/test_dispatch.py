"""Intents through the real dispatcher into the real runner: dedup, preferences, refusals, buttons, commands."""

from __future__ import annotations

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
)
from bot.dispatch import DispatchSettings
from bot.jobs.model import JobState
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
        assert bad is not None and bad.kind is NoticeKind.ERROR
        await p.dispatcher(gen("a slow river", "c1"))
        job = await _only_job(p)
        assert job.spec.model_id is ModelId.PRO and job.spec.duration == 10
        await p.wait_for(lambda: _running(p, job.id))
        cancelled = await p.dispatcher(CommandIntent(origin=ORIGIN, command=Command.CANCEL, locale="en"))
        assert cancelled is not None and job.id in cancelled.title
        done = await p.wait_finished(job.id)
        assert done.state is JobState.CANCELLED


async def _running(p, job_id: str):  # type: ignore[no-untyped-def]
    job = await p.store.get_job(job_id)
    return job is not None and job.state is JobState.RUNNING
