"""Bench: CPU of one Feishu call through the bot (FeishuApi on the adapter's shared aiohttp session) beside a
bare call on a shared aiohttp session in the same run, over http and https, against the fake Feishu in its own
process; and, for reference, lark-oapi's own async call (a new httpx client, so a new TLS context, per call).

    python bench/feishu_calls.py                       # 600 calls per variant, http and https
    python bench/feishu_calls.py --calls 300 --lark 20

The "bare" call is the floor of any useful call: send the same bytes, read the answer, parse its JSON, look
at its code. Variants run interleaved in rounds, so a noisy neighbour hits both sides alike.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import cpu_s, fake_feishu_process, machine, self_signed
from bot.adapters.feishu.api import FeishuApi
from bot.speed import loop_name

APP_ID, APP_SECRET = "cli_test_app", "test-secret"
ROUNDS = 3
# A progress card the size the bot sends (about 1 KB, mixed Chinese and ASCII).
CARD = json.dumps(
    {
        "config": {"update_multi": True, "wide_screen_mode": True},
        "header": {"template": "wathet", "title": {"tag": "plain_text", "content": "⏳ 生成中… Generating"}},
        "elements": [
            {"tag": "markdown", "content": "**一只小狗在草地上奔跑**, golden hour, cinematic, 35mm"},
            {
                "tag": "markdown",
                "content": "Ima Sevio 1.0-Fast · 10 秒 · 9:16 · 720p · 预计 1–2 分钟 · 30 积分",
            },
            {"tag": "markdown", "content": "进度 ▓▓▓▓▓▓░░░░░░░░ 42% · 已用 0:48"},
            {
                "tag": "action",
                "actions": [
                    {
                        "tag": "button",
                        "text": {"tag": "plain_text", "content": "取消 Cancel"},
                        "type": "default",
                        "value": {"job": "j_0123456789", "a": "cancel"},
                    }
                ],
            },
        ],
    },
    ensure_ascii=False,
)

Call = Callable[[int], Awaitable[object]]


async def cpu_per_call(calls: dict[str, Call], n: int) -> dict[str, list[float]]:
    """Runs every variant n times in ROUNDS interleaved rounds; returns CPU ms per call, per round."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    counters = dict.fromkeys(calls, 0)
    for name, call in calls.items():  # warm up: connections open, code paths hot
        for _ in range(5):
            await call(counters[name])
            counters[name] += 1
    for _ in range(ROUNDS):
        for name, call in calls.items():
            k = max(1, n // ROUNDS)
            gc.collect()
            c0 = cpu_s()
            for _ in range(k):
                await call(counters[name])
                counters[name] += 1
            out[name].append((cpu_s() - c0) / k * 1000)
    return out


def line(name: str, ms: list[float], floor: list[float] | None) -> str:
    text = f"    {name:<26} {min(ms):7.3f} ms min  {sorted(ms)[len(ms) // 2]:7.3f} ms median"
    if floor is not None:
        ratios = sorted(a / b for a, b in zip(ms, floor, strict=True))
        text += f"   ratio to bare: min {ratios[0]:.2f}x median {ratios[len(ratios) // 2]:.2f}x"
    return text


async def scheme(
    label: str, base: str, control: str, connector: aiohttp.TCPConnector | None, n: int, n_lark: int
) -> None:
    async with aiohttp.ClientSession(connector=connector) as session:
        api = FeishuApi(session, domain=base, app_id=APP_ID, app_secret=APP_SECRET, clock=time.monotonic)
        token = await api.token.get()
        bare_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
        async with session.post(control + "/parent", json={}) as resp:
            parent = (await resp.json())["message_id"]
        cards: list[str] = []

        async def bare_reply(i: int) -> object:
            body = json.dumps(
                {"content": CARD, "msg_type": "interactive", "uuid": f"bare-{label}-{i}"}, ensure_ascii=False
            ).encode()
            url = f"{base}/open-apis/im/v1/messages/{parent}/reply"
            async with session.post(url, data=body, headers=bare_headers) as r:
                answer = json.loads(await r.read())
            assert answer["code"] == 0, answer
            cards.append(answer["data"]["message_id"])
            return answer

        async def bot_reply(i: int) -> object:
            ref = await api.reply(parent, "interactive", CARD, uuid=f"bot-{label}-{i}")
            cards.append(ref)
            return ref

        replies = await cpu_per_call({"bare reply": bare_reply, "bot reply (FeishuApi)": bot_reply}, n)

        def card(i: int) -> str:  # round robin over every card: each stays under the 5 patches/s cap
            return cards[i % len(cards)]

        async def bare_patch(i: int) -> object:
            body = json.dumps({"content": CARD.replace("42%", f"{i % 95}%")}, ensure_ascii=False).encode()
            async with session.patch(
                f"{base}/open-apis/im/v1/messages/{card(i)}", data=body, headers=bare_headers
            ) as r:
                answer = json.loads(await r.read())
            assert answer["code"] == 0, answer
            return answer

        async def bot_patch(i: int) -> object:
            return await api.patch(card(i + 7), CARD.replace("42%", f"{i % 95}%"))

        patches = await cpu_per_call({"bare patch": bare_patch, "bot patch (FeishuApi)": bot_patch}, n)
        lark_ms: list[float] = []
        if n_lark:
            lark_ms = (await cpu_per_call({"lark": lark_patch(base, token, card)}, n_lark))["lark"]
    print(f"  {label}: {n // ROUNDS * ROUNDS} calls per variant in {ROUNDS} interleaved rounds, CPU per call")
    print(line("bare reply (shared session)", replies["bare reply"], None))
    print(line("bot reply (FeishuApi)", replies["bot reply (FeishuApi)"], replies["bare reply"]))
    print(line("bare patch (shared session)", patches["bare patch"], None))
    print(line("bot patch (FeishuApi)", patches["bot patch (FeishuApi)"], patches["bare patch"]))
    if lark_ms:
        print(line(f"lark-oapi apatch ({n_lark // ROUNDS * ROUNDS} calls)", lark_ms, patches["bare patch"]))


def lark_patch(base: str, token: str, card: Callable[[int], str]) -> Call:
    """lark-oapi's own async patch, as api.py called it before: a new httpx.AsyncClient per call."""
    import lark_oapi as lark
    from lark_oapi.api.im.v1 import PatchMessageRequest, PatchMessageRequestBody

    client = (
        lark.Client.builder()
        .app_id(APP_ID)
        .app_secret(APP_SECRET)
        .domain(base)
        .enable_set_token(True)
        .log_level(lark.LogLevel.WARNING)
        .build()
    )
    option = lark.RequestOption.builder().tenant_access_token(token).build()

    async def call(i: int) -> object:
        body = PatchMessageRequestBody.builder().content(CARD.replace("42%", f"{i % 95}%")).build()
        request = PatchMessageRequest.builder().message_id(card(i + 3)).request_body(body).build()
        resp = await client.im.v1.message.apatch(request, option)
        assert resp.code == 0, resp.msg
        return resp

    return call


async def run(n: int, n_lark: int, schemes: list[str]) -> None:
    print(f"feishu calls: CPU per call in this process (the fake Feishu runs in its own); loop {loop_name()}")
    print(f"  machine {machine()}")
    with tempfile.TemporaryDirectory(prefix="imabot-bench-tls-") as tmp:
        cert, key, bundle = self_signed(Path(tmp))
        os.environ["SSL_CERT_FILE"] = bundle  # lark-oapi's httpx reads it: the bundle plus our certificate
        async with fake_feishu_process((cert, key)) as urls:
            if "http" in schemes:
                await scheme("http", urls["fake"], urls["control"], None, n, n_lark)
            if "https" in schemes:
                ctx = ssl.create_default_context(cafile=bundle)  # once per session, as the bot does
                await scheme("https", urls["tls"], urls["control"], aiohttp.TCPConnector(ssl=ctx), n, n_lark)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=600, help="calls per variant")
    p.add_argument("--lark", type=int, default=30, help="lark-oapi calls for reference (0: skip)")
    p.add_argument("--scheme", action="append", choices=["http", "https"], help="default: both")
    p.add_argument("--loop", choices=["auto", "asyncio"], default="auto", help="asyncio: never uvloop")
    a = p.parse_args()
    if a.loop == "asyncio":
        os.environ["IMABOT_LOOP"] = "asyncio"
    from bot.speed import run as run_on_loop

    run_on_loop(run(a.calls, a.lark, a.scheme or ["http", "https"]))


if __name__ == "__main__":
    main()
