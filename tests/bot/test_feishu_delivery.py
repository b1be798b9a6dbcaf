"""End to end, the sending side: cards, paced patches, backoff, token refresh, uuid, covers, video, images."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.adapters.feishu import FeishuAdapter
from bot.adapters.feishu.api import is_rate_limited
from bot.core import (
    Action,
    Attachment,
    AttachmentRejected,
    Button,
    MessageGone,
    Notice,
    NoticeKind,
    Origin,
    PlatformError,
)
from tests.bot.feishu_bench import JPEG, PNG, TEXTS, running, settings_for
from tests.fakes.feishu_events import image_event, text_event
from tests.fakes.feishu_server import FakeFeishu


@pytest.fixture
def fake() -> FakeFeishu:
    with FakeFeishu() as f:
        yield f


def user_origin(fake: FakeFeishu, *, direct: bool = False, thread_id: str = "") -> Origin:
    """A user's message the fake knows, as the adapter would have described it."""
    chat = "oc_p2p0001" if direct else "oc_group0001"
    event = fake.register(text_event("x", chat_type="p2p" if direct else "group", chat_id=chat))
    message_id = event["event"]["message"]["message_id"]
    extra = {"thread_id": thread_id} if thread_id else {}
    return Origin("feishu", chat, "ou_user0001", message_id, is_direct=direct, extra=extra)


def progress(p: int, job: str = "j1") -> Notice:
    return Notice(NoticeKind.PROGRESS, "Generating", progress=p, job_id=job)


def final(job: str = "j1", *, lines: tuple[str, ...] = ("ok",), **kw: object) -> Notice:
    return Notice(NoticeKind.SUCCESS, "Done", lines, job_id=job, mention_user_id="ou_user0001", **kw)


def patch_codes(fake: FakeFeishu) -> list[int | None]:
    return [c.code for c in fake.calls_to("PATCH", "/im/v1/messages/")]


async def test_patches_over_the_cap_back_off_and_the_final_state_wins() -> None:
    now = [0.0]  # the fake's rate window runs on this clock, so hitting the cap does not depend on speed
    with FakeFeishu(patch_limit=5, clock=lambda: now[0]) as fake:
        async with running(fake, retry_base=0.05, retry_attempts=6) as bench:
            a, origin = bench.adapter, user_origin(fake)
            ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued", job_id="j1"), key="j1:pre")
            for p in (10, 20, 30, 40, 50):
                await a.edit(origin, ref, progress(p))
            sixth = asyncio.create_task(a.edit(origin, ref, progress(60)))
            await fake.wait_until(lambda: 230020 in patch_codes(fake))
            now[0] += 1.0  # a second later the card may change again; the adapter's retry gets through
            await sixth
            await a.edit(origin, ref, final())
        codes = patch_codes(fake)
        assert codes[:5] == [0] * 5 and codes[5] == 230020 and codes.count(0) == 7
        states = [json.loads(p) for p in fake.messages[ref].patches]
        assert [s["header"]["template"] for s in states][-2:] == ["wathet", "green"]
        assert "60%" in json.dumps(states[-2], ensure_ascii=False)


async def test_the_patch_floor_keeps_a_card_under_the_cap() -> None:
    with FakeFeishu(patch_limit=1, patch_window=0.05) as fake:
        async with running(fake, patch_floor=0.06) as bench:
            a, origin = bench.adapter, user_origin(fake)
            ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
            for p in (10, 20, 30):
                await a.edit(origin, ref, progress(p))
        assert patch_codes(fake) == [0, 0, 0]


async def test_progress_inside_the_interval_and_repeats_are_skipped_finals_are_not(fake: FakeFeishu) -> None:
    now = [0.0]
    async with running(fake, clock=lambda: now[0], min_patch_interval=10.0) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
        now[0] = 1.0
        await a.edit(origin, ref, progress(10))  # too soon: dropped
        now[0] = 11.0
        await a.edit(origin, ref, progress(20))  # shown
        now[0] = 30.0
        await a.edit(origin, ref, progress(20))  # identical: skipped
        now[0] = 31.0
        await a.edit(origin, ref, final())  # final: always shown
    patches = fake.messages[ref].patches
    assert [json.loads(p)["header"]["template"] for p in patches] == ["wathet", "green"]
    assert "▰▰▱▱▱▱▱▱▱▱ 20%" in patches[0]


async def test_429_reset_header_is_honoured(fake: FakeFeishu) -> None:
    # A 10 s exponential backoff would time the test out: only the header's 0 s makes it pass.
    async with running(fake, retry_base=10.0) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
        fake.rate_limit_next("PATCH", times=2, reset="0")
        await a.edit(origin, ref, progress(50))
    assert [(c.status, c.code) for c in fake.calls_to("PATCH", "")] == [
        (429, 99991400),
        (429, 99991400),
        (200, 0),
    ]


async def test_a_rate_limit_that_persists_surfaces_with_retry_after(fake: FakeFeishu) -> None:
    async with running(fake, retry_attempts=2) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
        fake.rate_limit_next("PATCH", times=10, reset="0")
        with pytest.raises(PlatformError) as err:
            await a.edit(origin, ref, progress(50))
    assert is_rate_limited(err.value) and err.value.retry_after == 0.0
    assert len(fake.calls_to("PATCH", "")) == 3


async def test_a_token_that_expires_mid_job_is_fetched_again_once(fake: FakeFeishu) -> None:
    async with running(fake) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
        assert fake.token_fetches == 1
        fake.invalidate_tokens()
        await a.edit(origin, ref, progress(40))
        await a.edit(origin, ref, progress(80))
    assert fake.token_fetches == 2
    assert [c.code for c in fake.calls_to("PATCH", "")] == [99991663, 0, 0]


async def test_a_token_is_renewed_before_it_expires() -> None:
    now = [0.0]
    with FakeFeishu(token_ttl=600) as fake:
        async with running(fake, clock=lambda: now[0]) as bench:
            a, origin = bench.adapter, user_origin(fake)
            ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
            now[0] = 200.0
            await a.edit(origin, ref, progress(10))
            assert fake.token_fetches == 1
            now[0] = 301.0  # within 5 minutes of expiry
            await a.edit(origin, ref, progress(20))
        assert fake.token_fetches == 2 and 99991663 not in patch_codes(fake)


async def test_a_token_refused_again_after_refetch_is_an_error(fake: FakeFeishu) -> None:
    invalid = {"code": 99991663, "msg": "Invalid access token for authorization."}
    async with running(fake) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
        fake.fail_next("PATCH", "/im/v1/messages/", status=400, body=invalid, times=2)
        with pytest.raises(PlatformError) as err:
            await a.edit(origin, ref, progress(40))
    assert err.value.code == 99991663 and fake.token_fetches == 2


async def test_a_send_whose_answer_was_lost_is_retried_with_the_same_uuid(fake: FakeFeishu) -> None:
    async with running(fake) as bench:
        a, origin = bench.adapter, user_origin(fake)
        fake.fail_next("POST", "/reply$", status=500, body={"code": 1, "msg": "internal"}, after=True)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="job-77:prenotice")
        again = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="job-77:prenotice")
    uuids = [c.body["uuid"] for c in fake.calls_to("POST", "/reply$")]
    assert uuids == ["job-77:prenotice"] * 3
    assert again == ref and len(fake.bot_messages()) == 1


async def test_a_long_key_becomes_a_stable_short_uuid(fake: FakeFeishu) -> None:
    key = "job-" + "9" * 60 + ":final"
    async with running(fake) as bench:
        a, origin = bench.adapter, user_origin(fake)
        first = await a.send(origin, Notice(NoticeKind.INFO, "x"), key=key)
        second = await a.send(origin, Notice(NoticeKind.INFO, "x"), key=key)
    uuid_a, uuid_b = (c.body["uuid"] for c in fake.calls_to("POST", "/reply$"))
    assert uuid_a == uuid_b and len(uuid_a) <= 50 and first == second


async def test_a_refused_final_patch_raises_and_leaves_the_fallback_to_the_pipeline(fake: FakeFeishu) -> None:
    """The adapter never posts a final by itself when its patch is refused: the pipeline records that it
    will post, then posts with the job's final key (test_delivery_outbox), so a retry cannot show two."""
    async with running(fake, retry_attempts=1) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued", job_id="j1"), key="j1:pre")
        fake.rate_limit_next("PATCH", times=5, reset="0")
        with pytest.raises(PlatformError) as caught:
            await a.edit(origin, ref, final())
        assert caught.value.status == 429 and not isinstance(caught.value, MessageGone)
        shown = await a.send(origin, final(), key="j1:final")
    assert shown != ref and fake.messages[shown].card["header"]["template"] == "green"
    assert fake.messages[shown].uuid == "j1:final"
    assert fake.messages[ref].card["header"]["template"] != "green"  # one card shows the result
    assert fake.bot_messages("text") == []  # a new reply notifies by itself


@pytest.mark.parametrize("how", ["recall", "delete", "age"])
async def test_a_card_that_can_no_longer_change_is_message_gone(fake: FakeFeishu, how: str) -> None:
    async with running(fake) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
        if how == "age":
            fake.age(ref, 15)
        else:
            getattr(fake, how)(ref)
        with pytest.raises(MessageGone):
            await a.edit(origin, ref, progress(50))


async def test_reply_to_a_recalled_message_falls_back_to_the_chat(fake: FakeFeishu) -> None:
    async with running(fake) as bench:
        a, origin = bench.adapter, user_origin(fake)
        fake.recall(origin.message_id)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
    (create,) = fake.calls_to("POST", "/im/v1/messages$")
    assert create.query == {"receive_id_type": "chat_id"} and create.body["receive_id"] == origin.chat_id
    assert fake.messages[ref].chat_id == origin.chat_id and fake.messages[ref].parent_id == ""


async def test_thread_messages_are_answered_in_the_thread(fake: FakeFeishu) -> None:
    async with running(fake) as bench:
        origin = user_origin(fake, thread_id="omt_1")
        await bench.adapter.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
    assert fake.calls_to("POST", "/reply$")[0].body["reply_in_thread"] is True


async def test_final_card_shows_the_uploaded_cover_once(fake: FakeFeishu) -> None:
    cover = fake.add_cdn("cover.jpg", JPEG, "image/jpeg")
    async with running(fake) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued", job_id="j1"), key="j1:pre")
        await a.edit(origin, ref, final(video_url="https://v.example/1.mp4", cover_url=cover))
        await a.edit(
            origin, ref, final(video_url="https://v.example/1.mp4", cover_url=cover, lines=("again",))
        )
    (image_key,) = fake.images
    assert fake.images[image_key] == JPEG
    img = next(el for el in fake.messages[ref].card["elements"] if el["tag"] == "img")
    assert img["img_key"] == image_key and len(fake.calls_to("POST", "/images$")) == 1


async def test_an_unavailable_cover_is_left_out(fake: FakeFeishu) -> None:
    async with running(fake) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued"), key="j1:pre")
        await a.edit(origin, ref, final(cover_url=f"{fake.url}/cdn/missing.jpg"))
    card = fake.messages[ref].card
    assert card["header"]["template"] == "green" and all(el["tag"] != "img" for el in card["elements"])
    assert fake.images == {}


async def test_video_file_switch_posts_an_in_chat_player_instead_of_a_ping(fake: FakeFeishu) -> None:
    video = fake.add_cdn("out.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(500), "video/mp4")
    cover = fake.add_cdn("cover.png", PNG, "image/png")
    async with running(fake, send_video_file=True) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued", job_id="j1"), key="j1:pre")
        await a.edit(origin, ref, final(video_url=video, cover_url=cover))
    (media,) = fake.bot_messages("media")
    content = json.loads(media.content)
    assert fake.files[content["file_key"]][0].startswith(b"\x00\x00\x00\x18ftypmp42")
    assert content["image_key"] in fake.images and media.uuid == "j1:media"
    assert fake.bot_messages("text") == []


async def test_video_file_that_cannot_be_fetched_falls_back_to_the_ping(fake: FakeFeishu) -> None:
    async with running(fake, send_video_file=True) as bench:
        a, origin = bench.adapter, user_origin(fake, direct=True)
        ref = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued", job_id="j1"), key="j1:pre")
        await a.edit(origin, ref, final(video_url=f"{fake.url}/cdn/gone.mp4", locale="en"))
    assert fake.bot_messages("media") == []
    (ping,) = fake.bot_messages("text")
    assert json.loads(ping.content) == {"text": TEXTS("feishu.ping.success", "en")}  # no @ in a DM


async def test_failure_pings_cancellation_does_not(fake: FakeFeishu) -> None:
    async with running(fake) as bench:
        a, origin = bench.adapter, user_origin(fake)
        ref1 = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued", job_id="j1"), key="j1:pre")
        ref2 = await a.send(origin, Notice(NoticeKind.PRENOTICE, "Queued", job_id="j2"), key="j2:pre")
        retry = (Button("Retry", Action.RETRY, "j1"),)
        await a.edit(
            origin, ref1, Notice(NoticeKind.FAILURE, "Failed", buttons=retry, job_id="j1", locale="zh")
        )
        await a.edit(origin, ref2, Notice(NoticeKind.CANCELLED, "Cancelled", job_id="j2"))
    (ping,) = fake.bot_messages("text")
    assert json.loads(ping.content)["text"].endswith(TEXTS("feishu.ping.failure", "zh"))


async def test_images_are_checked_before_the_pipeline_gets_them(fake: FakeFeishu) -> None:
    event = fake.register(image_event("img_ok"), images={"img_ok": PNG})
    mid = event["event"]["message"]["message_id"]
    fake.add_resource(mid, "img_html", b"<html>expired</html>", "text/html")
    async with running(fake, max_image_bytes=1024) as bench:
        a = bench.adapter
        assert await a.read_attachment(Attachment(f"{mid}/img_ok"), max_bytes=1 << 20) == PNG
        cases = {
            "attachment_not_image": Attachment(f"{mid}/img_html"),
            "attachment_download_failed": Attachment(f"{mid}/img_missing"),
            "attachment_too_large": Attachment(f"{mid}/img_ok", size=4096),
        }
        for key, attachment in cases.items():
            with pytest.raises(AttachmentRejected) as err:
                await a.read_attachment(attachment, max_bytes=1 << 20)
            assert err.value.key == key
        with pytest.raises(AttachmentRejected) as err:
            await a.read_attachment(Attachment(f"{mid}/img_ok"), max_bytes=16)
        assert err.value.key == "attachment_too_large" and err.value.params["limit_mb"] == 0.0
    resource_calls = fake.calls_to("GET", "/resources/")
    assert len(resource_calls) == 4  # the declared-size check asked nothing


async def test_send_before_run_is_a_platform_error(fake: FakeFeishu) -> None:
    adapter = FeishuAdapter(settings_for(fake), texts=TEXTS)
    with pytest.raises(PlatformError):
        await adapter.send(Origin("feishu", "oc_1", "ou_1", "om_1"), Notice(NoticeKind.INFO, "x"), key="k")
