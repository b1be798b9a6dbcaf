"""An App with a webhook-mode Feishu adapter on the fake Feishu server (shared by the webhook tests)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ima.emulator import Emulator, EmulatorConfig
from tests.bot.harness import VirtualClock
from tests.fakes.feishu_events import BOT_OPEN_ID, WebhookPoster, encrypt
from tests.fakes.feishu_server import FakeFeishu

from .apps import Running, running_app

ENCRYPT_KEY = "ops-encrypt-key-0123456789"
VERIFICATION_TOKEN = "ops-verification-token-0123"


def feishu_section(fake: FakeFeishu, **overrides: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "app_id": fake.app_id,
        "app_secret": fake.app_secret,
        "domain": fake.url,
        "transport": "webhook",
        "encrypt_key": ENCRYPT_KEY,
        "verification_token": VERIFICATION_TOKEN,
        "min_patch_interval": 0,
        **overrides,
    }


@asynccontextmanager
async def feishu_app(tmp: Path, **feishu: Any) -> AsyncIterator[tuple[Running, FakeFeishu, WebhookPoster]]:
    """Yields the running App, the fake Feishu, and a poster signing pushes to the App's webhook route."""
    clock = VirtualClock()
    with FakeFeishu(bot_open_id=BOT_OPEN_ID) as fake:
        async with (
            Emulator(EmulatorConfig(), clock=clock) as emu,
            running_app(tmp, emu, clock, feishu=feishu_section(fake, **feishu)) as r,
        ):
            adapter = next(a for a in r.app.adapters if a.platform == "feishu")
            await asyncio.wait_for(adapter.wait_started(), 10)  # type: ignore[attr-defined]
            async with WebhookPoster(
                r.url + "/feishu/events",
                encrypt_key=feishu.get("encrypt_key", ENCRYPT_KEY),
                verification_token=feishu.get("verification_token", VERIFICATION_TOKEN),
            ) as poster:
                yield r, fake, poster


async def post_signed(
    r: Running, payload: Any, *, stamp: float | None = None, raw: bytes | None = None
) -> tuple[int, str]:
    """Posts payload (or raw bytes) the way Feishu does, encrypted and signed with the ops keys, stamped
    `stamp` (default: now). JSON is ASCII-escaped, so a lone surrogate travels as Feishu would escape it."""
    if raw is None:
        body = dict(payload)
        if isinstance(body.get("header"), dict):
            body["header"] = {**body["header"], "token": VERIFICATION_TOKEN}
        plain = json.dumps(body).encode()
        raw = json.dumps({"encrypt": encrypt(plain, ENCRYPT_KEY)}).encode()
    ts, nonce = str(int(time.time() if stamp is None else stamp)), os.urandom(8).hex()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Lark-Request-Timestamp": ts,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": hashlib.sha256((ts + nonce + ENCRYPT_KEY).encode() + raw).hexdigest(),
    }
    async with r.http.post(r.url + "/feishu/events", data=raw, headers=headers) as resp:
        return resp.status, await resp.text()
