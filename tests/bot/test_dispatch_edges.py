"""The dispatcher at its edges: its own defaults are the config's, and what the mutation survivors showed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot.config import DefaultsSettings, JobsSettings
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
from ima.models import ModelId

from .harness import pipeline

ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1", message_id="m1")


def test_the_dispatchers_defaults_are_the_configs_defaults() -> None:
    # The console, the sandbox and every test build a Dispatcher without settings: it must then behave as
    # a bot started from an empty config does.
    ours, jobs, defaults = DispatchSettings(), JobsSettings(), DefaultsSettings()
    assert ours.default_model == ModelId(defaults.model)
    assert (ours.default_duration, ours.default_aspect_ratio, ours.default_resolution) == (
        defaults.duration,
        defaults.aspect_ratio,
        defaults.resolution,
    )
    assert ours.default_locale == defaults.locale
    assert ours.max_images == jobs.max_images == 9
    assert ours.max_image_bytes == int(jobs.max_image_mb * 2**20)
    assert ours.max_pending_per_user == jobs.max_pending_per_user
    assert ours.event_ttl == jobs.dedup_hours * 3600
    assert ours.daily_credit_budget == jobs.daily_credit_budget
    assert ours.max_storyboard_shots == jobs.max_storyboard_shots
    assert ours.confirm_above_credits == jobs.confirm_above_credits


def test_settings_cannot_change_under_a_running_dispatcher() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DispatchSettings().max_images = 100  # type: ignore[misc]


async def test_a_redelivered_command_or_click_is_answered_once_and_counted(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        jobs = CommandIntent(origin=ORIGIN, command=Command.JOBS, locale="en", event_keys=("cmd:e1",))
        assert await p.dispatcher(jobs) is not None
        assert p.dispatcher.deduplicated == 0
        assert await p.dispatcher(jobs) is None
        assert p.dispatcher.deduplicated == 1
        click = ActionIntent(ORIGIN, "no-such-job", Action.RETRY, event_keys=("click:e1",))
        first = await p.dispatcher(click)
        assert first is not None and p.dispatcher.deduplicated == 1
        assert await p.dispatcher(click) is None
        assert p.dispatcher.deduplicated == 2
        # An intent without keys (the console) is never taken for a redelivery.
        plain = CommandIntent(origin=ORIGIN, command=Command.HELP, locale="en")
        assert await p.dispatcher(plain) is not None and await p.dispatcher(plain) is not None
        assert p.dispatcher.deduplicated == 2
        # A redelivered request is one job and counts too.
        ask = GenerationIntent(origin=ORIGIN, text="a paper boat on a rainy street", event_keys=("gen:e1",))
        p.emulator.faults.add("media_never")
        assert await p.dispatcher(ask) is None and await p.dispatcher(ask) is None
        assert p.dispatcher.deduplicated == 3
        assert len(await p.store.recent_jobs("console:u1")) == 1


def _ask(text: str, key: str, *attachments: Attachment) -> GenerationIntent:
    return GenerationIntent(origin=ORIGIN, text=text, attachments=attachments, event_keys=(key,), locale="en")


async def test_an_image_exactly_at_the_size_limit_is_taken_and_one_byte_more_is_not(tmp_path: Path) -> None:
    limit = 1000
    async with pipeline(tmp_path, dispatch=DispatchSettings(max_image_bytes=limit)) as p:
        p.emulator.faults.add("media_never")
        over = await p.dispatcher(
            _ask(
                "make the waves move",
                "s1",
                Attachment("https://cdn.example/a.png", "", "image/png", limit + 1),
            )
        )
        # An attachment the platform gave no name is still named in the answer.
        assert over is not None and over.kind is NoticeKind.ERROR and "“image”" in over.title
        assert await p.store.recent_jobs("console:u1") == []
        at = Attachment("https://cdn.example/a.png", "sea.png", "image/png", limit)
        assert await p.dispatcher(_ask("make the waves move", "s2", at)) is None
        assert len(await p.store.recent_jobs("console:u1")) == 1


async def test_a_nameless_attachment_that_is_not_an_image_is_named_image(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        refused = await p.dispatcher(
            _ask("animate this", "n1", Attachment("https://cdn.example/x", "", "application/pdf", 10))
        )
        assert refused is not None and refused.title == "“image” is not an image. Send JPG, PNG, WebP or GIF."


async def test_listeners_see_a_new_job_queued_and_a_retry_queued(tmp_path: Path) -> None:
    # The app's listeners (metrics, the /jobs view, the wake-up of the console) learn of a job when the
    # dispatcher records it, not only at its first state change.
    async with pipeline(tmp_path) as p:
        seen: list[tuple[str, JobState]] = []
        p.runner.listeners.append(lambda job: seen.append((job.id, job.state)))
        p.emulator.faults.add("media_never")
        assert await p.dispatcher(_ask("a paper boat on a rainy street", "l1")) is None
        (job,) = await p.store.recent_jobs("console:u1")
        assert seen[0] == (job.id, JobState.QUEUED)
        assert await p.dispatcher(ActionIntent(ORIGIN, job.id, Action.RETRY, event_keys=("l2",))) is None
        again = next(j for j in await p.store.recent_jobs("console:u1") if j.retry_of == job.id)
        assert (again.id, JobState.QUEUED) in seen
        assert again.trace_id == again.id  # a retry's log lines follow its own id


async def test_clicks_on_a_missing_or_finished_job_say_so(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        gone = await p.dispatcher(ActionIntent(ORIGIN, "no-such-job", Action.RETRY, locale="en"))
        assert gone is not None and gone.title == "That job no longer exists."
        await p.dispatcher(_ask("a red kite over the hills", "f1"))
        (job,) = await p.store.recent_jobs("console:u1")
        await p.wait_finished(job.id)
        late = await p.dispatcher(ActionIntent(ORIGIN, job.id, Action.CANCEL, locale="en"))
        assert late is not None and late.title == "That job has already finished."


async def test_a_retry_click_at_the_pending_cap_is_refused_and_below_it_makes_a_job(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(max_pending_per_user=1)) as p:
        p.emulator.faults.add("media_never")
        await p.dispatcher(_ask("a red kite over the hills", "r1"))
        (job,) = await p.store.recent_jobs("console:u1")
        refused = await p.dispatcher(ActionIntent(ORIGIN, job.id, Action.RETRY, event_keys=("r2",)))
        assert refused is not None and refused.kind is NoticeKind.ERROR
        assert len(await p.store.recent_jobs("console:u1")) == 1
        p.dispatcher.settings = DispatchSettings(max_pending_per_user=2)
        assert await p.dispatcher(ActionIntent(ORIGIN, job.id, Action.RETRY, event_keys=("r3",))) is None
        assert [j.retry_of for j in await p.store.recent_jobs("console:u1")] == [job.id, ""]


async def test_the_other_model_drops_every_note_about_how_the_model_was_read(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(max_pending_per_user=10)) as p:
        p.emulator.faults.add("media_never")
        unknown = GenerationIntent(
            origin=ORIGIN, text="a red kite over the hills --model zeta", event_keys=("m1",), locale="en"
        )
        option = GenerationIntent(
            origin=ORIGIN,
            text="a red kite over the hills, pro",
            options={"model": "fast"},
            event_keys=("m2",),
            locale="en",
        )
        mapped = GenerationIntent(
            origin=ORIGIN, text="a red kite over the hills using kling 3", event_keys=("m3",), locale="en"
        )
        for n, intent in enumerate((unknown, option, mapped)):
            await p.dispatcher(intent)
            job = (await p.store.recent_jobs("console:u1"))[0]
            read = {key for key, _ in job.spec.notes}
            assert read & {"note.model_unknown", "note.option_model", "note.model_mapped"}, read
            click = ActionIntent(ORIGIN, job.id, Action.OTHER_MODEL, event_keys=(f"o{n}",))
            assert await p.dispatcher(click) is None
            again = (await p.store.recent_jobs("console:u1"))[0]
            assert again.retry_of == job.id and again.spec.model_id is job.spec.model_id.other
            kept = {key for key, _ in again.spec.notes}
            assert not kept & {"note.model_unknown", "note.option_model", "note.model_mapped"}, kept
            assert not any(key.startswith("intake.echo") for key in kept), kept


async def test_what_users_typed_is_cleaned_before_it_is_stored(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_never")
        await p.dispatcher(_ask("a paper\x00 boat\x07 on a rainy street\ud800", "c1"))
        (job,) = await p.store.recent_jobs("console:u1")
        assert "paper" in job.spec.prompt and "rainy street" in job.spec.prompt
        assert not any(ch in job.spec.prompt for ch in "\x00\x07\ud800")


async def test_numbered_shots_start_a_storyboard(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_never")
        three = "竖屏 分镜：1. 小狗在草地上奔跑 2. 小狗跳进河里 3. 小狗甩干身上的水"
        assert await p.dispatcher(_ask(three, "sb1")) is None
        await p.dispatcher.storyboards.wait_idle()
        jobs = await p.store.recent_jobs("console:u1", limit=10)
        assert jobs and all(j.spec.aspect_ratio == "9:16" for j in jobs)


async def test_a_typed_request_over_the_confirm_bar_waits_for_generate(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(confirm_above_credits=1)) as p:
        asked = await p.dispatcher(_ask("a red kite over the hills, pro, 1080p, 10s", "cf1"))
        assert asked is not None and any(b.action is Action.GENERATE for b in asked.buttons)
        (held,) = await p.store.recent_jobs("console:u1")
        assert held.state is JobState.DRAFT and p.emulator.tasks == {}


async def test_the_vertical_version_button_flips_the_aspect_ratio(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        await p.dispatcher(_ask("a red kite over the hills, 16:9, 5s", "v1"))
        (job,) = await p.store.recent_jobs("console:u1")
        await p.wait_finished(job.id)
        assert (
            await p.dispatcher(ActionIntent(ORIGIN, job.id, Action.VARY_ASPECT, event_keys=("v2",))) is None
        )
        again = (await p.store.recent_jobs("console:u1"))[0]
        assert again.id != job.id and (job.spec.aspect_ratio, again.spec.aspect_ratio) == ("16:9", "9:16")


async def test_a_bot_that_lost_its_store_takes_no_new_request(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.dispatcher.refuse_new = "store lost"
        refused = await p.dispatcher(_ask("a red kite over the hills", "x1"))
        assert refused is not None and refused.title.startswith("The bot has lost its job records")
        assert await p.store.recent_jobs("console:u1") == []
