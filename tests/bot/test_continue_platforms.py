"""Continue ▶ and "继续 …" end to end on each platform (issue 14): the real App behind discord.py on the fake
Discord and lark-oapi on the fake Feishu, IMA played by the emulator. The first frame IMA gets for the
next shot is the last frame of the video the emulator served, pixel for pixel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.model import Job, JobState
from bot.media import last_frame_png
from ima.emulator import Emulator
from ima.models import TaskType
from tests.fakes.feishu_events import card_action_event, text_event

from .discord_app import Rig, custom_ids, open_discord_rig
from .feishu_app import P2P, open_rig, uploaded
from .media_clips import decoded_frames, png_pixels, rgb_rows, sample_mp4


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async with open_discord_rig(tmp_path, monkeypatch) as rig:
        yield rig


def _assert_continues(emu: Emulator, first: Job, shot: Job, prompt: str) -> None:
    assert (shot.state, shot.retry_of, shot.spec.task_type) == (
        JobState.SUCCEEDED,
        first.id,
        TaskType.IMAGE_TO_VIDEO,
    )
    assert (shot.spec.model_id, shot.spec.duration) == (first.spec.model_id, first.spec.duration)
    task = emu.tasks[shot.task_id]
    assert task.task_type == "image_to_video" and prompt in task.prompt
    [url] = task.params["input_images"]
    first_frame = uploaded(emu, url)
    assert first_frame == last_frame_png(sample_mp4())  # the emulator serves sample.mp4 for every task
    assert png_pixels(first_frame)[2] == rgb_rows(decoded_frames(sample_mp4())[-1])


async def test_discord_continue_button_and_continue_reply(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        await fake.send_message("a red kite over green hills, 16:9, 5s", mention_bot=True)
        (first,) = await rig.jobs(app)
        final = rig.message(first.result_ref)
        assert f"imabot:continue:{first.id}" in custom_ids(final)
        click = await fake.click_button(final["id"], f"imabot:continue:{first.id}")
        await fake.wait_until(lambda: click.modal is not None)  # the press asks what happens next
        submit = await fake.submit_modal(click)  # left empty: the same words again
        first, by_button = await rig.jobs(app, 2)
        await fake.send_message("继续，风筝落在屋顶上", reply_to=final["id"])
        first, by_button, by_reply = await rig.jobs(app, 3)

    assert (click.acked_type, submit.acked_type) == (9, 6)
    _assert_continues(emu, first, by_button, "a red kite over green hills")
    _assert_continues(emu, first, by_reply, "风筝落在屋顶上")
    assert "继续" not in emu.tasks[by_reply.task_id].prompt


@pytest.mark.parametrize("via", ["button", "reply"])
async def test_feishu_continue_button_and_continue_reply(tmp_path: Path, via: str) -> None:
    async with open_rig(tmp_path) as rig:
        fake, emu = rig.fake, rig.emulator
        async with rig.app() as app:
            await fake.push_event(
                text_event("a red kite over green hills, 16:9, 5s", chat_type="p2p", chat_id=P2P)
            )
            (first,) = await rig.jobs(app)
            if via == "button":
                press = {"open_chat_id": P2P, "operator": first.origin.user_id}
                await fake.push_event(
                    card_action_event("continue", first.id, open_message_id=first.result_ref, **press)
                )
                # the press answers with a card form asking what happens next; submitted empty
                await fake.wait_until(lambda: bool(rig.replies_to(first.result_ref, "interactive")))
                [form] = rig.replies_to(first.result_ref, "interactive")
                await fake.push_event(
                    card_action_event(
                        "continue", first.id, open_message_id=form.message_id, form_value={}, **press
                    )
                )
                prompt = "a red kite over green hills"
            else:
                reply = "continue: the kite lands on a roof"
                await fake.push_event(
                    text_event(reply, chat_type="p2p", chat_id=P2P, parent_id=first.result_ref)
                )
                prompt = "the kite lands on a roof"
            first, shot = await rig.jobs(app, 2)
        _assert_continues(emu, first, shot, prompt)


# -- storyboards on each platform -------------------------------------------------------------------

BOARD = "竖屏 分镜：1. 小狗在草地上奔跑 2. 小狗跳进河里 3. 小狗甩干身上的水"


async def _assert_board(app, emu: Emulator, jobs: list[Job]) -> str:  # type: ignore[no-untyped-def]
    """Three shots chained by last frames; returns the joined video's URL (after checking its length)."""
    from bot.media import duration_of

    await app.dispatcher.storyboards.wait_idle()
    shots = sorted(jobs, key=lambda j: j.extra["storyboard"]["index"])
    assert [s.state for s in shots] == [JobState.SUCCEEDED] * 3
    assert [emu.tasks[s.task_id].task_type for s in shots] == ["text_to_video"] + ["image_to_video"] * 2
    for shot in shots[1:]:
        [url] = emu.tasks[shot.task_id].params["input_images"]
        assert uploaded(emu, url) == last_frame_png(sample_mp4())
    final = await app.store.get_job(shots[-1].id)
    joined_url = final.extra["storyboard"]["joined_url"]
    joined = uploaded(emu, joined_url)
    assert abs(duration_of(joined) - 3 * duration_of(sample_mp4())) < 1e-3
    return joined_url


async def test_discord_three_shot_storyboard(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        await fake.send_message(BOARD, mention_bot=True)
        jobs = await rig.jobs(app, 3, within=30)
        joined_url = await _assert_board(app, emu, jobs)
    posted = [m for m in rig.bot_messages(fake.channel_id) if joined_url in str(m)]
    assert len(posted) == 1  # the joined video, posted once


async def test_feishu_three_shot_storyboard(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        fake, emu = rig.fake, rig.emulator
        async with rig.app() as app:
            await fake.push_event(text_event(BOARD, chat_type="p2p", chat_id=P2P))
            jobs = await rig.jobs(app, 3, within=30)
            joined_url = await _assert_board(app, emu, jobs)
        assert any(joined_url in str(m.card or m.content) for m in fake.bot_messages("interactive"))


# -- a variation after a restart, and a confirm then cancel ------------------------------------------


async def test_discord_vertical_version_clicked_after_a_restart(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as first_app:
        await fake.send_message("a red kite over green hills, 16:9, 5s", mention_bot=True)
        (first,) = await rig.jobs(first_app)
    final = rig.message(first.result_ref)
    async with rig.app() as second_app:  # a new process on the same store file
        await fake.click_button(final["id"], f"imabot:vary_ar:{first.id}")
        first, vertical = await rig.jobs(second_app, 2)
    assert (vertical.retry_of, vertical.spec.aspect_ratio, vertical.state) == (
        first.id,
        "9:16",
        JobState.SUCCEEDED,
    )
    assert emu.tasks[vertical.task_id].params["aspect_ratio"] == "9:16"
    assert emu.tasks[vertical.task_id].prompt == emu.tasks[first.task_id].prompt


async def test_feishu_longer_version_clicked_after_a_restart(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        fake, emu = rig.fake, rig.emulator
        async with rig.app() as app:
            await fake.push_event(
                text_event("a red kite over green hills, 16:9, 5s", chat_type="p2p", chat_id=P2P)
            )
            (first,) = await rig.jobs(app)
        async with rig.app() as app:  # a new process on the same store file
            await fake.push_event(
                card_action_event(
                    "vary_len",
                    first.id,
                    open_message_id=first.result_ref,
                    open_chat_id=P2P,
                    operator=first.origin.user_id,
                )
            )
            first, longer = await rig.jobs(app, 2)
        assert (longer.retry_of, longer.spec.duration, longer.state) == (first.id, 10, JobState.SUCCEEDED)
        assert str(emu.tasks[longer.task_id].params["duration"]).rstrip("s") == "10"


async def test_feishu_a_big_spend_asks_first_and_a_cancel_creates_nothing(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        fake, emu = rig.fake, rig.emulator
        async with rig.app(jobs={"confirm_above_credits": 20, "daily_credit_budget": 500}) as app:
            ask = text_event(
                "pro 1080p 10s a red kite over green hills at sunset", chat_type="p2p", chat_id=P2P
            )
            await fake.push_event(ask)
            await fake.wait_until(
                lambda: bool(rig.replies_to(ask["event"]["message"]["message_id"], "interactive"))
            )
            (card,) = rig.replies_to(ask["event"]["message"]["message_id"], "interactive")
            values = [
                b.get("value")
                for el in rig.sent_card(card.message_id)["elements"]
                if el["tag"] == "action"
                for b in el["actions"]
            ]
            assert [v["action"] for v in values] == ["generate", "help", "cancel"]
            draft_id = values[0]["job_id"]
            draft = await app.store.get_job(draft_id)
            assert draft is not None and draft.state is JobState.DRAFT
            await fake.push_event(
                card_action_event(
                    "cancel",
                    draft_id,
                    open_message_id=card.message_id,
                    open_chat_id=P2P,
                    operator=draft.origin.user_id,
                )
            )
            (done,) = await rig.jobs(app)
        assert done.state is JobState.CANCELLED and emu.tasks == {}
        assert len(emu.state.uploads) == 0


async def test_discord_a_storyboard_whose_join_died_with_the_process_is_joined_at_the_next_start(
    rig: Rig,
) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        chain = app.dispatcher.storyboards

        def deaf_once_shot_3_starts(job: Job) -> None:
            # As if the process died right after shot 3 succeeded: the chain never hears of it.
            info = job.extra.get("storyboard") or {}
            if info.get("index") == 2 and job.state is not JobState.DRAFT and chain.on_change in listeners:
                listeners.remove(chain.on_change)

        listeners = app.runner.listeners
        listeners.append(deaf_once_shot_3_starts)
        await fake.send_message(BOARD, mention_bot=True)
        jobs = await rig.jobs(app, 3, within=30)
        await chain.wait_idle()
        last = max(jobs, key=lambda j: j.extra["storyboard"]["index"])
        assert last.state is JobState.SUCCEEDED and "joined_url" not in last.extra["storyboard"]
    async with rig.app() as app:  # the next start owes the joined video
        await app.dispatcher.storyboards.wait_idle()
        joined_url = await _assert_board(app, emu, jobs)
    async with rig.app() as app:  # and a start after that owes nothing
        await app.dispatcher.storyboards.wait_idle()
    posted = [m for m in rig.bot_messages(fake.channel_id) if joined_url in str(m)]
    assert len(posted) == 1  # the joined video, posted once across three starts
    assert len(emu.tasks) == 3
