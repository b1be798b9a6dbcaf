"""The fake Feishu (tests/fakes) in a process of its own, driven over a small control API, so its work
and its clock readings never share the bot's process. Prints its URLs, serves until terminated.

    POST /burst {"count": n, "tag": "x"}   push n messages at once; -> {"acks": [s...], "codes": [...]}
    POST /one {"tag": "x"}                 push one message, wait for the bot's first reply card;
                                           -> {"ack": s, "prenotice": s}
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.feishu_events import BOT_OPEN_ID, text_event
from tests.fakes.feishu_server import FakeFeishu

_users = itertools.count(1)


def _event(tag: str) -> dict:  # type: ignore[type-arg]
    n = next(_users)
    return text_event(f"/video 5s {tag} clip {n}: a red fox running through deep snow at dawn",
                      mention_bot=BOT_OPEN_ID, sender=f"ou_{tag}{n:06d}")  # fmt: skip


async def main() -> None:
    fake = FakeFeishu(bot_open_id=BOT_OPEN_ID).start()

    async def burst(request: web.Request) -> web.Response:
        body = await request.json()
        events = [_event(str(body.get("tag", "b"))) for _ in range(int(body["count"]))]
        acks = await asyncio.gather(*(fake.push_event(e, within=120) for e in events))
        return web.json_response({"acks": [a.elapsed for a in acks], "codes": [a.code for a in acks]})

    async def one(request: web.Request) -> web.Response:
        body = await request.json()
        event = _event(str(body.get("tag", "o")))
        path = f"/open-apis/im/v1/messages/{event['event']['message']['message_id']}/reply"
        sent = time.monotonic()
        ack = await fake.push_event(event, within=60)
        await fake.wait_until(lambda: any(c.path == path for c in reversed(fake.calls)), within=60)
        at = next(c.at for c in fake.calls if c.path == path)
        return web.json_response({"ack": ack.elapsed, "prenotice": at - sent})

    app = web.Application()
    app.router.add_post("/burst", burst)
    app.router.add_post("/one", one)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"fake {fake.url} control http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        fake.stop()


if __name__ == "__main__":
    asyncio.run(main())
