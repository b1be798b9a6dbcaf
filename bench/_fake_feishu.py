"""The fake Feishu (tests/fakes) in a process of its own, driven over a small control API, so its work
and its clock readings never share the bot's process. Prints its URLs, serves until terminated.

    POST /burst {"count": n, "tag": "x"}   push n messages at once; -> {"acks": [s...], "codes": [...]}
    POST /one {"tag": "x"}                 push one message, wait for the bot's first reply card;
                                           -> {"ack": s, "prenotice": s}
    POST /parent {}                        record a user's message (to reply to); -> {"message_id": id}

    --tls CERT KEY                         also serve the Open API over TLS (a forwarder in this process);
                                           the first line then ends with "tls https://127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import ssl
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
    return text_event(
        f"/video 5s {tag} clip {n}: a red fox running through deep snow at dawn",
        mention_bot=BOT_OPEN_ID,
        sender=f"ou_{tag}{n:06d}",
    )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def tls_forwarder(port: int, cert: str, key: str) -> asyncio.Server:
    """A TLS endpoint that forwards every connection to the fake's plain port."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)


async def main(tls: list[str] | None) -> None:
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

    async def parent(request: web.Request) -> web.Response:
        event = fake.register(_event("parent"))
        return web.json_response({"message_id": event["event"]["message"]["message_id"]})

    app = web.Application()
    app.router.add_post("/burst", burst)
    app.router.add_post("/one", one)
    app.router.add_post("/parent", parent)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    line = f"fake {fake.url} control http://127.0.0.1:{runner.addresses[0][1]}"
    if tls:
        server = await tls_forwarder(fake.port, *tls)
        line += f" tls https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    print(line, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        fake.stop()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    asyncio.run(main(p.parse_args().tls))
