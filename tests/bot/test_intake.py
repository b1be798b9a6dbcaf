"""The decision before any job, end to end: commands, chatter and unknown slash words never become a job in
any adapter; a thin prompt waits for its Generate button, also across a restart."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.adapters.console import to_intent
from bot.core import Action, ActionIntent, Notice
from bot.jobs.model import JobState
from bot.jobs.texts import Texts
from ima.emulator import Emulator, EmulatorConfig
from tests.bot.discord_app import Rig, VirtualClock, custom_ids, embed
from tests.bot.feishu_app import P2P, USER, open_rig
from tests.bot.harness import pipeline
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.feishu_events import card_action_event, text_event

TEXTS = Texts.load()

# What people send a video bot that is not a request: each must get an answer and never a job.
NON_REQUESTS = [
    "hi",
    "hello there!",
    "Hey bot",
    "thanks!",
    "thank you so much",
    "谢谢",
    "你好",
    "在吗？",
    "ok",
    "好的",
    "👍",
    "what can you do?",
    "你能做什么",
    "how do I use this?",
    "怎么用",
    "多少钱",
    "test",
    "/jbos",
    "/vidoe landscpae a cat on a roof",
    "/retry",
    "重试",
    "帮助",
    "/任务",
    "设置",
    "/help",
    "jobs",
    "/settings",
    "取消",
    "jbos",
    "/帮助",
    "笑死",
    "谢谢大佬🙏",
    "这个怎么收费",
    "@_user_1 在吗",
]


def _creates(emu: Emulator) -> int:
    return len([r for r in emu.requests if "create" in r.path or "task" in r.path])


async def test_console_non_requests_get_answers_and_make_no_job(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        answers: list[Notice | None] = []
        for i, line in enumerate(NON_REQUESTS):
            intent = to_intent(line, user="u1", seq=i, cwd=tmp_path)
            assert intent is not None
            answers.append(await p.dispatcher(intent))
        assert await p.store.recent_jobs("console:u1", limit=100) == []
    assert all(a is not None and a.title for a in answers), list(zip(NON_REQUESTS, answers, strict=True))
    assert len(p.emulator.requests) == 0  # not even a catalog read
    by_text = dict(zip(NON_REQUESTS, answers, strict=True))
    assert by_text["/jbos"].title == TEXTS("intake.unknown_command", "en", word="jbos", suggestion="jobs")  # type: ignore[union-attr]
    assert by_text["/retry"].title == TEXTS("intake.retry_none", "en")  # type: ignore[union-attr]
    assert by_text["hi"].title == TEXTS("intake.chatter_title", "en")  # type: ignore[union-attr]
    assert by_text["帮助"].title == TEXTS("command.help_title", "zh")  # type: ignore[union-attr]


@pytest.fixture
async def discord_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    clock = VirtualClock(time.time())
    async with FakeDiscord(clock=clock) as fake, Emulator(EmulatorConfig(), clock=clock) as emu:
        fake.install(monkeypatch)
        yield Rig(fake, emu, clock, tmp_path / "jobs.sqlite3")
        assert fake.errors == []


async def test_discord_dm_and_mention_non_requests_make_no_job(discord_rig: Rig) -> None:
    rig, fake = discord_rig, discord_rig.fake
    dm = fake.dm_channel_id(fake.user_id)
    async with rig.app() as app:
        for text in NON_REQUESTS:
            await fake.send_message(text, dm=True)
        for text in NON_REQUESTS[:6]:
            await fake.send_message(text, mention_bot=True)
        await fake.wait_until(lambda: len(rig.bot_messages(dm)) >= len(NON_REQUESTS), within=60)
        await fake.wait_until(lambda: len(rig.bot_messages(fake.channel_id)) >= 6, within=60)
        assert app.store is not None and await app.store.recent_jobs(rig.user_key, limit=100) == []
    assert len(rig.emulator.requests) == 0 and rig.emulator.tasks == {}
    titles = [embed(m)["title"] for m in rig.bot_messages(dm)]
    assert TEXTS("intake.unknown_command", "en", word="jbos", suggestion="jobs") in titles


async def test_feishu_non_requests_make_no_job(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        events = [text_event(t, chat_type="p2p", chat_id=P2P) for t in NON_REQUESTS]
        async with rig.app() as app:
            for e in events:
                await rig.fake.push_event(e)
            ids = {e["event"]["message"]["message_id"] for e in events}
            await rig.fake.wait_until(
                lambda: ids <= {m.parent_id for m in rig.fake.bot_messages()}, within=60
            )
            assert app.store is not None and await app.store.recent_jobs(f"feishu:{USER}", limit=100) == []
        assert len(rig.emulator.requests) == 0 and rig.emulator.tasks == {}


async def test_a_thin_prompt_waits_for_generate_even_across_a_restart(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        intent = to_intent("/video hi", user="u1", seq=1, cwd=tmp_path)
        assert intent is not None
        notice = await p.dispatcher(intent)
        (draft,) = await p.store.recent_jobs("console:u1")
        assert draft.state is JobState.DRAFT and draft.spec.prompt == "hi"
        assert _creates(p.emulator) == 0 and p.emulator.tasks == {}
    assert notice is not None and notice.job_id == draft.id
    assert notice.title.startswith(TEXTS("intake.confirm_title", "en", prompt="hi").rstrip("?"))
    assert "credits" in notice.title
    assert [(b.action, b.job_id) for b in notice.buttons] == [
        (Action.GENERATE, draft.id),
        (Action.HELP, draft.id),
    ]

    async with pipeline(tmp_path) as p:  # a restart: the draft is not resumed, the button still works
        assert await p.store.unfinished_jobs() == []
        assert await p.store.get_job(draft.id) == draft
        origin = draft.origin
        help_ = await p.dispatcher(ActionIntent(origin, draft.id, Action.HELP))
        assert help_ is not None and help_.title == TEXTS("command.help_title", "en")
        assert await p.dispatcher(ActionIntent(origin, draft.id, Action.GENERATE, event_keys=("k1",))) is None
        job = await p.wait_finished(draft.id, within=60)
        again = await p.dispatcher(ActionIntent(origin, draft.id, Action.GENERATE, event_keys=("k2",)))
        assert len(p.emulator.tasks) == 1
    assert job.state is JobState.SUCCEEDED and job.spec.prompt == "hi"
    assert again is not None and again.title == TEXTS("intake.draft_gone", "en")


async def test_a_thin_prompt_on_discord_runs_when_generate_is_clicked(discord_rig: Rig) -> None:
    rig, fake = discord_rig, discord_rig.fake
    dm = fake.dm_channel_id(fake.user_id)
    async with rig.app() as app:
        await fake.send_message("cat", dm=True)
        (confirm,) = await fake.wait_until(lambda: rig.bot_messages(dm), within=30)
        assert app.store is not None
        (draft,) = await app.store.recent_jobs(rig.user_key)
        assert draft.state is JobState.DRAFT and rig.emulator.tasks == {}
        assert custom_ids(confirm) == [f"imabot:generate:{draft.id}", f"imabot:help:{draft.id}"]
        await fake.click_button(confirm["id"], f"imabot:generate:{draft.id}")
        (job,) = await rig.jobs(app, within=60)
    assert job.id == draft.id and job.state is JobState.SUCCEEDED and len(rig.emulator.tasks) == 1


async def test_a_thin_prompt_on_feishu_runs_when_generate_is_clicked(tmp_path: Path) -> None:
    async with open_rig(tmp_path) as rig:
        event = text_event("猫", chat_type="p2p", chat_id=P2P)
        async with rig.app() as app:
            await rig.fake.push_event(event)
            await rig.fake.wait_until(lambda: rig.fake.bot_messages(), within=30)
            assert app.store is not None
            (draft,) = await app.store.recent_jobs(f"feishu:{USER}")
            assert draft.state is JobState.DRAFT and rig.emulator.tasks == {}
            (card,) = rig.fake.bot_messages()
            click = card_action_event("generate", draft.id, open_message_id=card.message_id, open_chat_id=P2P)
            await rig.fake.push_event(click)
            (job,) = await rig.jobs(app, within=60)
        assert job.id == draft.id and job.state is JobState.SUCCEEDED and len(rig.emulator.tasks) == 1


async def test_the_pre_notice_echoes_what_was_read_and_what_was_cut(tmp_path: Path) -> None:
    from bot.jobs import notices
    from bot.jobs.progress import Estimate

    async with pipeline(tmp_path) as p:
        intent = to_intent("/video 竖屏 10秒，极速 一只小狗在草地上奔跑", user="u1", seq=1, cwd=tmp_path)
        assert intent is not None
        assert await p.dispatcher(intent) is None
        (job,) = await p.store.recent_jobs("console:u1")
        plain = to_intent("a paper boat drifting down a rainy street", user="u2", seq=2, cwd=tmp_path)
        assert plain is not None and await p.dispatcher(plain) is None
        (quiet,) = await p.store.recent_jobs("console:u2")
        await p.wait_finished(job.id, within=60)
        await p.wait_finished(quiet.id, within=60)
    pre = notices.prenotice(p.texts, job, Estimate(10, 20), credit=15, position=0)
    fields = " · ".join(
        [
            f"{TEXTS('field.model', 'zh')} {TEXTS('model.ima-pro-fast', 'zh')}",
            f"{TEXTS('field.duration', 'zh')} {TEXTS('unit.seconds', 'zh', n=10)}",
            f"{TEXTS('field.aspect_ratio', 'zh')} 9:16",
        ]
    )
    assert "ℹ️ " + TEXTS("intake.echo_understood", "zh", fields=fields) in pre.lines
    assert "ℹ️ " + TEXTS("intake.echo_removed", "zh", words="“竖屏” · “10秒” · “极速”") in pre.lines
    assert [k for k, _ in quiet.spec.notes] == []  # nothing was read: nothing to echo


async def test_a_bare_retry_retries_the_last_finished_job_and_only_that(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        first = to_intent("a paper boat drifting down a rainy street", user="u1", seq=1, cwd=tmp_path)
        assert first is not None and await p.dispatcher(first) is None
        (job,) = await p.store.recent_jobs("console:u1")
        await p.wait_finished(job.id, within=60)
        again = to_intent("重试", user="u1", seq=2, cwd=tmp_path)
        assert again is not None and await p.dispatcher(again) is None
        jobs = await p.store.recent_jobs("console:u1")
        assert len(jobs) == 2 and jobs[0].retry_of == job.id and jobs[0].spec.prompt == job.spec.prompt
        await p.wait_finished(jobs[0].id, within=60)
        other = to_intent("/retry", user="u2", seq=3, cwd=tmp_path)  # another user has no job to retry
        assert other is not None
        answer = await p.dispatcher(other)
        assert answer is not None and answer.title == TEXTS("intake.retry_none", "en")
        assert await p.store.recent_jobs("console:u2") == []


async def test_drafts_do_not_count_against_the_pending_limit(tmp_path: Path) -> None:
    from bot.dispatch import DispatchSettings

    async with pipeline(tmp_path, dispatch=DispatchSettings(max_pending_per_user=1)) as p:
        for i, line in enumerate(("cat", "dog", "a paper boat drifting down a rainy street")):
            intent = to_intent(line, user="u1", seq=i, cwd=tmp_path)
            assert intent is not None
            await p.dispatcher(intent)
        jobs = await p.store.recent_jobs("console:u1")
        assert sorted(j.state.value for j in jobs) == ["draft", "draft", "queued"]
        (real,) = [j for j in jobs if j.state is not JobState.DRAFT]
        await p.wait_finished(real.id, within=60)


async def test_the_thin_prompt_bar_is_the_configs_jobs_min_prompt_chars(tmp_path: Path) -> None:
    """The same messages through the real App: the default bar asks about "猫" only; at 0 nothing is asked;
    at 12 "小狗在跑" (8: a Chinese character counts as two) is asked about too."""
    said = ("猫", "小狗在跑")

    async def states(jobs: dict[str, int]) -> dict[str, str]:
        async with rig.app(jobs=jobs) as app:
            events = [text_event(t, chat_type="p2p", chat_id=P2P) for t in said]
            for e in events:
                await rig.fake.push_event(e)
            ids = {e["event"]["message"]["message_id"] for e in events}
            await rig.fake.wait_until(
                lambda: ids <= {m.parent_id for m in rig.fake.bot_messages()}, within=60
            )
            assert app.store is not None
            jobs_now = await app.store.recent_jobs(f"feishu:{USER}", limit=100)
            new = [j for j in jobs_now if j.id not in seen]
            seen.update(j.id for j in new)
            return {j.spec.prompt: "draft" if j.state is JobState.DRAFT else "job" for j in new}

    seen: set[str] = set()
    async with open_rig(tmp_path) as rig:
        assert await states({}) == {"猫": "draft", "小狗在跑": "job"}
        assert await states({"min_prompt_chars": 0}) == {"猫": "job", "小狗在跑": "job"}
        assert await states({"min_prompt_chars": 12}) == {"猫": "draft", "小狗在跑": "draft"}


@pytest.mark.parametrize("bad", [-1, 201, 2.5, "four", True])
def test_jobs_min_prompt_chars_is_checked_when_the_config_loads(bad: object) -> None:
    from bot.config import ConfigError, parse_config

    assert parse_config({"jobs": {"min_prompt_chars": 0}}).jobs.min_prompt_chars == 0
    assert parse_config({"jobs": {"min_prompt_chars": 200}}).jobs.min_prompt_chars == 200
    assert parse_config({}).jobs.min_prompt_chars == 4
    with pytest.raises(ConfigError, match=r"jobs\.min_prompt_chars"):
        parse_config({"jobs": {"min_prompt_chars": bad}})
