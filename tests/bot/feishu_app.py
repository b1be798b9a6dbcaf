"""A whole bot for Feishu tests: the real App on FakeFeishu and the emulator, sharing one virtual clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.app import App
from bot.config import Config, parse_config
from bot.jobs.model import Job, JobState
from bot.jobs.texts import Texts
from ima.emulator import DEFAULT_API_KEY, Emulator, EmulatorConfig, EmuTask
from tests.bot.discord_app import VirtualClock
from tests.fakes.feishu_events import WebhookPoster
from tests.fakes.feishu_server import FakeFeishu, Message
from tests.waiting import until_job_change

T = TypeVar("T")

TEXTS = Texts.load()
FAST, PRO = "Ima Sevio 1.0-Fast", "Ima Sevio 1.0"
_PERCENT = re.compile(r"^[▰▱]+ (\d+)%$")

USER = "ou_user0001"
GROUP = "oc_group0001"
P2P = "oc_p2p0001"
ENCRYPT_KEY = "pipeline-encrypt-key"
VERIFICATION_TOKEN = "pipeline-verification-token"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(96))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(60))
# Short emulator tasks: with a 10 s poll and 30 s progress cadence a Fast job shows two progress steps.
EMULATOR = EmulatorConfig(base_seconds={"ima-pro": 50.0, "ima-pro-fast": 40.0})
JOBS = {"poll_interval": 10, "progress_interval_fast": 30, "progress_interval_pro": 30}


@contextlib.asynccontextmanager
async def open_rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    """Starts the fake Feishu (own thread) and the emulator on a virtual clock; stops both after."""
    clock = VirtualClock(time.time())
    with FakeFeishu() as fake:
        async with Emulator(EMULATOR, clock=clock) as emu:
            yield FeishuRig(fake, emu, clock, tmp_path / "jobs.sqlite3")


@dataclass
class FeishuRig:
    """The fake Feishu, the emulator, the clock and the store file one test's Apps share."""

    fake: FakeFeishu
    emulator: Emulator
    clock: VirtualClock
    store_path: Path

    def config(self, *, transport: str = "ws", jobs: dict[str, Any] | None = None, **feishu: Any) -> Config:
        """The bot's config as an operator would write it, pointed at the fakes; jobs and feishu
        override keys of those sections."""
        section: dict[str, Any] = {
            "enabled": True,
            "app_id": self.fake.app_id,
            "app_secret": self.fake.app_secret,
            "domain": self.fake.url,
            "transport": transport,
            # Progress pacing is the runner's (virtual time); the adapter's real-time pacing would
            # swallow progress that arrives milliseconds apart. Its 0.25 s patch floor still applies.
            "min_patch_interval": 0,
        }
        if transport == "webhook":
            section.update(encrypt_key=ENCRYPT_KEY, verification_token=VERIFICATION_TOKEN)
        section.update(feishu)
        return parse_config(
            {
                "ima": {
                    "api_key": DEFAULT_API_KEY,
                    "base_url": self.emulator.base_url,
                    "upload_base_url": self.emulator.upload_base_url,
                },
                "store": {"path": str(self.store_path)},
                "jobs": {**JOBS, **(jobs or {})},
                "feishu": section,
                "web": {"enabled": transport == "webhook", "host": "127.0.0.1", "port": 0},
            }
        )

    @contextlib.asynccontextmanager
    async def app(
        self, *, transport: str = "ws", jobs: dict[str, Any] | None = None, **feishu: Any
    ) -> AsyncIterator[App]:
        """A started App whose adapter has its token, its identity and (ws) a live long connection."""
        config = self.config(transport=transport, jobs=jobs, **feishu)
        app = App(config, clock=self.clock, sleep=self.clock.sleep)
        connects = self.fake.ws.connects
        try:
            await app.start()
            (adapter,) = app.adapters
            async with asyncio.timeout(10):
                await adapter.wait_started()
            if transport == "ws":
                ws = self.fake.ws
                await self.fake.wait_until(lambda: ws.connects > connects and ws.connected_clients == 1)
            yield app
        finally:
            await app.close()
        if transport == "ws":  # the next App's long connection must not meet this one's
            await self.fake.wait_until(lambda: self.fake.ws.connected_clients == 0)

    @contextlib.asynccontextmanager
    async def poster(self, app: App) -> AsyncIterator[WebhookPoster]:
        """Posts to the App's webhook route as Feishu does (encrypted, signed, with the token)."""
        assert app.web is not None
        url = f"{app.web.url}/feishu/events"
        async with WebhookPoster(url, encrypt_key=ENCRYPT_KEY, verification_token=VERIFICATION_TOKEN) as p:
            yield p

    async def until(self, app: App, check: Callable[[], Awaitable[T | None]], within: float = 15.0) -> T:
        """Returns check()'s first truthy result, re-checked whenever a job changes state."""
        return await until_job_change(app.runner.listeners, check, within)

    async def jobs(
        self, app: App, count: int = 1, *, users: Iterable[str] = (USER,), within: float = 15.0
    ) -> list[Job]:
        """Waits until the users have `count` jobs, all finished with their final card delivered;
        returns them oldest first."""
        store = app.store
        assert store is not None
        keys = [f"feishu:{u}" for u in users]

        async def done() -> list[Job] | None:
            jobs = [j for k in keys for j in await store.recent_jobs(k, limit=50)]
            if len(jobs) >= count and all(j.finished and j.result_ref for j in jobs):
                return sorted(jobs, key=lambda j: j.created_at)
            return None

        return await self.until(app, done, within)

    # what users see on the fake -------------------------------------------------------------------

    def replies_to(self, message_id: str, msg_type: str | None = None) -> list[Message]:
        """The bot's messages replying to a user's message, oldest first."""
        return [m for m in self.fake.bot_messages(msg_type) if m.parent_id == message_id]

    def patches(self, card_id: str) -> list[dict[str, Any]]:
        """The card of every accepted PATCH of card_id, in order."""
        calls = self.fake.calls_to("PATCH", f"/messages/{card_id}$")
        return [json.loads(c.body["content"]) for c in calls if c.status == 200 and c.code == 0]

    def sent_card(self, card_id: str) -> dict[str, Any]:
        """The card as first posted (the reply that created card_id)."""
        uuid = self.fake.messages[card_id].uuid
        (call,) = [c for c in self.fake.calls_to("POST", "/reply$") if c.body.get("uuid") == uuid]
        return json.loads(call.body["content"])


def only_task(emu: Emulator) -> EmuTask:
    (task,) = emu.tasks.values()
    return task


def uploaded(emu: Emulator, url: str) -> bytes:
    """The bytes the bot PUT to the emulator's upload host for a CDN url it handed to a create."""
    assert url.startswith(f"{emu.upload_base_url}/cdn/"), url
    return emu.state.uploads[url.split("/cdn/", 1)[1]].data


def percents(cards: list[dict[str, Any]]) -> list[int]:
    return [int(m.group(1)) for c in cards for line in texts(c) if (m := _PERCENT.match(line))]


def ping_text(ping: Message) -> str:
    return json.loads(ping.content)["text"]


def assert_final_card(rig: FeishuRig, card: Message, job: Job, *, other: str) -> None:
    """The card as the user finally sees it: the result, the cover, play/Retry/other-model, a mention."""
    shown = card.card
    assert job.state is JobState.SUCCEEDED and job.notice_ref == job.result_ref == card.message_id
    assert title(shown) == TEXTS("success.title", "en") and shown["header"]["template"] == "green"
    assert TEXTS("success.video", "en", url=job.result_url) in texts(shown)
    (key,) = image_keys(shown)  # IMA's cover, downloaded and uploaded to Feishu as a message image
    assert rig.fake.images[key] == rig.emulator.state.assets["jpg"] and job.task_id in job.cover_url
    play, _continue, retry, switch, *_variations = buttons(shown)  # issue 14: Continue ▶ and variations
    assert (play["url"], play["text"]["content"]) == (job.result_url, TEXTS("button.open_video", "en"))
    assert retry["value"] == {"action": "retry", "job_id": job.id}
    assert switch["value"] == {"action": "other_model", "job_id": job.id}
    assert switch["text"]["content"] == TEXTS("button.other_model", "en", model=other)
    if not job.origin.is_direct:
        assert card_mentions(shown) == [job.origin.user_id]


def message_id(event: dict[str, Any]) -> str:
    return event["event"]["message"]["message_id"]


def title(card: dict[str, Any]) -> str:
    return card["header"]["title"]["content"]


def texts(card: dict[str, Any]) -> list[str]:
    """The plain texts of a card's div elements, split into lines."""
    out: list[str] = []
    for el in card["elements"]:
        if el["tag"] == "div" and el["text"]["tag"] == "plain_text":
            out += el["text"]["content"].splitlines()
    return out


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for el in card["elements"] if el["tag"] == "action" for b in el["actions"]]


def image_keys(card: dict[str, Any]) -> list[str]:
    return [el["img_key"] for el in card["elements"] if el["tag"] == "img"]


def card_mentions(card: dict[str, Any]) -> list[str]:
    """The open_ids a card @-mentions."""
    return [
        el["text"]["content"].removeprefix("<at id=").removesuffix("></at>")
        for el in card["elements"]
        if el["tag"] == "div" and el["text"]["content"].startswith("<at id=")
    ]
