"""The confirm step for big spends (issue 14), on issue 9's draft + Generate: above the configured amount
nothing is created before the press; a cancel instead creates nothing at all."""

from __future__ import annotations

from pathlib import Path

from bot.core import Action, ActionIntent, GenerationIntent, NoticeKind, Origin
from bot.dispatch import DispatchSettings
from bot.jobs.model import JobState
from bot.jobs.scheduler import budget_day_start

from .harness import pipeline

ORIGIN = Origin(platform="console", chat_id="c1", user_id="u1", message_id="m1")
THREE = "分镜：1. a puppy runs on the grass 2. the puppy jumps into a river 3. the puppy shakes off the water"
CONFIRM = DispatchSettings(confirm_above_credits=20, daily_credit_budget=500)


def gen(text: str, key: str) -> GenerationIntent:
    return GenerationIntent(origin=ORIGIN, text=text, event_keys=(key,))


def actions(notice) -> list[Action | None]:  # type: ignore[no-untyped-def]
    return [b.action for b in notice.buttons]


async def test_a_big_job_waits_for_generate_and_a_cancel_creates_nothing(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=CONFIRM) as p:
        notice = await p.dispatcher(gen("pro 1080p 10s a red kite over green hills at sunset", "big"))
        assert notice is not None and notice.kind is NoticeKind.INFO
        assert actions(notice) == [Action.GENERATE, Action.HELP, Action.CANCEL]
        [draft] = await p.store.recent_jobs("console:u1", limit=5)
        assert draft.state is JobState.DRAFT
        credit, _ = await p.runner.preview(draft)
        assert credit.credit > 20
        assert p.texts("shots.confirm.amount", "en", credit=credit.credit) in notice.lines
        assert p.texts("shots.confirm.budget", "en", left=500, limit=500) in notice.lines
        await p.dispatcher(ActionIntent(ORIGIN, draft.id, Action.CANCEL, event_keys=("c",)))
        job = await p.store.get_job(draft.id)
        assert job is not None and job.state is JobState.CANCELLED
        assert p.emulator.tasks == {}
        assert await p.store.credits_committed("console:u1", since=budget_day_start(p.clock())) == 0


async def test_a_small_job_runs_without_asking(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=DispatchSettings(confirm_above_credits=10_000)) as p:
        assert await p.dispatcher(gen("pro a red kite over green hills at sunset", "small")) is None
        [job] = await p.store.recent_jobs("console:u1", limit=5)
        assert (await p.wait_finished(job.id)).state is JobState.SUCCEEDED


async def test_a_big_storyboard_asks_first_and_a_cancel_creates_nothing(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=CONFIRM) as p:
        notice = await p.dispatcher(gen(THREE, "sb"))
        assert notice is not None and actions(notice) == [Action.GENERATE, Action.CANCEL]
        shots = sorted(
            await p.store.recent_jobs("console:u1", limit=5), key=lambda j: j.extra["storyboard"]["index"]
        )
        assert [s.state for s in shots] == [JobState.DRAFT] * 3
        total = sum(s.credit or 0 for s in shots[1:]) + (await p.runner.preview(shots[0]))[0].credit
        assert str(total) in notice.title
        held = sum(s.credit or 0 for s in shots[1:])  # shots 2 and 3 are held at once; shot 1 on Generate
        assert p.texts("shots.confirm.budget", "en", left=500 - held, limit=500) in notice.lines
        await p.dispatcher(ActionIntent(ORIGIN, shots[0].id, Action.CANCEL, event_keys=("c",)))
        await p.dispatcher.storyboards.wait_idle()
        states = [(await p.store.get_job(s.id)).state for s in shots]  # type: ignore[union-attr]
        assert states == [JobState.CANCELLED] * 3
        assert p.emulator.tasks == {}
        assert await p.store.credits_committed("console:u1", since=budget_day_start(p.clock())) == 0


async def test_generate_on_a_big_storyboard_runs_every_shot(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=CONFIRM) as p:
        await p.dispatcher(gen(THREE, "sb"))
        shots = sorted(
            await p.store.recent_jobs("console:u1", limit=5), key=lambda j: j.extra["storyboard"]["index"]
        )
        assert p.emulator.tasks == {}
        assert (
            await p.dispatcher(ActionIntent(ORIGIN, shots[0].id, Action.GENERATE, event_keys=("g",))) is None
        )
        await p.wait_finished(shots[2].id, within=60)
        await p.dispatcher.storyboards.wait_idle()
        assert len(p.emulator.tasks) == 3


async def test_continue_and_variations_of_a_big_job_ask_first_too(tmp_path: Path) -> None:
    async with pipeline(tmp_path, dispatch=CONFIRM) as p:
        notice = await p.dispatcher(gen("pro 1080p 10s a red kite over green hills at sunset", "big"))
        [draft] = await p.store.recent_jobs("console:u1", limit=5)
        await p.dispatcher(ActionIntent(ORIGIN, draft.id, Action.GENERATE, event_keys=("g",)))
        first = await p.wait_finished(draft.id, within=60)
        assert first.state is JobState.SUCCEEDED and notice is not None
        for n, action in enumerate((Action.CONTINUE, Action.VARY_ASPECT)):
            asked = await p.dispatcher(ActionIntent(ORIGIN, first.id, action, event_keys=(f"a{n}",)))
            assert asked is not None and actions(asked) == [Action.GENERATE, Action.HELP, Action.CANCEL]
        held = [j for j in await p.store.recent_jobs("console:u1", limit=10) if j.id != first.id]
        assert sorted(j.state.value for j in held) == ["draft", "draft"]
        assert len(p.emulator.tasks) == 1  # nothing created before a Generate press
