"""End-to-end: the real discord.py inside DiscordAdapter against the fake Discord (HTTP + WebSocket)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bot.adapters.discord import DiscordAdapter
from bot.core import (
    Action,
    ActionIntent,
    Button,
    ButtonStyle,
    Command,
    CommandIntent,
    GenerationIntent,
    Intent,
    Notice,
    NoticeKind,
)
from tests.fakes.discord_harness import TEXTS, ManualClock, Recorder, running, settings
from tests.fakes.discord_payloads import PRIVILEGED_INTENTS
from tests.fakes.discord_server import FakeDiscord

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(96))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(60))
MP4 = (Path(__file__).parents[2] / "ima" / "emulator" / "assets" / "sample.mp4").read_bytes()


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch):
    async with FakeDiscord() as f:
        f.install(monkeypatch)
        yield f
        assert f.errors == []


def _prenotice(job_id: str = "j1", locale: str = "en") -> Notice:
    cancel = Button("Cancel", Action.CANCEL, job_id, style=ButtonStyle.DANGER)
    return Notice(
        NoticeKind.PRENOTICE,
        "🎬 Got it!",
        ("Queue position: #1",),
        0,
        (cancel,),
        locale=locale,
        job_id=job_id,
    )


def _progress(pct: int, job_id: str = "j1") -> Notice:
    cancel = Button("Cancel", Action.CANCEL, job_id, style=ButtonStyle.DANGER)
    return Notice(NoticeKind.PROGRESS, "⏳ Generating…", (f"{pct}%",), pct, (cancel,), job_id=job_id)


def _success(url: str, user_id: str, job_id: str = "j1") -> Notice:
    buttons = (
        Button("Open video", url=url, style=ButtonStyle.LINK),
        Button("Retry", Action.RETRY, job_id, style=ButtonStyle.PRIMARY),
        Button("Try Ima Sevio 1.0", Action.OTHER_MODEL, job_id),
    )
    return Notice(
        NoticeKind.SUCCESS,
        "✅ Your video is ready!",
        (f"🎞️ {url}",),
        100,
        buttons,
        video_url=url,
        cover_url="https://cdn.example.com/cover.jpg",
        job_id=job_id,
        mention_user_id=user_id,
    )


def _message_id(ref: str) -> str:
    return ref.split(":")[1]


async def test_slash_video_with_image_is_deferred_first_then_handed_on(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter, read_attachments=True)
    acked: list[bool] = []

    def check_ack(intent: Intent) -> None:
        interaction_id = intent.event_keys[0].rsplit(":", 1)[1]
        acked.append(fake.interactions[interaction_id].acked_type == 5)

    rec.on_intent = check_ack
    async with running(adapter, rec):
        assert adapter.connected
        img = fake.add_cdn_file("cat.png", PNG)
        inter = await fake.slash_command(
            "video",
            {"prompt": "一只猫在冲浪", "image": img, "model": "ima-pro", "duration": "10"},
            locale="zh-CN",
        )
        intent = await rec.next_intent()
        await fake.wait_until(lambda: inter.acked_type == 5 and not inter.loading)
    assert not adapter.connected
    assert acked == [True]  # deferred before the handler ran
    assert inter.acked_at is not None and inter.acked_at - inter.created < fake.ack_deadline
    assert isinstance(intent, GenerationIntent) and intent.locale == "zh"
    assert intent.text == "一只猫在冲浪" and dict(intent.options) == {"model": "ima-pro", "duration": "10"}
    assert [a.role for a in intent.attachments] == ["first"] and rec.images == [PNG]
    assert ("GET", f"{img['id']}/cat.png") in fake.cdn_log
    ack = fake.messages[inter.original_id or ""]
    assert ack["flags"] & 64 and ack["content"] == TEXTS("discord.ack", "zh")  # ephemeral, localized


async def test_a_job_lives_in_channel_messages_with_paced_edits(fake: FakeDiscord) -> None:
    clock = ManualClock()
    adapter = DiscordAdapter(settings(fake, min_edit_interval=10.0), texts=TEXTS, clock=clock)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.slash_command("video", {"prompt": "a cat surfing"})
        intent = await rec.next_intent()
        origin = intent.origin
        ref = await adapter.send(origin, _prenotice(), key="j1:prenotice")
        assert ref.startswith(f"{fake.channel_id}:")
        patches = f"/channels/{fake.channel_id}/messages/{_message_id(ref)}$"
        await adapter.edit(origin, ref, _progress(10))  # a new state: shown at once
        await adapter.edit(origin, ref, _progress(10))  # nothing changed: no request
        clock.advance(3)
        await adapter.edit(origin, ref, _progress(20))  # same state within 10 s: waits for the cadence
        assert len(fake.requests_to("PATCH", patches)) == 1
        clock.advance(8)
        await adapter.edit(origin, ref, _progress(30))
        assert len(fake.requests_to("PATCH", patches)) == 2
        done = Notice(NoticeKind.PROGRESS, "✅ Finished in 1m", ("100%",), 100, job_id="j1")
        await adapter.edit(origin, ref, done)  # state change right after a tick: not delayed
        final_ref = await adapter.send(
            origin, _success("https://cdn.example.com/v.mp4", origin.user_id), key="j1:final"
        )
    assert len(fake.requests_to("PATCH", patches)) == 3
    progress = fake.messages[_message_id(ref)]
    assert progress["embeds"][0]["title"] == "✅ Finished in 1m" and progress["components"] == []
    final = fake.messages[_message_id(final_ref)]
    assert final["content"] == f"<@{fake.user_id}>\nhttps://cdn.example.com/v.mp4"
    assert final["embeds"][0]["image"]["url"] == "https://cdn.example.com/cover.jpg"
    styles = [c["style"] for row in final["components"] for c in row["components"]]
    assert styles == [5, 1, 2]
    assert fake.requests_to("POST", "/messages$")[-1].body["allowed_mentions"]["users"] == [int(fake.user_id)]
    assert not fake.requests_to("PATCH", "/webhooks/.*/messages/(?!@original)")


async def test_dm_with_two_images_replies_to_the_message(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter, read_attachments=True)
    async with running(adapter, rec):
        first, last = fake.add_cdn_file("day.png", PNG), fake.add_cdn_file("night.jpg", JPEG, "image/jpeg")
        msg = await fake.send_message("first frame day, last frame night", dm=True, attachments=[first, last])
        intent = await rec.next_intent()
        ref = await adapter.send(intent.origin, _prenotice(), key="dm:prenotice")
    assert isinstance(intent, GenerationIntent)
    assert intent.origin.is_direct and intent.origin.message_id == msg["id"] and intent.locale is None
    assert intent.text == "first frame day, last frame night"
    assert [a.filename for a in intent.attachments] == ["day.png", "night.jpg"] and rec.images == [PNG, JPEG]
    posted = fake.messages[_message_id(ref)]
    assert posted["channel_id"] == fake.dm_channel_id(fake.user_id)
    assert posted["message_reference"]["message_id"] == msg["id"]


async def test_mentions_in_channels_are_requests_and_other_chatter_is_not(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.send_message("just chatting about videos")
        await fake.send_message("make it 9:16, a fox in the snow", mention_bot=True)
        intent = await rec.next_intent()
    assert len(rec.intents) == 1 and isinstance(intent, GenerationIntent)
    assert intent.text == "make it 9:16, a fox in the snow" and intent.origin.guild_id == fake.guild_id


async def test_a_notice_from_the_handler_is_the_ephemeral_answer(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)

    def answer(intent: Intent) -> Notice | None:
        assert isinstance(intent, CommandIntent)
        return Notice(NoticeKind.INFO, "Your defaults", (f"args: {sorted(intent.args.items())}",))

    rec = Recorder(adapter, reply=answer)
    async with running(adapter, rec):
        inter = await fake.slash_command("video-settings", {"model": "ima-pro", "language": "zh"})
        intent = await rec.next_intent()
        await fake.wait_until(lambda: inter.original_id and not inter.loading)
        cancel = await fake.slash_command("video-cancel", {"job_id": "j42"})
        assert await rec.next_intent(2) == CommandIntent(
            rec.intents[1].origin,
            Command.CANCEL,
            {"job_id": "j42"},
            "en",
            (f"discord:interaction:{cancel.id}",),
        )
        await fake.wait_until(lambda: cancel.original_id and not cancel.loading)
    assert isinstance(intent, CommandIntent) and intent.command is Command.SETTINGS
    shown = fake.messages[inter.original_id or ""]
    assert shown["flags"] & 64 and shown["embeds"][0]["title"] == "Your defaults"
    # brackets are escaped in embeds so that user words never form a masked link
    assert shown["embeds"][0]["description"] == "args: \\[('language', 'zh'), ('model', 'ima-pro')\\]"


async def test_a_failing_handler_gets_an_apology_not_silence(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)

    def boom(intent: Intent) -> Notice | None:
        raise RuntimeError("store is down")

    async with running(adapter, Recorder(adapter, reply=boom)):
        inter = await fake.slash_command("video-jobs")
        await fake.wait_until(lambda: inter.original_id and not inter.loading)
    assert fake.messages[inter.original_id or ""]["content"] == TEXTS("discord.failed", "en")


async def test_button_clicked_after_a_restart_becomes_an_action(fake: FakeDiscord) -> None:
    first = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(first)
    async with running(first, rec):
        await fake.send_message("a cat", mention_bot=True)
        intent = await rec.next_intent()
        ref = await first.send(
            intent.origin, _success("https://cdn.example.com/v.mp4", fake.user_id, "j_7f3a"), key="k"
        )

    second = DiscordAdapter(settings(fake), texts=TEXTS)  # a new process: nothing in memory
    reply = Notice(NoticeKind.INFO, "Retrying with Ima Sevio 1.0-Fast")
    rec2 = Recorder(second, reply=lambda i: reply)
    async with running(second, rec2):
        click = await fake.click_button(_message_id(ref), "imabot:retry:j_7f3a", locale="zh-CN")
        action = await rec2.next_intent()
        await fake.wait_until(lambda: fake.requests_to("POST", f"/webhooks/.*/{click.token}$"))
    assert len(fake.identifies) == 2
    assert isinstance(action, ActionIntent)
    assert (action.job_id, action.action, action.locale) == ("j_7f3a", Action.RETRY, "zh")
    assert action.origin.extra["message_ref"] == ref
    assert click.acked_type == 6  # a silent deferred update within the deadline
    followup = fake.requests_to("POST", f"/webhooks/.*/{click.token}$")[0].body
    assert followup["flags"] & 64 and followup["embeds"][0]["title"] == "Retrying with Ima Sevio 1.0-Fast"


async def test_the_mp4_is_uploaded_when_it_fits_and_linked_when_not(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake, upload_video=True), texts=TEXTS)
    rec = Recorder(adapter)
    video = fake.add_cdn_file("out.mp4", MP4, "video/mp4")["url"]
    async with running(adapter, rec):
        await fake.slash_command("video", {"prompt": "a cat"})
        origin = (await rec.next_intent()).origin
        ref = await adapter.send(origin, _success(video, origin.user_id), key="fits")
        fake.attachment_size_limit = 1000  # a channel whose limit is below the file size
        await fake.slash_command("video", {"prompt": "a dog"})
        small = (await rec.next_intent(2)).origin
        big_ref = await adapter.send(small, _success(video, small.user_id, "j2"), key="too-big")
    uploaded = fake.messages[_message_id(ref)]
    assert uploaded["content"] == f"<@{fake.user_id}>"
    assert [a["filename"] for a in uploaded["attachments"]] == ["out.mp4"]
    assert fake.uploads[uploaded["attachments"][0]["id"]] == MP4
    linked = fake.messages[_message_id(big_ref)]
    assert linked["attachments"] == [] and linked["content"] == f"<@{fake.user_id}>\n{video}"


async def test_a_forbidden_channel_falls_back_to_a_dm(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.slash_command("video", {"prompt": "a cat"})
        origin = (await rec.next_intent()).origin
        fake.forbidden_channels.add(fake.channel_id)
        ref = await adapter.send(origin, _prenotice(), key="a")
        again = await adapter.send(origin, _progress(5), key="b")
        assert await adapter.send(origin, _progress(9), key="b") == again  # a repeated key posts nothing
    dm = fake.dm_channel_id(fake.user_id)
    assert ref.startswith(f"{dm}:") and again.startswith(f"{dm}:")
    assert (
        len(fake.requests_to("POST", f"/channels/{fake.channel_id}/messages$")) == 1
    )  # the 403 is remembered
    assert len(fake.requests_to("POST", f"/channels/{dm}/messages$")) == 2


async def test_commands_are_registered_with_chinese_localizations(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake, command_guild_ids=(fake.guild_id,)), texts=TEXTS)
    async with running(adapter, Recorder()):
        pass
    assert "global" not in fake.commands
    commands = {c["name"]: c for c in fake.commands[fake.guild_id]}
    assert set(commands) == {"video", "video-settings", "video-jobs", "video-cancel", "video-help"}
    video = {o["name"]: o for o in commands["video"]["options"]}
    assert set(video) == {
        "prompt",
        "image",
        "last_image",
        "model",
        "duration",
        "aspect_ratio",
        "resolution",
        "image_role",
    }
    assert [o["type"] for o in (video["prompt"], video["image"], video["last_image"])] == [3, 11, 11]
    assert video["prompt"]["required"] and video["prompt"]["description_localizations"]["zh-CN"]
    models = {c["value"]: c for c in video["model"]["choices"]}
    assert models["ima-pro"]["name_localizations"]["zh-CN"] == TEXTS("discord.choice.model.ima-pro", "zh")
    assert "en-US" not in models["ima-pro"]["name_localizations"]  # English is the default name itself
    assert commands["video"]["description_localizations"]["zh-TW"] == TEXTS(
        "discord.command.video.description", "zh"
    )
    assert commands["video-cancel"]["options"][0]["name"] == "job_id"
    assert commands["video"]["contexts"] == [0, 1]  # guilds and the bot's DM


async def test_only_unprivileged_intents_are_requested(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    async with running(adapter, Recorder()):
        pass
    intents = fake.identifies[0]["intents"]
    assert intents & PRIVILEGED_INTENTS == 0
    assert intents & (1 << 0) and intents & (1 << 9) and intents & (1 << 12)  # guilds, guild and DM messages


# -- golden MESSAGE_CREATE payloads through discord.py's own models (issue 15) -----------------------

GOLDEN = Path(__file__).parents[1] / "data" / "discord"
MESSAGE_GOLDENS = sorted(
    p for p in GOLDEN.glob("message_*.json") if json.loads(p.read_text(encoding="utf-8"))["kind"] == "message"
)


CASE_TEXT = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in MESSAGE_GOLDENS}


def _as_fake(case: dict, fake: FakeDiscord) -> dict:
    """The golden case with its ids replaced by the fake's (bot, its role, guild, channels, DM)."""
    text = json.dumps(case)
    for golden, ours in [
        (case["bot_id"], fake.bot_id),
        ("1100000000000000090", fake.bot_role_id),
        ("1100000000000000001", fake.guild_id),
        ("1100000000000000002", fake.channel_id),
        ("1100000000000000009", fake.dm_channel_id(fake.user_id)),
    ]:
        text = text.replace(golden, ours)
    return json.loads(text)


@pytest.mark.parametrize("path", MESSAGE_GOLDENS, ids=[p.stem for p in MESSAGE_GOLDENS])
async def test_golden_message_through_discord_py_gives_the_golden_intent(
    fake: FakeDiscord, path: Path
) -> None:
    case = _as_fake(CASE_TEXT[path.stem], fake)
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        await fake.dispatch("MESSAGE_CREATE", case["payload"])
        # A marker DM after it: once the marker arrived, the golden one was handled (or dropped).
        await fake.send_message("marker: a lighthouse at dawn", dm=True)
        count = 1
        while "marker" not in getattr(await rec.next_intent(count), "text", ""):
            count += 1
    got = [i for i in rec.intents if "marker" not in getattr(i, "text", "")]
    expected = case["expected"]
    if expected is None:
        assert got == [], case["description"]
        return
    (intent,) = got
    as_json = json.loads(json.dumps({"intent": type(intent).__name__, **dataclasses.asdict(intent)}))
    assert as_json == expected, case["description"]


async def test_attachments_with_no_declared_type_are_sniffed_after_a_capped_download(
    fake: FakeDiscord,
) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    rec = Recorder(adapter, read_attachments=True, max_bytes=4096)
    png = fake.add_cdn_file("image0", PNG, content_type=None)  # a paste from a phone: no type, no extension
    zipped = fake.add_cdn_file("blob", b"PK\x03\x04" + bytes(200), content_type=None)
    big = fake.add_cdn_file("huge", PNG + bytes(10_000), content_type=None, declared_size=100)
    async with running(adapter, rec):
        await fake.send_message("animate these", attachments=[png, zipped, big], dm=True)
        intent = await rec.next_intent()
    assert [a.content_type for a in intent.attachments] == ["", "", ""]  # type: ignore[attr-defined]
    assert rec.images == [PNG]
    keys = [getattr(e, "key", "") for e in rec.rejections]
    # the third declared 100 bytes: the cap, not the declaration, stopped its download
    assert keys == ["attachment_not_image", "attachment_too_large"]
