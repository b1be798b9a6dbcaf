"""End-to-end failure paths: expired tokens, 429s, dropped gateways, deleted messages, 401/403, refusals."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiohttp
import pytest

from bot.adapters.discord import DiscordAdapter, DiscordStartupError
from bot.core import (
    Attachment,
    AttachmentRejected,
    GenerationIntent,
    MessageGone,
    Notice,
    NoticeKind,
    PlatformError,
)
from tests.fakes.discord_harness import TEXTS, ManualClock, Recorder, running, settings
from tests.fakes.discord_server import FakeDiscord

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(96))


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch):
    async with FakeDiscord() as f:
        f.install(monkeypatch)
        yield f
        assert f.errors == []


def _notice(title: str, *lines: str, kind: NoticeKind = NoticeKind.PROGRESS) -> Notice:
    return Notice(kind, title, lines, job_id="j1")


def _mid(ref: str) -> str:
    return ref.split(":")[1]


async def test_a_job_outlives_the_interaction_token(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    async with FakeDiscord(clock=clock, token_ttl=0.3) as fake:
        fake.install(monkeypatch)
        adapter = DiscordAdapter(settings(fake), texts=TEXTS)
        rec = Recorder(adapter)
        async with running(adapter, rec):
            inter = await fake.slash_command("video", {"prompt": "a long one"})
            origin = (await rec.next_intent()).origin
            await fake.wait_until(lambda: inter.acked_type == 5 and not inter.loading)
            ref = await adapter.send(origin, _notice("🎬 Got it!", kind=NoticeKind.PRENOTICE), key="pre")
            clock.advance(40 * 60)  # 40 minutes: the 15-minute interaction token is long dead
            await adapter.edit(origin, ref, _notice("⏳ Generating…", "90%"))
            final = await adapter.send(origin, _notice("✅ Done", kind=NoticeKind.SUCCESS), key="final")
            async with aiohttp.ClientSession() as s:  # the fake really refuses the old token now
                url = f"{fake.base_url}/api/v10/webhooks/{fake.app_id}/{inter.token}/messages/@original"
                async with s.patch(url, json={"content": "late"}) as resp:
                    assert (resp.status, (await resp.json())["code"]) == (401, 50027)
        assert fake.errors == []
    assert fake.messages[_mid(ref)]["embeds"][0]["title"] == "⏳ Generating…"
    assert fake.messages[_mid(final)]["embeds"][0]["title"] == "✅ Done"
    bot_requests = [r for r in fake.requests if r.body != {"content": "late"}]
    assert all(r.status < 400 for r in bot_requests)  # no 50027 ever reached the bot
    assert [r.path for r in bot_requests if r.path.startswith("/webhooks/")] == [
        f"/webhooks/{fake.app_id}/{inter.token}/messages/@original"  # only the acknowledgement, at once
    ]


async def test_a_429_with_via_is_waited_out(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.send_message("go", mention_bot=True)
        origin = (await rec.next_intent()).origin
        ref = await adapter.send(origin, _notice("a"), key="k")
        fake.rate_limit_next("PATCH", "/channels/.*/messages/", retry_after=0.05)
        await adapter.edit(origin, ref, _notice("b"))
        fake.rate_limit_next("PATCH", "/channels/.*/messages/", retry_after=0.05, via=False)
        with pytest.raises(PlatformError) as caught:  # no Via: a Cloudflare ban, surfaced at once
            await adapter.edit(origin, ref, _notice("c"))
    assert [r.status for r in fake.requests_to("PATCH", "/channels/")] == [429, 200, 429]
    assert caught.value.status == 429 and not isinstance(caught.value, MessageGone)
    assert fake.messages[_mid(ref)]["embeds"][0]["title"] == "b"


async def test_a_gateway_drop_mid_job_resumes_and_replays(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.send_message("first", dm=True)
        origin = (await rec.next_intent()).origin
        ref = await adapter.send(origin, _notice("⏳ 10%"), key="k")
        fake.resume_gate = asyncio.Event()  # hold the RESUME until the events below were missed
        await fake.drop_gateway(4000)
        await adapter.edit(origin, ref, _notice("⏳ 50%"))  # REST keeps working while the socket is down
        await fake.send_message("sent while the bot was disconnected", dm=True)
        await fake.wait_until(lambda: 6 in fake.gateway_ops)  # the bot asked to resume
        assert len(rec.intents) == 1
        fake.resume_gate.set()
        second = await rec.next_intent(2)
        await adapter.edit(origin, ref, _notice("✅ Done", kind=NoticeKind.SUCCESS))
        assert adapter.connected
    assert fake.resumes == 1 and len(fake.identifies) == 1  # resumed, not re-identified
    assert fake.replayed == 1
    assert isinstance(second, GenerationIntent) and second.text == "sent while the bot was disconnected"
    assert fake.messages[_mid(ref)]["embeds"][0]["title"] == "✅ Done"


@pytest.mark.parametrize(
    ("close_code", "says"), [(4014, "Privileged Gateway Intents"), (4004, "rejected the bot token")]
)
async def test_a_fatal_gateway_close_is_a_clear_startup_error(
    fake: FakeDiscord, close_code: int, says: str
) -> None:
    fake.identify_close_code = close_code  # what Discord does when the portal lacks an intent we ask for
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    with pytest.raises(DiscordStartupError, match=says):
        async with running(adapter, Recorder()):
            pass
    assert not adapter.connected and len(fake.identifies) == 1  # no reconnect loop


async def test_a_rejected_token_is_a_clear_error_that_never_shows_the_token(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake, token="mfa.SECRET-token-value"), texts=TEXTS)
    with pytest.raises(DiscordStartupError) as caught:
        async with running(adapter, Recorder()):
            pass
    assert "token" in str(caught.value) and "SECRET" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert [r.status for r in fake.requests] == [401]  # one login attempt, no loop


async def test_a_deleted_progress_message_raises_message_gone(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.send_message("go", dm=True)
        origin = (await rec.next_intent()).origin
        ref = await adapter.send(origin, _notice("⏳ 10%"), key="j1:progress")
        fake.delete_message(_mid(ref))
        with pytest.raises(MessageGone) as caught:
            await adapter.edit(origin, ref, _notice("⏳ 20%"))
        # What the pipeline does next: post it again (the same job and stage, so the same key).
        replacement = await adapter.send(origin, _notice("⏳ 20%"), key="j1:progress")
        fake.delete_message(_mid(replacement))
        with pytest.raises(MessageGone):
            await adapter.edit(origin, replacement, _notice("⏳ 30%"))
        third = await adapter.send(origin, _notice("⏳ 30%"), key="j1:progress")
    assert (caught.value.status, caught.value.code) == (404, 10008)
    assert len({ref, replacement, third}) == 3
    assert fake.messages[_mid(third)]["embeds"][0]["title"] == "⏳ 30%"
    assert len(fake.requests_to("PATCH", "/channels/")) == 2


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_on_edit_raise_once_without_a_retry_storm(fake: FakeDiscord, status: int) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.send_message("go", mention_bot=True)
        origin = (await rec.next_intent()).origin
        ref = await adapter.send(origin, _notice("a"), key="k")
        fake.fail_next("PATCH", "/channels/", status, {"message": "no", "code": 50013}, times=100)
        errors = []
        for title in ("b", "c", "d"):
            with pytest.raises(PlatformError) as caught:
                await adapter.edit(origin, ref, _notice(title))
            errors.append(caught.value)
        other = await adapter.send(origin, _notice("x"), key="k2") if status == 403 else None
    assert len(fake.requests_to("PATCH", "/channels/")) == 1  # one request, then the refusal is remembered
    assert errors[0].status == status and not isinstance(errors[0], MessageGone)
    assert all(e.status == status for e in errors)
    if status == 401:  # the token itself still works (checked once): only that message is refused
        assert len(fake.requests_to("GET", "/users/@me")) >= 1 and not adapter._messenger.token_rejected
    else:  # a 403 on one message does not block the others
        assert other is not None and other != ref


async def test_a_401_on_one_channel_refuses_that_channel_only(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.send_message("go", mention_bot=True)
        origin = (await rec.next_intent()).origin
        fake.fail_next(
            "POST", f"/channels/{origin.chat_id}/messages", 401, {"message": "no", "code": 0}, times=1
        )
        with pytest.raises(PlatformError) as caught:
            await adapter.send(origin, _notice("a"), key="k1")
        assert caught.value.status == 401 and adapter.connected and not adapter._messenger.token_rejected
        # That channel is left alone for a while; another channel is not blocked by its refusal.
        with pytest.raises(PlatformError):
            await adapter.send(origin, _notice("again"), key="k1b")
        elsewhere = replace(origin, chat_id=fake.other_channel_id, message_id="")
        assert await adapter.send(elsewhere, _notice("b"), key="k2")
    assert len(fake.requests_to("POST", f"/channels/{origin.chat_id}/messages")) == 1


async def test_a_rejected_token_mid_run_is_fatal_and_loud(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.send_message("go", mention_bot=True)
        origin = (await rec.next_intent()).origin
        assert adapter.connected
        fake.token = "rotated-by-the-operator"  # every call with the old token is 401 now
        with pytest.raises(PlatformError) as caught:
            await adapter.send(origin, _notice("a"), key="k1")
        assert caught.value.status == 401
        assert not adapter.connected  # /healthz turns 503 through the adapter
        with pytest.raises(PlatformError):  # and nothing more is tried
            await adapter.send(origin, _notice("b"), key="k2")
    assert any("rejects the bot token" in r.getMessage() for r in caplog.records)
    assert "fake-bot-token" not in caplog.text


async def test_the_allowlist_ignores_messages_and_politely_refuses_commands(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(
        settings(
            fake,
            guild_allowlist=frozenset({fake.guild_id}),
            channel_allowlist=frozenset({fake.other_channel_id}),
        ),
        texts=TEXTS,
    )
    rec = Recorder(adapter)
    async with running(adapter, rec):
        inter = await fake.slash_command("video", {"prompt": "a cat"}, locale="zh-CN")
        await fake.wait_until(lambda: inter.acked_type is not None)
        await fake.send_message("ignored here", mention_bot=True)
        await fake.send_message("fine there", mention_bot=True, channel_id=fake.other_channel_id)
        await fake.send_message("and in DMs", dm=True)
        await rec.next_intent(2)
    assert [i.text for i in rec.intents if isinstance(i, GenerationIntent)] == ["fine there", "and in DMs"]
    refusal = fake.messages[inter.original_id or ""]
    assert inter.acked_type == 4 and refusal["flags"] & 64
    assert refusal["content"] == TEXTS("discord.not_allowed", "zh")


async def test_bad_attachments_are_refused_before_any_download(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake, max_image_bytes=1000), texts=TEXTS)
    rec = Recorder(adapter, read_attachments=True, max_bytes=10_000)
    async with running(adapter, rec):
        pdf = fake.add_cdn_file("brief.pdf", b"%PDF-1.7", "application/pdf")
        big = fake.add_cdn_file("huge.png", PNG, declared_size=5 * 1024 * 1024)
        liar = fake.add_cdn_file("liar.png", PNG * 20, declared_size=50)  # the CDN serves more than declared
        await fake.slash_command("video", {"prompt": "x", "image": pdf, "last_image": big})
        intent = await rec.next_intent()
        await fake.send_message("y", dm=True, attachments=[liar])
        await rec.next_intent(2)
        with pytest.raises(AttachmentRejected) as gone:
            await adapter.read_attachment(
                Attachment(f"{fake.base_url}/cdn/missing.png", "m.png", "image/png"), max_bytes=10
            )
    assert isinstance(intent, GenerationIntent)
    assert [a.content_type for a in intent.attachments] == ["application/pdf", "image/png"]
    assert [(e.key, e.params["name"]) for e in rec.rejections] == [  # type: ignore[attr-defined]
        ("attachment_not_image", "brief.pdf"),
        ("attachment_too_large", "huge.png"),
        ("attachment_too_large", "liar.png"),
    ]
    assert rec.rejections[1].params["size_mb"] == "5" and rec.rejections[1].params["limit_mb"] == "0.000954"  # type: ignore[attr-defined]
    assert ("GET", f"{pdf['id']}/brief.pdf") not in fake.cdn_log
    assert ("GET", f"{big['id']}/huge.png") not in fake.cdn_log
    assert gone.value.key == "attachment_download_failed" and rec.images == []


async def test_close_during_start_up_ends_run_quietly(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    task = asyncio.create_task(adapter.run(Recorder()))
    await fake.wait_until(lambda: fake.requests_to("PUT", "/commands$"))  # logged in, syncing commands
    await adapter.close()
    async with asyncio.timeout(5):
        assert await task is None
    assert not adapter.connected and fake.identifies == []


async def test_a_send_repeated_after_its_memory_is_lost_posts_once(fake: FakeDiscord) -> None:
    """A restart forgets which keys were sent; the key's enforced nonce makes Discord answer the
    repeat with the first message, so a final retried from the outbox never shows twice."""
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.send_message("go", mention_bot=True)
        origin = (await rec.next_intent()).origin
        first = await adapter.send(origin, _notice("✅ Done", kind=NoticeKind.SUCCESS), key="job1:final")
        adapter._messenger._keys.clear()  # what a restart forgets
        again = await adapter.send(origin, _notice("✅ Done", kind=NoticeKind.SUCCESS), key="job1:final")
        other = await adapter.send(origin, _notice("✅ Done", kind=NoticeKind.SUCCESS), key="job2:final")
    assert again == first and other != first
    titles = [m["embeds"][0]["title"] for m in fake.channel_messages(origin.chat_id) if m["embeds"]]
    assert titles.count("✅ Done") == 2
