"""End to end: the real App (dispatcher, runner, store) behind the real discord.py on the fake Discord, with
IMA played by the emulator and one virtual clock shared by bot, emulator and fake (interaction-token
lifetime included), so a 20-minute job takes milliseconds."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from bot.adapters.discord import DiscordStartupError
from bot.jobs.model import Job, JobState
from bot.jobs.store import JobStore
from bot.jobs.texts import Texts
from ima.emulator import Emulator, EmuTask
from ima.models import ModelId, TaskType

from .discord_app import JPEG, PNG, Rig, buttons, custom_ids, embed, mentions, open_discord_rig

TEXTS = Texts.load()
FAST, PRO = "Ima Sevio 1.0-Fast", "Ima Sevio 1.0"
PROGRESS_TITLE = {m: TEXTS("progress.title", "en", model=m) for m in (FAST, PRO)}


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async with open_discord_rig(tmp_path, monkeypatch) as rig:
        yield rig


def _only_task(emu: Emulator) -> EmuTask:
    (task,) = emu.tasks.values()
    return task


def _uploaded(emu: Emulator, url: str) -> bytes | None:
    """The bytes the bot PUT to the emulator's upload host for a CDN url it handed to a create."""
    assert url.startswith(f"{emu.upload_base_url}/cdn/"), url
    return emu.state.uploads[url.split("/cdn/", 1)[1]].data


def _posted(rig: Rig, job_id: str) -> list[dict]:
    """The first embed of every message the bot posted (POST, bot token) for a job, in order."""
    footer = TEXTS("discord.footer_job", "en", job_id=job_id)
    posts = rig.fake.requests_to("POST", r"^/channels/\d+/messages$")
    return [
        e for p in posts for e in p.body.get("embeds", [])[:1] if e.get("footer", {}).get("text") == footer
    ]


def _edited_titles(rig: Rig, message_id: str) -> list[str]:
    return [e.body["embeds"][0]["title"] for e in rig.edits(message_id) if e.status == 200]


def _percents(rig: Rig, message_id: str) -> list[int]:
    out = []
    for e in rig.edits(message_id):
        found = re.search(r"(\d+)% ", e.body["embeds"][0].get("description") or "")
        if e.status == 200 and found:
            out.append(int(found.group(1)))
    return out


def _assert_success_message(rig: Rig, message: dict, job: Job, *, other: str) -> None:
    """The result as the user sees it: a mention, the video link, a cover card and the job's buttons."""
    assert mentions(message) == [rig.fake.user_id] and job.result_url in message["content"].splitlines()
    card = embed(message)
    assert card["title"] == TEXTS("success.title", "en") and card["url"] == job.result_url
    assert job.task_id in job.cover_url and card["image"]["url"] == job.cover_url  # IMA's cover
    # issue 14: Continue ▶ and the one-tap variations come with every result.
    assert custom_ids(message) == [
        f"imabot:{a}:{job.id}" for a in ("continue", "retry", "other_model", "vary_ar", "vary_len")
    ]
    link, _continue, retry, switch, *_variations = buttons(message)
    assert (link["style"], link["url"]) == (5, job.result_url)
    assert retry["label"] == TEXTS("shots.button.again", "en")
    assert switch["label"] == TEXTS("button.other_model", "en", model=other)


# -- 1. /video with an image ---------------------------------------------------------------------


async def test_slash_video_with_an_image_from_defer_to_final_mention(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    acked_when_stored: list[int | None] = []
    async with rig.app() as app:
        image = fake.add_cdn_file("cat.png", PNG)
        app.runner.listeners.append(
            lambda job: acked_when_stored.append(next(iter(fake.interactions.values())).acked_type)
        )
        before = len(fake.requests)
        inter = await fake.slash_command("video", {"prompt": "the cat starts surfing", "image": image})
        (job,) = await rig.jobs(app)

    # Deferred (ephemeral "thinking") before the job was even recorded, as the bot's first request.
    assert acked_when_stored[0] == 5
    first = fake.requests[before]
    assert first.path == f"/interactions/{inter.id}/{inter.token}/callback" and first.status == 200
    assert inter.acked_type == 5 and inter.acked_at is not None
    assert inter.acked_at - inter.created < fake.ack_deadline
    assert fake.messages[inter.original_id or ""]["content"] == TEXTS("discord.ack", "en")

    # The image went Discord CDN → bot → IMA upload host → the create.
    assert fake.cdn_log.count(("GET", f"{image['id']}/cat.png")) == 1
    task = _only_task(emu)
    assert (task.task_type, task.model_id, task.prompt) == ("image_to_video", "ima-pro-fast", job.spec.prompt)
    assert list(task.params["input_images"]) == list(job.input_urls)
    assert [_uploaded(emu, u) for u in job.input_urls] == [PNG]

    # Two messages in the channel: the pre-notice that became the progress message, and the result.
    progress, final = rig.bot_messages(fake.channel_id)
    assert job.notice_ref == f"{fake.channel_id}:{progress['id']}"
    assert job.result_ref == f"{fake.channel_id}:{final['id']}"
    pre, result = _posted(rig, job.id)  # what the user saw first, and the result card
    assert pre["title"] == TEXTS("prenotice.title", "en", model=FAST)
    assert result == embed(final)
    assert TEXTS("prenotice.credits", "en", credit=task.points) in pre["description"].splitlines()

    # Every update edited that one message: upload, create, at least two progress ticks, then "done".
    titles = _edited_titles(rig, progress["id"])
    assert titles[:2] == [TEXTS("progress.preparing", "en"), TEXTS("progress.creating", "en", model=FAST)]
    assert titles.count(PROGRESS_TITLE[FAST]) >= 2
    assert titles[-1].startswith("✅") and progress["components"] == []  # no Cancel once done
    percents = _percents(rig, progress["id"])
    assert percents == sorted(percents) and percents[-1] > percents[0]
    assert len(fake.requests_to("PATCH", r"^/channels/")) == len(rig.edits(progress["id"]))

    assert job.state is JobState.SUCCEEDED and task.id in job.result_url
    _assert_success_message(rig, final, job, other=PRO)
    posted = fake.requests_to("POST", r"^/channels/\d+/messages$")[-1].body
    assert posted["allowed_mentions"]["users"] == [int(fake.user_id)]  # the mention really pings


# -- 2. a DM with first and last frame -----------------------------------------------------------


async def test_dm_with_two_images_becomes_a_first_last_frame_task(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        day, night = fake.add_cdn_file("day.png", PNG), fake.add_cdn_file("night.jpg", JPEG, "image/jpeg")
        msg = await fake.send_message("the street turns from day to night", dm=True, attachments=[day, night])
        (job,) = await rig.jobs(app)

    task = _only_task(emu)
    assert task.task_type == job.spec.task_type.value == TaskType.FIRST_LAST_FRAME_TO_VIDEO.value
    assert [_uploaded(emu, u) for u in task.params["input_images"]] == [PNG, JPEG]  # first, then last
    dm = fake.dm_channel_id(fake.user_id)
    progress, final = rig.bot_messages(dm)
    assert progress["message_reference"]["message_id"] == msg["id"]  # a reply to the user's DM
    pre, _ = _posted(rig, job.id)
    roles = " + ".join(TEXTS(f"role.{r}", "en") for r in ("first", "last"))
    assert TEXTS("prenotice.images", "en", roles=roles) in pre["description"].splitlines()
    _assert_success_message(rig, final, job, other=PRO)
    assert rig.bot_messages(fake.channel_id) == []


# -- 3. @-mention in a channel; chatter ignored ---------------------------------------------------


async def test_a_mention_in_a_channel_is_a_job_and_plain_chatter_is_not(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        chatter = await fake.send_message("has anyone tried making videos with a bot?")
        ask = await fake.send_message("a fox running through snow, 9:16", mention_bot=True)
        (job,) = await rig.jobs(app)

    assert job.origin.message_id == ask["id"] and job.origin.chat_id == fake.channel_id
    task = _only_task(emu)
    assert task.task_type == "text_to_video" and task.params["aspect_ratio"] == "9:16"
    assert "fox running through snow" in task.prompt and f"<@{fake.bot_id}>" not in task.prompt
    progress, final = rig.bot_messages(fake.channel_id)
    assert {progress["message_reference"]["message_id"], final["message_reference"]["message_id"]} == {
        ask["id"]
    }
    replied_to = {(m.get("message_reference") or {}).get("message_id") for m in fake.messages.values()}
    assert chatter["id"] not in replied_to
    _assert_success_message(rig, final, job, other=PRO)


# -- 4. a job that outlives the interaction token -------------------------------------------------


async def test_a_twenty_minute_job_outlives_the_interaction_token(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    emu.faults.add("task_seconds", seconds=20 * 60)  # Discord's token lives 15 minutes (fake clock = ours)
    async with rig.app() as app:
        inter = await fake.slash_command(
            "video", {"prompt": "a slow sunrise over the sea", "model": "ima-pro"}
        )
        (job,) = await rig.jobs(app, within=30)

    assert job.state is JobState.SUCCEEDED and job.finished_at - job.started_at >= 20 * 60
    assert _only_task(emu).model_id == "ima-pro"
    progress, final = rig.bot_messages(fake.channel_id)
    elapsed = [
        int(m.group(1))
        for e in rig.edits(progress["id"])
        if (m := re.search(r"Elapsed (\d+)m", e.body["embeds"][0].get("description") or ""))
    ]
    assert max(elapsed) >= 16  # progress kept arriving after the token died
    _assert_success_message(rig, final, job, other=FAST)
    # No request of the bot failed: nothing tried the dead token (only the ack, at once, used it).
    assert [r for r in fake.requests if r.status >= 400] == []
    webhook = [r.path for r in fake.requests if r.path.startswith("/webhooks/")]
    assert webhook == [f"/webhooks/{fake.app_id}/{inter.token}/messages/@original"]
    async with aiohttp.ClientSession() as s:  # and the token really is dead now
        url = f"{fake.base_url}/api/v10/webhooks/{fake.app_id}/{inter.token}/messages/@original"
        async with s.patch(url, json={"content": "late"}) as resp:
            assert (resp.status, (await resp.json())["code"]) == (401, 50027)


# -- 5. a 429 on a progress edit ------------------------------------------------------------------


async def test_a_429_with_via_on_a_progress_edit_is_waited_out(rig: Rig) -> None:
    fake, clock = rig.fake, rig.clock
    async with rig.app() as app:
        clock.hold()  # the job parks between two polls, right after its first progress edit
        await fake.send_message("a paper plane over a city", mention_bot=True)
        await clock.wait_parked()
        (progress,) = rig.bot_messages(fake.channel_id)
        fake.rate_limit_next("PATCH", rf"^/channels/\d+/messages/{progress['id']}$", retry_after=0.05)
        clock.release()
        (job,) = await rig.jobs(app)

    statuses = [e.status for e in rig.edits(progress["id"])]
    limited = statuses.index(429)
    assert statuses.count(429) == 1 and statuses[limited + 1] == 200
    edits = rig.edits(progress["id"])
    assert edits[limited].body == edits[limited + 1].body  # the same edit, retried by discord.py
    assert edits[limited].body["embeds"][0]["title"] == PROGRESS_TITLE[FAST]
    assert job.state is JobState.SUCCEEDED
    (_, final) = rig.bot_messages(fake.channel_id)
    _assert_success_message(rig, final, job, other=PRO)


# -- 6. a button clicked after a restart ----------------------------------------------------------


async def test_other_model_clicked_after_a_restart_runs_a_new_job(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    image = fake.add_cdn_file("cat.png", PNG)
    async with rig.app() as first_app:
        await fake.slash_command("video", {"prompt": "the cat starts surfing", "image": image})
        (first,) = await rig.jobs(first_app)
    old_final = rig.message(first.result_ref)

    async with rig.app() as second_app:  # a new process on the same store file: nothing in memory
        click = await fake.click_button(old_final["id"], f"imabot:other_model:{first.id}")
        done = await rig.jobs(second_app, 2)

    assert len(fake.identifies) == 2 and click.acked_type == 6  # a silent deferred update
    assert fake.requests_to("POST", f"/webhooks/.*/{click.token}$") == []  # nothing to answer
    again = done[1]
    assert (again.retry_of, again.spec.model_id, again.state) == (first.id, ModelId.PRO, JobState.SUCCEEDED)
    assert [t.model_id for t in emu.tasks.values()] == ["ima-pro-fast", "ima-pro"]
    old_task, new_task = emu.tasks.values()
    assert new_task.task_type == "image_to_video" and new_task.prompt == old_task.prompt
    # The image IMA already holds is reused: no second download from Discord, no second upload.
    assert new_task.params["input_images"] == old_task.params["input_images"]
    assert fake.cdn_log.count(("GET", f"{image['id']}/cat.png")) == 1 and len(emu.state.uploads) == 1
    messages = rig.bot_messages(fake.channel_id)
    assert len(messages) == 4  # progress + result, twice
    assert [e["title"] for e in _posted(rig, again.id)] == [
        TEXTS("prenotice.title", "en", model=PRO),
        TEXTS("success.title", "en"),
    ]
    _assert_success_message(rig, rig.message(again.result_ref), again, other=FAST)


# -- 7. the gateway drops mid-job -----------------------------------------------------------------


async def test_a_gateway_drop_mid_job_resumes_and_the_job_finishes_once(rig: Rig) -> None:
    fake, clock = rig.fake, rig.clock
    dm = fake.dm_channel_id(fake.user_id)
    async with rig.app() as app:
        clock.hold()
        await fake.send_message("a lighthouse in a storm", dm=True)
        await clock.wait_parked()  # the job is running on IMA
        fake.resume_gate = asyncio.Event()  # the RESUME waits until the job went on without the socket
        await fake.drop_gateway(4000)
        await fake.wait_until(lambda: 6 in fake.gateway_ops)  # the bot asked to RESUME
        clock.release()
        (job,) = await rig.jobs(app)  # REST (progress, result) works while the gateway is down
        pdf = fake.add_cdn_file("notes.pdf", b"%PDF-1.7", "application/pdf")
        missed = await fake.send_message("and this one", dm=True, attachments=[pdf])
        fake.resume_gate.set()
        await fake.wait_until(lambda: len(rig.bot_messages(dm)) == 3)  # the missed message, replayed

    assert (fake.resumes, len(fake.identifies), fake.replayed) == (1, 1, 1)  # resumed, not re-identified
    assert job.state is JobState.SUCCEEDED
    progress, final, answer = rig.bot_messages(dm)
    assert PROGRESS_TITLE[FAST] in _edited_titles(rig, progress["id"])
    _assert_success_message(rig, final, job, other=PRO)
    assert answer["message_reference"]["message_id"] == missed["id"]
    assert embed(answer)["title"] == TEXTS("error.attachment_not_image", "en", name="notes.pdf")
    assert len(rig.emulator.tasks) == 1


# -- 8. a missing privileged intent ---------------------------------------------------------------


async def test_a_4014_at_start_is_a_clear_fatal_error_and_the_app_still_closes(rig: Rig) -> None:
    fake = rig.fake
    fake.identify_close_code = 4014  # what Discord does when the portal lacks an intent the bot asks for
    async with rig.app(connected=False) as app:
        async with asyncio.timeout(10):
            await app.wait()  # the main loop is woken to report and stop
        assert isinstance(app.fatal, DiscordStartupError)
        assert "Privileged Gateway Intents" in str(app.fatal) and fake.token not in str(app.fatal)
        assert app.store is not None and await app.store.ping()  # the rest of the app is intact
        assert not app.runner.closing
    assert len(fake.identifies) == 1  # no reconnect loop
    assert len(rig.emulator.requests) == 0
    store = await JobStore.open(rig.store_path)  # closed cleanly: the file opens again
    try:
        assert await store.unfinished_jobs() == []
    finally:
        await store.close()


# -- redelivery and bad input ---------------------------------------------------------------------


async def test_the_same_message_delivered_twice_is_one_job_and_one_reply(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        msg = await fake.send_message("a paper boat on a river", dm=True)
        await fake.dispatch("MESSAGE_CREATE", msg)  # the gateway delivers it again
        (job,) = await rig.jobs(app)
        assert app.dispatcher.deduplicated == 1
    assert len(emu.tasks) == 1 and job.origin.message_id == msg["id"]
    progress, final = rig.bot_messages(fake.dm_channel_id(fake.user_id))
    assert {m["message_reference"]["message_id"] for m in (progress, final)} == {msg["id"]}
    assert len(fake.requests_to("POST", r"^/channels/\d+/messages$")) == 2  # nothing else was posted
    assert [e["title"] for e in _posted(rig, job.id)] == [
        TEXTS("prenotice.title", "en", model=FAST),
        TEXTS("success.title", "en"),
    ]
    _assert_success_message(rig, final, job, other=PRO)


async def test_a_non_image_attachment_gets_a_clear_reply_and_no_job(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    dm = fake.dm_channel_id(fake.user_id)
    async with rig.app() as app:
        pdf = fake.add_cdn_file("brief.pdf", b"%PDF-1.7", "application/pdf")
        msg = await fake.send_message("animate this", dm=True, attachments=[pdf])
        (reply,) = await fake.wait_until(lambda: rig.bot_messages(dm))
        assert app.store is not None and await app.store.recent_jobs(rig.user_key) == []
    assert reply["message_reference"]["message_id"] == msg["id"]
    assert embed(reply)["title"] == TEXTS("error.attachment_not_image", "en", name="brief.pdf")
    assert reply["components"] == []
    assert emu.tasks == {} and len(emu.requests) == 0
    assert not [c for c in fake.cdn_log if c[1].endswith("brief.pdf")]  # refused before any download


# -- a deleted progress message ------------------------------------------------------------------


async def test_a_deleted_progress_message_is_replaced_not_retried(rig: Rig) -> None:
    fake, clock = rig.fake, rig.clock
    async with rig.app() as app:
        clock.hold()  # the job parks between two polls, right after its first progress edit
        await fake.send_message("a lantern floating up at night", mention_bot=True)
        await clock.wait_parked()
        (progress,) = rig.bot_messages(fake.channel_id)
        fake.delete_message(progress["id"])  # someone deleted the bot's progress message
        clock.release()
        (job,) = await rig.jobs(app)

    assert job.state is JobState.SUCCEEDED
    gone = rig.edits(progress["id"])
    assert [e.status for e in gone].count(404) == 1  # one refused edit, never a retry loop
    assert job.notice_ref.split(":")[1] != progress["id"]  # the job now points at its new message
    replacement = rig.message(job.notice_ref)
    assert replacement["id"] != progress["id"]
    final = rig.message(job.result_ref)
    _assert_success_message(rig, final, job, other=PRO)


# -- 5. replies: a quoted photo is the input; a reply to a result is a follow-up (issue 15) -------------


async def test_a_reply_to_a_photo_that_pings_the_bots_role_animates_that_photo(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        photo = fake.add_cdn_file("image0", PNG, content_type=None)  # a phone paste: no type, no extension
        posted = await fake.send_message("look at my cat", user_id=fake.other_user_id, attachments=[photo])
        ask = await fake.send_message(
            "animate this, slow zoom in", mention_role=True, reply_to=posted["id"], ping=False
        )
        (job,) = await rig.jobs(app)

    assert job.origin.message_id == ask["id"] and job.spec.prompt == "animate this, slow zoom in"
    assert [a.role for a in job.spec.attachments] == ["first"]
    task = _only_task(emu)
    assert task.task_type == TaskType.IMAGE_TO_VIDEO.value
    assert [_uploaded(emu, u) for u in task.params["input_images"]] == [PNG]  # the quoted bytes reached IMA
    _, final = rig.bot_messages(fake.channel_id)
    assert mentions(final) == [fake.user_id] and job.result_url in final["content"].splitlines()
    assert final["message_reference"]["message_id"] == ask["id"]


async def test_a_reply_to_a_result_is_a_follow_up_and_thanks_is_nothing(rig: Rig) -> None:
    fake, emu = rig.fake, rig.emulator
    async with rig.app() as app:
        await fake.send_message("a red kite over green hills, 16:9, 5s", mention_bot=True)
        (first,) = await rig.jobs(app)
        _, final = rig.bot_messages(fake.channel_id)
        await fake.send_message("thanks! love it", reply_to=final["id"])  # a ping-on reply
        await fake.send_message("same again but 1:1 and 10s", reply_to=final["id"])
        first, second = await rig.jobs(app, count=2)

    assert second.retry_of == first.id
    assert replace(second.spec, notes=()) == replace(first.spec, aspect_ratio="1:1", duration=10, notes=())
    task = emu.tasks[second.task_id]
    assert task.params["aspect_ratio"] == "1:1" and task.prompt == emu.tasks[first.task_id].prompt
    assert len(emu.tasks) == 2  # the thank-you made no job
    pre = _posted(rig, second.id)[0]
    said = TEXTS(
        "platforms.followup.changed",
        "en",
        job_id=first.id,
        changes="duration 5s → 10s, aspect ratio 16:9 → 1:1",
    )
    assert "ℹ️ " + said in pre["description"].replace("\\", "").splitlines()
