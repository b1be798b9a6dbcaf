"""End to end: the real App behind real lark-oapi on the fake Feishu (ws and webhook), IMA as the emulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.jobs.model import Job, JobState
from ima.models import ModelId, TaskType
from tests.fakes.feishu_events import (
    BOT_OPEN_ID,
    card_action_event,
    image_event,
    post_event,
    text_event,
)

from .feishu_app import (
    FAST,
    GROUP,
    JPEG,
    P2P,
    PNG,
    PRO,
    TEXTS,
    USER,
    FeishuRig,
    assert_final_card,
    buttons,
    message_id,
    only_task,
    open_rig,
    percents,
    ping_text,
    texts,
    title,
    uploaded,
)

ACK_BUDGET = 0.1  # seconds: Feishu re-pushes what is not acked within 3 s; the bot aims far lower


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


# -- 1. a group @-mention --------------------------------------------------------------------------


async def test_a_group_mention_gets_one_card_from_prenotice_to_video_and_a_ping(rig: FeishuRig) -> None:
    fake, emu = rig.fake, rig.emulator
    event = text_event("a fox running through snow, 9:16", mention_bot=BOT_OPEN_ID)
    async with rig.app() as app:
        ack = await fake.push_event(event)
        (job,) = await rig.jobs(app)

    assert ack.code == 200
    task = only_task(emu)
    assert (task.task_type, task.model_id, task.params["aspect_ratio"]) == (
        "text_to_video",
        "ima-pro-fast",
        "9:16",
    )
    assert "fox running through snow" in task.prompt and "@_user" not in task.prompt
    assert job.origin.chat_id == GROUP and task.id in job.result_url

    # One card replying to the user's message, then the ping; nothing else was posted.
    card, ping = rig.replies_to(message_id(event))
    assert fake.bot_messages() == [card, ping]
    assert (card.msg_type, ping.msg_type) == ("interactive", "text")
    assert card.uuid == f"{job.id}:prenotice"  # a retried send cannot post a second card

    pre = rig.sent_card(card.message_id)
    assert title(pre) == TEXTS("prenotice.title", "en", model=FAST)
    assert TEXTS("prenotice.credits", "en", credit=task.points) in texts(pre)
    assert TEXTS("button.cancel", "en") in [b["text"]["content"] for b in buttons(pre)]

    patches = rig.patches(card.message_id)
    titles = [title(p) for p in patches]
    assert titles[0] == TEXTS("progress.creating", "en", model=FAST)
    assert titles.count(TEXTS("progress.title", "en", model=FAST)) >= 2
    shown = percents([p for p in patches if title(p) == TEXTS("progress.title", "en", model=FAST)])
    assert shown == sorted(shown) and shown[-1] > shown[0]
    assert patches[-1] == card.card and len(card.patches) == len(patches)
    assert all(c.status == 200 for c in fake.calls_to("PATCH"))
    assert_final_card(rig, card, job, other=PRO)

    # A patch notifies nobody: the finished job pings its user in the chat.
    assert ping.parent_id == message_id(event)
    assert ping_text(ping) == f'<at user_id="{USER}"></at> ' + TEXTS("feishu.ping.success", "en")


# -- 2. chatter ------------------------------------------------------------------------------------


async def test_group_messages_not_mentioning_the_bot_are_ignored(rig: FeishuRig) -> None:
    fake = rig.fake
    chatter = text_event("lunch anyone? a video of a cat would be fun")
    aside = text_event("@_user_1 make me a video of a cat", others={"ou_user0002": "Bob"})
    # A barrier: events are taken in order, and this one's job goes further than theirs ever could.
    barrier = text_event("a cat on a skateboard", chat_type="p2p", chat_id=P2P, sender="ou_user0009")
    async with rig.app() as app:
        acks = [await fake.push_event(e) for e in (chatter, aside, barrier)]
        (job,) = await rig.jobs(app, users=["ou_user0009"])
        assert app.store is not None and await app.store.recent_jobs(f"feishu:{USER}") == []

    assert [a.code for a in acks] == [200, 200, 200]  # acked, so Feishu does not push them again
    assert job.origin.message_id == message_id(barrier)
    assert {m.parent_id for m in fake.bot_messages()} == {message_id(barrier)}
    assert only_task(rig.emulator).prompt == "a cat on a skateboard"


# -- 3, 4. images in a DM ------------------------------------------------------------------------------


async def test_a_p2p_image_becomes_an_image_to_video_task_with_those_bytes(rig: FeishuRig) -> None:
    fake, emu = rig.fake, rig.emulator
    event = fake.register(image_event("img_v3_cat"), images={"img_v3_cat": PNG})
    async with rig.app() as app:
        await fake.push_event(event)
        (job,) = await rig.jobs(app)

    task = only_task(emu)
    assert task.task_type == job.spec.task_type.value == TaskType.IMAGE_TO_VIDEO.value
    assert list(task.params["input_images"]) == list(job.input_urls)
    assert [uploaded(emu, u) for u in job.input_urls] == [PNG]
    (get,) = fake.calls_to("GET", "/resources/")
    mid = message_id(event)
    assert get.path == f"/open-apis/im/v1/messages/{mid}/resources/img_v3_cat" and get.query == {
        "type": "image"
    }

    card, ping = rig.replies_to(mid)
    assert job.origin.is_direct and card.chat_id == P2P
    assert TEXTS("prenotice.images", "en", roles=TEXTS("role.first", "en")) in texts(
        rig.sent_card(card.message_id)
    )
    assert title(rig.patches(card.message_id)[0]) == TEXTS("progress.preparing", "en")
    assert_final_card(rig, card, job, other=PRO)
    assert ping_text(ping) == TEXTS("feishu.ping.success", "en")  # no @ in a one-to-one chat


async def test_a_p2p_post_with_two_images_becomes_a_first_last_frame_task(rig: FeishuRig) -> None:
    fake, emu = rig.fake, rig.emulator
    paragraphs = [
        [{"tag": "text", "text": "the street turns from day to night"}],
        [{"tag": "img", "image_key": "img_day"}, {"tag": "img", "image_key": "img_night"}],
    ]
    event = fake.register(post_event(paragraphs), images={"img_day": PNG, "img_night": JPEG})
    async with rig.app() as app:
        await fake.push_event(event)
        (job,) = await rig.jobs(app)

    task = only_task(emu)
    assert task.task_type == TaskType.FIRST_LAST_FRAME_TO_VIDEO.value
    assert task.prompt == "the street turns from day to night"
    assert [uploaded(emu, u) for u in task.params["input_images"]] == [PNG, JPEG]  # first, then last
    keys = [c.path.rsplit("/", 1)[1] for c in fake.calls_to("GET", "/resources/")]
    assert sorted(keys) == ["img_day", "img_night"]
    card, _ = rig.replies_to(message_id(event))
    roles = " + ".join(TEXTS(f"role.{r}", "en") for r in ("first", "last"))
    assert TEXTS("prenotice.images", "en", roles=roles) in texts(rig.sent_card(card.message_id))
    assert_final_card(rig, card, job, other=PRO)


# -- 5. redelivery ---------------------------------------------------------------------------------------


async def test_the_same_event_pushed_twice_over_ws_is_one_job_and_one_card(rig: FeishuRig) -> None:
    fake = rig.fake
    event = text_event("a paper boat on a river", mention_bot=BOT_OPEN_ID)
    async with rig.app() as app:
        acks = [await fake.push_event(event), await fake.push_event(event)]
        (job,) = await rig.jobs(app)
        assert app.dispatcher.deduplicated == 1

    assert [a.code for a in acks] == [200, 200]
    assert len(rig.emulator.tasks) == 1
    card, ping = rig.replies_to(message_id(event))
    assert fake.bot_messages() == [card, ping] and len(fake.calls_to("POST", "/reply$")) == 2
    assert_final_card(rig, card, job, other=PRO)


async def test_the_same_event_posted_twice_and_again_after_a_restart_is_one_job(rig: FeishuRig) -> None:
    fake = rig.fake
    event = fake.register(text_event("a kite over the dunes", mention_bot=BOT_OPEN_ID))
    async with rig.app(transport="webhook") as app, rig.poster(app) as poster:
        replies = [await poster.post(event), await poster.post(event)]
        (job,) = await rig.jobs(app)
        assert app.dispatcher.deduplicated == 1

    rig.clock.now += 3600  # Feishu re-pushes after 15 s, 5 min, 1 h and 6 h: all inside the 8 h TTL
    barrier = fake.register(text_event("a different request", mention_bot=BOT_OPEN_ID))
    async with rig.app(transport="webhook") as app, rig.poster(app) as poster:  # a new process
        replies.append(await poster.post(event))
        replies.append(await poster.post(barrier))
        jobs = await rig.jobs(app, 2)
        assert app.dispatcher.deduplicated == 1  # the key came from the store, not from memory

    assert [(r.status, r.body) for r in replies] == [(200, {"msg": "success"})] * 4
    assert [j.origin.message_id for j in jobs] == [message_id(event), message_id(barrier)]
    assert len(rig.emulator.tasks) == 2
    card, _ = rig.replies_to(message_id(event))
    assert rig.replies_to(message_id(event), "interactive") == [card]
    assert_final_card(rig, card, job, other=PRO)


# -- 6. ack latency ----------------------------------------------------------------------------------------


async def test_acks_stay_fast_while_jobs_are_running(rig: FeishuRig) -> None:
    fake = rig.fake
    users = [f"ou_user{n:04d}" for n in range(1, 7)]
    events = [
        text_event(f"clip number {n}", mention_bot=BOT_OPEN_ID, sender=u) for n, u in enumerate(users, 1)
    ]
    async with rig.app() as app:
        store = app.store
        assert store is not None
        acks = [await fake.push_event(e) for e in events[:2]]

        async def two_running() -> list[Job] | None:
            running = [j for j in await store.unfinished_jobs() if j.state is JobState.RUNNING]
            return running if len(running) >= 2 else None

        running = await rig.until(app, two_running)
        acks += await asyncio.gather(*(fake.push_event(e) for e in events[2:]))
        in_flight = {j.id for j in await store.unfinished_jobs()}
        jobs = await rig.jobs(app, 6, users=users)

    assert {j.id for j in running} <= in_flight  # those jobs ran while the other four were acked
    assert [a.code for a in acks] == [200] * 6
    assert max(a.elapsed for a in acks) < ACK_BUDGET, [a.elapsed for a in acks]
    assert all(a.biz_rt_ms is not None and a.biz_rt_ms < ACK_BUDGET * 1000 for a in acks)
    assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 6 and len(rig.emulator.tasks) == 6
    for event in events:
        card, _ = rig.replies_to(message_id(event))
        assert title(card.card) == TEXTS("success.title", "en")


# -- 7. webhook checks --------------------------------------------------------------------------------------


async def test_webhook_challenge_encrypted_event_and_forgeries(rig: FeishuRig) -> None:
    fake = rig.fake
    event = fake.register(text_event("a lantern floating on a lake", mention_bot=BOT_OPEN_ID))
    forged = fake.register(text_event("a forged request", mention_bot=BOT_OPEN_ID))
    async with rig.app(transport="webhook") as app, rig.poster(app) as poster:
        challenge = await poster.challenge("c-123")
        bad_signature = await poster.post(forged, bad_signature=True)
        bad_token = await poster.post(forged, token="not-the-token")
        ok = await poster.post(event)  # encrypted and signed, as Feishu sends it
        (job,) = await rig.jobs(app)

    assert (challenge.status, challenge.body) == (200, {"challenge": "c-123"})
    assert (bad_signature.status, bad_token.status) == (401, 401)
    assert (ok.status, ok.body) == (200, {"msg": "success"}) and ok.elapsed < ACK_BUDGET
    assert job.origin.message_id == message_id(event) and len(rig.emulator.tasks) == 1
    assert "lantern floating on a lake" in only_task(rig.emulator).prompt
    assert rig.replies_to(message_id(forged)) == []
    card, _ = rig.replies_to(message_id(event))
    assert_final_card(rig, card, job, other=PRO)


# -- 8. patch throttling ------------------------------------------------------------------------------------


async def test_a_burst_of_progress_stays_under_the_five_per_second_cap(rig: FeishuRig) -> None:
    fake = rig.fake
    event = text_event("a hummingbird in slow motion", mention_bot=BOT_OPEN_ID)
    # Every poll has a new percent and the runner wants each one shown at once (virtual time).
    fake.rate_limit_next("PATCH", r"^/open-apis/im/v1/messages/om_bot\d+$", reset="0.05")
    async with rig.app(jobs={"poll_interval": 5, "progress_interval_fast": 0.001}) as app:
        await fake.push_event(event)
        (job,) = await rig.jobs(app)

    card, _ = rig.replies_to(message_id(event))
    calls = fake.calls_to("PATCH", f"/messages/{card.message_id}$")
    assert [c.code for c in calls].count(99991400) == 1  # the injected one, waited out for its reset
    limited = next(i for i, c in enumerate(calls) if c.code == 99991400)
    assert calls[limited + 1].body == calls[limited].body and calls[limited + 1].status == 200
    assert calls[limited + 1].at - calls[limited].at >= 0.05
    accepted = [c.at for c in calls if c.status == 200]
    assert len(accepted) >= 8  # a real burst: creating, six or more progress steps, the result
    assert 230020 not in [c.code for c in calls]  # the adapter's pacing never met Feishu's cap
    assert max(sum(1 for t in accepted if s <= t < s + 1.0) for s in accepted) <= 5
    assert_final_card(rig, card, job, other=PRO)


async def test_a_230020_on_the_final_patch_is_backed_off_and_the_card_ends_right(rig: FeishuRig) -> None:
    fake, clock = rig.fake, rig.clock
    rig.emulator.faults.add("task_seconds", seconds=5)  # the poll after the first one finds the video
    event = text_event("a glass of water tipping over", mention_bot=BOT_OPEN_ID)
    # One progress edit only, so the next patch after it is the final (the first poll may come after 30 s).
    async with rig.app(jobs={"progress_interval_fast": 600}) as app:
        clock.hold()
        await fake.push_event(event)
        await clock.wait_parked()  # the job showed its first progress and waits for the first poll
        (card,) = fake.bot_messages("interactive")
        frequency = {"code": 230020, "msg": "This message has reached its update frequency limit."}
        fake.fail_next("PATCH", f"/messages/{card.message_id}$", status=400, body=frequency)
        clock.release()
        (job,) = await rig.jobs(app)

    calls = fake.calls_to("PATCH", f"/messages/{card.message_id}$")
    refused, retried = calls[-2:]
    assert refused.code == 230020 and (retried.status, retried.code) == (200, 0)
    assert json.loads(retried.body["content"]) == card.card  # the result itself was retried
    assert title(card.card) == TEXTS("success.title", "en")
    assert retried.at - refused.at >= 0.5  # backed off (no reset header: its own backoff)
    assert rig.replies_to(message_id(event), "interactive") == [card]  # no fallback card needed
    assert_final_card(rig, card, job, other=PRO)


# -- 9. token expiry ------------------------------------------------------------------------------------------


async def test_a_tenant_token_expiring_mid_job_is_fetched_again(rig: FeishuRig) -> None:
    fake, clock = rig.fake, rig.clock
    event = text_event("a train crossing a bridge", mention_bot=BOT_OPEN_ID)
    async with rig.app() as app:
        clock.hold()
        await fake.push_event(event)
        await clock.wait_parked()  # mid-job: between two polls
        fetches = fake.token_fetches
        fake.invalidate_tokens()
        clock.release()
        (job,) = await rig.jobs(app)

    assert (fetches, fake.token_fetches) == (1, 2)
    (refused,) = [c for c in fake.calls if c.code == 99991663]
    after = fake.calls[fake.calls.index(refused) + 1 :]
    assert after[0].path.endswith("/tenant_access_token/internal")
    assert (after[1].method, after[1].path, after[1].status) == (refused.method, refused.path, 200)
    card, ping = rig.replies_to(message_id(event))
    assert_final_card(rig, card, job, other=PRO)
    assert ping_text(ping).startswith(f'<at user_id="{USER}"></at>')


# -- 10. buttons -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ws", "webhook"])
async def test_the_other_model_button_runs_a_new_job(rig: FeishuRig, transport: str) -> None:
    fake, emu = rig.fake, rig.emulator
    event = fake.register(text_event("a paper plane over a city", mention_bot=BOT_OPEN_ID))
    async with rig.app(transport=transport) as app:
        if transport == "ws":
            await fake.push_event(event)
        else:
            async with rig.poster(app) as poster:
                await poster.post(event)
        (first,) = await rig.jobs(app)
        click = card_action_event(
            "other_model", first.id, open_message_id=first.result_ref, open_chat_id=GROUP, operator=USER
        )
        if transport == "ws":
            ack = await fake.push_event(click)
            toast = ack.data["toast"]
        else:
            async with rig.poster(app) as poster:
                reply = await poster.post(click)
            assert reply.status == 200
            toast = reply.body["toast"]
        first, again = await rig.jobs(app, 2)

    assert toast["i18n"]["en_us"] == TEXTS("feishu.toast", "en")
    assert (again.retry_of, again.spec.model_id, again.state) == (first.id, ModelId.PRO, JobState.SUCCEEDED)
    assert [t.model_id for t in emu.tasks.values()] == ["ima-pro-fast", "ima-pro"]
    old_task, new_task = emu.tasks.values()
    assert new_task.prompt == old_task.prompt and new_task.task_type == "text_to_video"
    old_card, new_card = rig.replies_to(message_id(event), "interactive")
    assert title(rig.sent_card(new_card.message_id)) == TEXTS("prenotice.title", "en", model=PRO)
    assert_final_card(rig, old_card, first, other=PRO)
    assert_final_card(rig, new_card, again, other=FAST)


# -- replies: a quoted photo is the input; a reply to a result card is a follow-up (issue 15) ------------


async def test_a_mention_replying_to_a_photo_animates_that_photo(rig: FeishuRig) -> None:
    fake, emu = rig.fake, rig.emulator
    photo = fake.register(
        image_event("img_v3_dog", chat_type="group", chat_id=GROUP, sender="ou_friend01"),
        images={"img_v3_dog": JPEG},
    )
    ask = text_event("让它动起来，微风吹过", mention_bot=BOT_OPEN_ID, parent_id=message_id(photo))
    async with rig.app() as app:
        await fake.push_event(ask)
        (job,) = await rig.jobs(app)

    parent = message_id(photo)
    assert job.spec.prompt == "让它动起来，微风吹过" and [a.role for a in job.spec.attachments] == ["first"]
    assert [a.handle for a in job.spec.attachments] == [f"{parent}/img_v3_dog"]
    task = only_task(emu)
    assert task.task_type == TaskType.IMAGE_TO_VIDEO.value
    assert [uploaded(emu, u) for u in job.input_urls] == [JPEG]  # the quoted bytes reached IMA
    assert [c.path for c in fake.calls_to("GET", f"/messages/{parent}$")] == [
        f"/open-apis/im/v1/messages/{parent}"
    ]
    (card, ping) = rig.replies_to(message_id(ask))
    assert job.state is JobState.SUCCEEDED and card.message_id == job.result_ref
    assert job.result_url in "\n".join(texts(card.card)) and ping.msg_type == "text"


async def test_a_reply_to_the_result_card_is_a_follow_up_and_thanks_is_nothing(rig: FeishuRig) -> None:
    fake, emu = rig.fake, rig.emulator
    first_ask = text_event("a red kite over green hills, 16:9, 5s", chat_type="p2p", chat_id=P2P)
    async with rig.app() as app:
        await fake.push_event(first_ask)
        (first,) = await rig.jobs(app)
        card = first.result_ref
        assert card == first.notice_ref  # Feishu shows the whole job on one card
        await fake.push_event(text_event("太棒了", chat_type="p2p", chat_id=P2P, parent_id=card))
        follow = text_event("竖屏版，10 秒的", chat_type="p2p", chat_id=P2P, parent_id=card)
        await fake.push_event(follow)
        first, second = await rig.jobs(app, count=2)

    assert second.retry_of == first.id and second.locale == "zh"
    assert replace(second.spec, notes=()) == replace(first.spec, aspect_ratio="9:16", duration=10, notes=())
    assert len(emu.tasks) == 2 and emu.tasks[second.task_id].params["aspect_ratio"] == "9:16"
    (new_card, _) = rig.replies_to(message_id(follow))
    said = TEXTS(
        "platforms.followup.changed", "zh", job_id=first.id, changes="时长 5秒 → 10秒，画幅 16:9 → 9:16"
    )
    assert "ℹ️ " + said in "\n".join(texts(rig.sent_card(new_card.message_id))).splitlines()
