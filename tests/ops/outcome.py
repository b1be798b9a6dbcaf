"""What the chaos and replica tests read on the fake Feishu: final cards per job, budget refusals, and a
wait that re-checks after the bot's requests (a child process gives no other signal)."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any

from bot.jobs.texts import Texts
from tests.fakes.feishu_server import FakeFeishu

RECHECK_S = 0.5
TEXTS = Texts.load()
FINAL_TITLES = {
    TEXTS("success.title", "en"),
    TEXTS("failure.title", "en"),
    TEXTS("cancelled.title", "en"),
    TEXTS("uncertain.title", "en"),
}


def final_cards(fake: FakeFeishu) -> collections.Counter[str]:
    """How many of the bot's cards now show a final, per job (a card's uuid starts with its job id)."""
    out: collections.Counter[str] = collections.Counter()
    for m in fake.bot_messages("interactive"):
        if m.card["header"]["title"]["content"] in FINAL_TITLES:
            out[m.uuid.split(":")[0]] += 1
    return out


def refusals(fake: FakeFeishu, budget: int) -> set[str]:
    """The user messages answered with a budget refusal instead of a job (every user spent `budget`)."""
    said = TEXTS("input.budget_exceeded", "en", spent=budget, limit=budget)[:30]
    return {m.parent_id for m in fake.bot_messages() if said in m.content}


async def until(fake: FakeFeishu, check: Callable[[], Any], within: float) -> None:
    """Returns once check() (sync or async) holds: re-checked after every request the bot makes to the
    fake, and at least every RECHECK_S (the bot writes the store after its last request)."""
    async with asyncio.timeout(within):
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            seen = len(fake.calls)
            try:
                await fake.wait_until(lambda s=seen: len(fake.calls) > s, within=RECHECK_S)
            except TimeoutError:
                pass
