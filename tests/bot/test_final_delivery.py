"""How a final reaches the user when the platform does not simply say yes: no answer at all, a message
deleted under the bot, a refused edit. The real App on the fake Feishu (finals edit the job's card in
place) and the fake Discord (finals are new messages), the emulator and one virtual clock.

Each test parks the job at its first wait once it runs (the virtual clock's hold), puts the fault in,
and lets it go on: the fault meets exactly the messages the test means.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.app import App
from bot.jobs.model import Job, JobState
from bot.jobs.outbox import OutboxSettings
from ima.emulator import Emulator, EmulatorConfig
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event
from tests.waiting import until_job_change

from .discord_app import Rig, embed
from .discord_app import VirtualClock as DiscordClock
from .feishu_app import TEXTS, USER, FeishuRig, message_id, open_rig, title

TOKEN = "tenant_access_token"
NO_TOKEN = {"code": 0, "msg": "ok"}  # a 200 without a token: the adapter gets no usable answer


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


async def feishu_job(rig: FeishuRig, app: App, check: Callable[[Job], bool], within: float = 20) -> Job:
    async def found() -> Job | None:
        assert app.store is not None
        jobs = await app.store.recent_jobs(f"feishu:{USER}", limit=5)
        return next((j for j in jobs if check(j)), None)

    return await rig.until(app, found, within)


async def parked_running(rig: FeishuRig, app: App, prompt: str) -> tuple[Job, str]:
    """Pushes a request and returns (its job, the user's message id) once the job runs, parked."""
    app.runner.outbox.settings = OutboxSettings(first_delay=30, max_delay=60, give_up_after=1e9)
    event = rig.fake.register(text_event(prompt, mention_bot=BOT_OPEN_ID))
    rig.clock.hold()
    await rig.fake.push_event(event)
    job = await feishu_job(rig, app, lambda j: j.state is JobState.RUNNING and bool(j.notice_ref))
    await rig.clock.wait_parked(1)
    return job, message_id(event)


def cards(rig: FeishuRig, origin_msg: str) -> list[str]:
    """Ids of the cards the bot posted in reply to the user's message, deleted ones included."""
    return [m.message_id for m in rig.replies_to(origin_msg, "interactive")]


def success_cards(rig: FeishuRig, origin_msg: str) -> list[str]:
    return [
        m.message_id
        for m in rig.replies_to(origin_msg, "interactive")
        if not m.deleted and title(m.card) == TEXTS("success.title", "en")
    ]


def platform_errors(app: App, status: str) -> float:
    for line in app.metrics.render().decode().splitlines():
        if line.startswith(f'imabot_platform_errors_total{{platform="feishu",status="{status}"}}'):
            return float(line.split()[-1])
    return 0.0


def no_answers(rig: FeishuRig) -> None:
    """Every Feishu call from now on gets no usable answer: the token expired and cannot be fetched."""
    rig.fake.invalidate_tokens()
    rig.fake.fail_next("POST", TOKEN, status=200, body=NO_TOKEN, times=1_000_000)


async def test_a_final_that_met_no_answer_is_tried_again_on_the_same_card(rig: FeishuRig) -> None:
    """No answer is not a refusal: the card may still take the final, so it is never posted anew."""
    async with rig.app() as app:
        running, origin_msg = await parked_running(rig, app, "a heron over a lake")
        no_answers(rig)
        rig.clock.release()
        waiting = await feishu_job(rig, app, lambda j: j.extra.get("outbox", {}).get("attempts", 0) >= 1)
        assert waiting.state is JobState.SUCCEEDED and waiting.result_ref == ""
        assert waiting.extra.get("final_edit_tried") and not waiting.extra.get("final_as_post")
        assert platform_errors(app, "none") >= 1  # counted, as "no status"
        rig.fake.clear_faults()
        done = await feishu_job(rig, app, lambda j: bool(j.result_ref))
    assert done.result_ref == done.notice_ref == running.notice_ref  # the card the user watched
    assert cards(rig, origin_msg) == [running.notice_ref]
    shown = [title(card) for card in rig.patches(running.notice_ref)]
    assert TEXTS("progress.creating", "en", model="Ima Sevio 1.0-Fast") in shown
    assert TEXTS("progress.preparing", "en") not in shown  # a text prompt has no images to upload
    assert success_cards(rig, origin_msg) == [running.notice_ref]
    assert not done.extra.get("final_as_post")


async def test_a_card_deleted_while_its_final_waits_gets_the_final_as_one_new_reply(rig: FeishuRig) -> None:
    async with rig.app() as app:
        running, origin_msg = await parked_running(rig, app, "a heron over a lake")
        no_answers(rig)
        rig.clock.release()
        await feishu_job(rig, app, lambda j: j.extra.get("outbox", {}).get("attempts", 0) >= 1)
        rig.fake.delete(running.notice_ref)  # the user deleted the card meanwhile
        rig.fake.clear_faults()
        done = await feishu_job(rig, app, lambda j: bool(j.result_ref))
        assert platform_errors(app, "gone") >= 1
    new = [c for c in cards(rig, origin_msg) if c != running.notice_ref]
    assert success_cards(rig, origin_msg) == new == [done.result_ref]
    assert done.notice_ref == done.result_ref and done.extra.get("final_as_post")


async def test_a_card_deleted_mid_job_is_replaced_once_and_the_final_lands_there(rig: FeishuRig) -> None:
    async with rig.app() as app:
        running, origin_msg = await parked_running(rig, app, "a heron over a lake")
        rig.fake.delete(running.notice_ref)  # deleted before the next progress update
        rig.clock.release()
        done = await feishu_job(rig, app, lambda j: bool(j.result_ref))
        assert platform_errors(app, "gone") == 1  # counted once: the replacement took over
    replacement = [c for c in cards(rig, origin_msg) if c != running.notice_ref]
    # One new card took over: later progress and the final went there, not into a card per update.
    assert replacement == [done.notice_ref] == [done.result_ref] == success_cards(rig, origin_msg)
    assert len(rig.patches(done.notice_ref)) >= 1 and not done.extra.get("final_as_post")


async def test_a_refused_final_edit_after_the_first_is_only_retried(rig: FeishuRig) -> None:
    """The first in-place edit met no answer, the second a refusal: the first may have shown the final
    (its answer lost), so the card is tried again, never doubled by a post."""
    refused = {"code": 230002, "msg": "The bot is not in the chat."}
    async with rig.app() as app:
        running, origin_msg = await parked_running(rig, app, "a heron over a lake")
        no_answers(rig)
        rig.clock.release()
        await feishu_job(rig, app, lambda j: j.extra.get("outbox", {}).get("attempts", 0) >= 1)
        rig.fake.clear_faults()
        rig.fake.fail_next("PATCH", "/im/v1/messages/", status=400, body=refused, times=1_000_000)
        await feishu_job(rig, app, lambda j: j.extra.get("outbox", {}).get("attempts", 0) >= 2)
        rig.fake.clear_faults()
        done = await feishu_job(rig, app, lambda j: bool(j.result_ref))
    assert cards(rig, origin_msg) == [running.notice_ref] == [done.result_ref]
    assert not done.extra.get("final_as_post")


async def test_a_post_refused_with_403_is_not_repeated_within_an_attempt(rig: FeishuRig) -> None:
    """A 403 counts towards a platform's ban limits: one request per attempt, then the outbox waits."""
    refused = {"code": 230002, "msg": "The bot is not in the chat."}
    forbidden = {"code": 99991672, "msg": "Access denied."}
    async with rig.app() as app:
        running, origin_msg = await parked_running(rig, app, "a heron over a lake")
        rig.fake.fail_next("PATCH", "/im/v1/messages/", status=400, body=refused, times=1_000_000)
        rig.fake.fail_next("POST", "/reply$", status=403, body=forbidden, times=1_000_000)
        before = len(rig.fake.calls_to("POST", "/reply$"))
        rig.clock.release()
        waiting = await feishu_job(rig, app, lambda j: j.extra.get("outbox", {}).get("attempts", 0) >= 1)
        assert waiting.extra.get("final_as_post")  # the first edit was refused: the final is posted
        rig.fake.clear_faults()
        done = await feishu_job(rig, app, lambda j: bool(j.result_ref))
        errors = {status: platform_errors(app, status) for status in ("400", "403")}
    assert success_cards(rig, origin_msg) == [done.result_ref] != [running.notice_ref]
    forbidden_posts = [c for c in rig.fake.calls_to("POST", "/reply$")[before:] if c.status == 403]
    # One refused post per failed attempt (retrying it within the attempt would make three).
    assert len(forbidden_posts) == done.extra["outbox"]["attempts"] >= 1
    # Every refusal is counted by its status: each refused edit (progress and final) and each post.
    refused_edits = [c for c in rig.fake.calls_to("PATCH", "/im/v1/messages/") if c.status == 400]
    assert errors == {"400": len(refused_edits), "403": len(forbidden_posts)} and refused_edits


async def test_log_lines_name_the_job_and_the_part_that_wrote_them(
    rig: FeishuRig, caplog: pytest.LogCaptureFixture
) -> None:
    """Operators filter logs by logger and job: a refused status check is the runner's, a refused edit
    the delivery's, and both name the job."""
    refused = {"code": 230002, "msg": "The bot is not in the chat."}
    rig.emulator.faults.add("detail_code", code=4008, times=1)
    with caplog.at_level(logging.INFO):
        async with rig.app() as app:
            running, _origin = await parked_running(rig, app, "a heron over a lake")
            rig.fake.fail_next("PATCH", "/im/v1/messages/", status=400, body=refused)
            rig.clock.release()
            await feishu_job(rig, app, lambda j: bool(j.result_ref))
    said = {(r.name, r.levelname) for r in caplog.records if f"job={running.id}" in r.getMessage()}
    assert ("imabot.runner", "WARNING") in said  # the status check refused with 4008
    assert ("imabot.delivery", "WARNING") in said  # the refused edit
    assert any("4008" in r.getMessage() for r in caplog.records if r.name == "imabot.runner")


# -- Discord: finals are new messages; the progress message is closed after ------------------------


@pytest.fixture
async def discord(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    clock = DiscordClock(time.time())
    async with FakeDiscord(clock=clock) as fake, Emulator(EmulatorConfig(), clock=clock) as emu:
        fake.install(monkeypatch)
        yield Rig(fake, emu, clock, tmp_path / "jobs.sqlite3")
        assert fake.errors == []


async def discord_job(rig: Rig, app: App, check: Callable[[Job], bool], within: float = 20) -> Job:
    async def found() -> Job | None:
        assert app.store is not None
        jobs = await app.store.recent_jobs(rig.user_key, limit=5)
        return next((j for j in jobs if check(j)), None)

    return await until_job_change(app.runner.listeners, found, within)


async def test_a_deleted_discord_progress_message_is_replaced_and_closed_after_the_final(
    discord: Rig,
) -> None:
    rig, fake = discord, discord.fake
    async with rig.app() as app:
        rig.clock.hold()
        await fake.send_message("a fox running through snow", mention_bot=True)
        running = await discord_job(rig, app, lambda j: j.state is JobState.RUNNING and bool(j.notice_ref))
        await rig.clock.wait_parked(1)
        fake.delete_message(running.notice_ref.split(":")[1])
        rig.clock.release()
        done = await discord_job(rig, app, lambda j: bool(j.result_ref))
    assert done.notice_ref != running.notice_ref
    progress, final = rig.bot_messages(fake.channel_id)  # the deleted one is gone: one each
    assert done.notice_ref.endswith(progress["id"]) and done.result_ref.endswith(final["id"])
    assert embed(final)["title"] == TEXTS("success.title", "en")
    # The replacement does not stay on "Generating": it was edited to its closed state after the final.
    closed = rig.edits(progress["id"])[-1].body["embeds"][0]["title"]
    assert closed == embed(progress)["title"] != TEXTS("progress.title", "en", model="Ima Sevio 1.0-Fast")
