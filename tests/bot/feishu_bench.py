"""Test scaffolding for the Feishu adapter: a running adapter on the fakes and a tiny pipeline stand-in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.adapters.feishu import FeishuAdapter, FeishuSettings
from bot.core import Action, ActionIntent, Button, ButtonStyle, GenerationIntent, Intent, Notice, NoticeKind
from bot.jobs.texts import Texts
from tests.fakes.feishu_events import WebhookPoster
from tests.fakes.feishu_server import FakeFeishu

TEXTS = Texts.load()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(40)
JPEG = b"\xff\xd8\xff\xe0" + bytes(60)
ENCRYPT_KEY = "test-encrypt-key"
VERIFICATION_TOKEN = "test-verification-token"


def settings_for(fake: FakeFeishu, **overrides: Any) -> FeishuSettings:
    """Settings pointing at fake, with millisecond pacing and backoff."""
    values: dict[str, Any] = {
        "app_id": fake.app_id,
        "app_secret": fake.app_secret,
        "domain": fake.url,
        "min_patch_interval": 0.0,
        "patch_floor": 0.0,
        "retry_base": 0.01,
        "http_timeout": 5.0,
    }
    if overrides.get("transport") == "webhook":
        values.update(encrypt_key=ENCRYPT_KEY, verification_token=VERIFICATION_TOKEN)
    values.update(overrides)
    return FeishuSettings(**values)


@dataclass
class Script:
    """What the stand-in does for each generation intent."""

    progress: tuple[int, ...] = (30, 60, 90)
    video_url: str = ""
    cover_url: str = ""
    final: NoticeKind = NoticeKind.SUCCESS


@dataclass
class StandIn:
    """Records intents; for a generation intent it runs a miniature job through send/edit.

    gate: when given, every call waits for it first (a slow pipeline). answer: returned to the adapter.
    """

    script: Script | None = None
    gate: asyncio.Event | None = None
    answer: Notice | None = None
    adapter: FeishuAdapter | None = None
    intents: list[Intent] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)
    cards: dict[str, str] = field(default_factory=dict)  # job id -> card message id
    jobs: list[asyncio.Task[None]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, intent: Intent) -> Notice | None:
        self.intents.append(intent)
        self._arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.script is not None and isinstance(intent, GenerationIntent):
            self.jobs.append(asyncio.create_task(self._job(intent, f"job{len(self.jobs) + 1}")))
        return self.answer

    async def _job(self, intent: GenerationIntent, job_id: str) -> None:
        assert self.adapter is not None and self.script is not None
        origin, s = intent.origin, self.script
        for att in intent.attachments:
            self.images.append(await self.adapter.read_attachment(att, max_bytes=5 * 1024 * 1024))
        pre = Notice(NoticeKind.PRENOTICE, "Queued", (f"Prompt: {intent.text}",), job_id=job_id)
        ref = await self.adapter.send(origin, pre, key=f"{job_id}:prenotice")
        for p in s.progress:
            step = Notice(NoticeKind.PROGRESS, "Generating", progress=p, job_id=job_id)
            ref = await self.adapter.edit(origin, ref, step)
        buttons = (
            Button("Retry", Action.RETRY, job_id),
            Button("", Action.OTHER_MODEL, job_id, style=ButtonStyle.PRIMARY),
        )
        final = Notice(
            s.final,
            "Done",
            ("All set",),
            buttons=buttons,
            video_url=s.video_url,
            cover_url=s.cover_url,
            job_id=job_id,
            mention_user_id=origin.user_id,
        )
        ref = await self.adapter.edit(origin, ref, final)
        self.cards[job_id] = ref

    async def wait_intents(self, count: int, within: float = 5.0) -> list[Intent]:
        async with asyncio.timeout(within):
            while len(self.intents) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.intents

    async def finish_jobs(self) -> None:
        """Waits for every job (re-raising their errors)."""
        await asyncio.gather(*self.jobs)

    def actions(self) -> list[ActionIntent]:
        return [i for i in self.intents if isinstance(i, ActionIntent)]


@dataclass
class Bench:
    adapter: FeishuAdapter
    standin: StandIn
    fake: FakeFeishu
    poster: WebhookPoster | None = None
    run_task: asyncio.Task[None] | None = None


@contextlib.asynccontextmanager
async def running(
    fake: FakeFeishu,
    standin: StandIn | None = None,
    *,
    clock: Callable[[], float] | None = None,
    **overrides: Any,
) -> AsyncIterator[Bench]:
    """Runs a FeishuAdapter against fake (ws by default; transport="webhook" also serves the route)."""
    standin = standin or StandIn()
    kwargs: dict[str, Any] = {"texts": TEXTS}
    if clock is not None:
        kwargs["clock"] = clock
    adapter = FeishuAdapter(settings_for(fake, **overrides), **kwargs)
    standin.adapter = adapter
    run_task = asyncio.create_task(adapter.run(standin))
    started = asyncio.create_task(adapter.wait_started())
    done, _ = await asyncio.wait({run_task, started}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if started not in done:
        started.cancel()
        await adapter.close()
        await run_task  # raises the start-up error
        raise TimeoutError("adapter did not start")
    bench = Bench(adapter, standin, fake, run_task=run_task)
    runner: web.AppRunner | None = None
    try:
        if overrides.get("transport", "ws") == "ws":
            await fake.wait_ws_connected()
        else:
            app = web.Application()
            app.router.add_post("/feishu/events", adapter.handle_webhook)
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            s = settings_for(fake, **overrides)
            bench.poster = WebhookPoster(
                f"http://127.0.0.1:{port}/feishu/events",
                encrypt_key=s.encrypt_key,
                verification_token=s.verification_token,
            )
        yield bench
        await standin.finish_jobs()
    finally:
        for job in standin.jobs:
            job.cancel()
        await asyncio.gather(*standin.jobs, return_exceptions=True)
        await adapter.close()
        await run_task
        if bench.poster is not None:
            await bench.poster.close()
        if runner is not None:
            await runner.cleanup()


def card_of(fake: FakeFeishu, message_id: str) -> dict[str, Any]:
    return fake.messages[message_id].card


def card_texts(card: dict[str, Any]) -> list[str]:
    """Every plain text shown in a card (header, divs, notes, button labels)."""
    out = [card["header"]["title"]["content"]]
    for el in card["elements"]:
        if "text" in el:
            out.append(el["text"]["content"])
        for sub in el.get("elements", []) + el.get("actions", []):
            out.append(sub.get("content") or sub.get("text", {}).get("content", ""))
    return out
