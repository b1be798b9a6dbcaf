"""Issue 13: with several replicas, each runs the gateway shards the config gives it (discord.shard_ids of
discord.shard_count) and still sends and edits over REST: the real discord.py against the fake Discord."""

from __future__ import annotations

import pytest

from bot.adapters.discord import DiscordAdapter
from bot.config import ConfigError, parse_config
from bot.core import Notice, NoticeKind
from tests.fakes.discord_harness import TEXTS, Recorder, running, settings
from tests.fakes.discord_server import FakeDiscord


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch):
    async with FakeDiscord() as f:
        f.install(monkeypatch)
        yield f
        assert f.errors == []


async def test_a_replica_identifies_only_its_shard_and_still_sends_over_rest(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake, shard_count=2, shard_ids=(1,)), texts=TEXTS)
    rec = Recorder(adapter)
    async with running(adapter, rec):
        assert [i.get("shard") for i in fake.identifies] == [[1, 2]]
        await fake.slash_command("video", {"prompt": "a cat surfing"})
        origin = (await rec.next_intent()).origin
        ref = await adapter.send(origin, _notice("⏳ one"), key="j1:prenotice")
        await adapter.edit(origin, ref, _notice("⏳ two"))
        assert fake.messages[ref.split(":")[-1]]["embeds"][0]["title"] == "⏳ two"


async def test_without_shards_the_single_connection_names_no_shard(fake: FakeDiscord) -> None:
    adapter = DiscordAdapter(settings(fake), texts=TEXTS)
    async with running(adapter, Recorder(adapter)):
        assert [i.get("shard") for i in fake.identifies] == [None]


def test_shard_ids_are_checked_against_shard_count() -> None:
    c = parse_config({"discord": {"shard_count": 4, "shard_ids": ["0", 3]}})
    assert c.discord.shard_ids == [0, 3] and c.discord.shard_count == 4
    for ids, count, said in (
        ([4], 4, "needs discord.shard_count above 4"),
        (["x"], 4, "whole numbers"),
        ([1, 1], 4, "twice"),
        ([0], 0, "above 0"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_config({"discord": {"shard_count": count, "shard_ids": ids}})
        assert info.value.key == "discord.shard_ids" and said in info.value.problem


def _notice(text: str) -> Notice:
    return Notice(NoticeKind.PROGRESS, text, (), 0, job_id="j1")
