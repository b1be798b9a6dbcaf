"""Every credit is accounted for: the real App on the fake Feishu and the emulator.

The budget reserves a job's price when it is admitted (atomically, so a burst cannot pass it), texts say
"not charged" only when IMA never created a task, a refusing status endpoint does not abandon a task IMA
may bill, and what reflection changed is shown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.jobs.model import Job, JobState
from ima.models import RECORDS_URL
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event

from .feishu_app import TEXTS, USER, FeishuRig, buttons, open_rig, texts

BUDGET = 45


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FeishuRig]:
    async with open_rig(tmp_path) as rig:
        yield rig


def final_card(rig: FeishuRig, job: Job) -> dict:  # type: ignore[type-arg]
    (card,) = [m for m in rig.fake.bot_messages("interactive") if m.message_id == job.result_ref]
    return card.card


async def one_job(rig: FeishuRig, app: App, text: str) -> Job:
    await rig.fake.push_event(text_event(text, mention_bot=BOT_OPEN_ID))
    (job,) = await rig.jobs(app, within=30)
    return job


async def test_a_burst_from_one_user_cannot_pass_the_daily_budget(rig: FeishuRig) -> None:
    # Four 15-credit jobs at once against a 45-credit budget: three fit, the fourth is refused.
    async with rig.app(jobs={"daily_credit_budget": BUDGET, "per_user_concurrency": 4}) as app:
        for i in range(4):
            await rig.fake.push_event(
                text_event(f"a paper boat number {i} on a river, fast 5s 720p", mention_bot=BOT_OPEN_ID)
            )
        jobs = await rig.jobs(app, 4, within=30)
        assert app.store is not None
        charged = await app.store.credits_spent(f"feishu:{USER}", since=0)
        # The user is at the budget now: the next request is refused before it becomes a job.
        await rig.fake.push_event(
            text_event("a red balloon over the city, fast 5s 720p", mention_bot=BOT_OPEN_ID)
        )
        said = TEXTS("input.budget_exceeded", "en", spent=45, limit=BUDGET)
        await rig.fake.wait_until(lambda: any(said in m.content for m in rig.fake.bot_messages()), within=10)
        assert len(await app.store.recent_jobs(f"feishu:{USER}", limit=10)) == 4
    states = sorted(j.state.value for j in jobs)
    assert states == ["failed", "succeeded", "succeeded", "succeeded"]
    (refused,) = [j for j in jobs if j.state is JobState.FAILED]
    assert refused.error_key == "budget_exceeded" and refused.task_id == ""
    assert charged == 45 <= BUDGET and len(rig.emulator.tasks) == 3


async def test_a_refusing_status_endpoint_does_not_abandon_a_task_ima_created(rig: FeishuRig) -> None:
    rig.emulator.faults.add("detail_code", code=4008, times=3)
    async with rig.app() as app:
        job = await one_job(rig, app, "a heron taking off, fast 5s 720p")
    assert job.state is JobState.SUCCEEDED and job.extra["status_error"]["code"] == "4008"
    assert len(rig.emulator.tasks) == 1


async def test_a_task_whose_status_stays_unknown_may_have_been_billed(rig: FeishuRig) -> None:
    rig.emulator.faults.add("detail_code", code=404, times=None)
    async with rig.app() as app:
        job = await one_job(rig, app, "a storm over the hills, fast 5s 720p")
        assert app.store is not None
        # Not released: IMA may bill the task, so it keeps counting against the budget.
        assert await app.store.credits_committed(f"feishu:{USER}", since=0) == 15
        assert await app.store.credits_spent(f"feishu:{USER}", since=0) == 0
    assert job.state is JobState.TIMED_OUT and job.error_key == "status_unknown" and job.task_id
    assert job.finished_at - job.started_at >= 2400
    shown = texts(final_card(rig, job))
    assert TEXTS("delivery.status_unknown", "en", code="404") in shown
    assert TEXTS("failure.credits_safe", "en") not in shown
    assert RECORDS_URL in [b.get("url") for b in buttons(final_card(rig, job))] or RECORDS_URL in shown


async def test_not_charged_is_said_only_when_no_task_was_created(rig: FeishuRig) -> None:
    rig.emulator.faults.add("create_code", code=4008)
    async with rig.app() as app:
        refused = await one_job(rig, app, "a whale breaching, fast 5s 720p")
        assert app.store is not None
        assert await app.store.credits_committed(f"feishu:{USER}", since=0) == 0  # released
    assert refused.state is JobState.FAILED and refused.task_id == ""
    assert TEXTS("failure.credits_safe", "en") in texts(final_card(rig, refused))


async def test_a_failed_generation_says_it_may_have_been_billed(rig: FeishuRig) -> None:
    rig.emulator.faults.add("media_failed", message="content policy")
    async with rig.app() as app:
        job = await one_job(rig, app, "a cat on a roof, fast 5s 720p")
    shown = texts(final_card(rig, job))
    assert job.task_id and TEXTS("delivery.may_be_billed", "en", task_id=job.task_id) in shown
    assert TEXTS("failure.credits_safe", "en") not in shown
    assert RECORDS_URL in [b.get("url") for b in buttons(final_card(rig, job))]


async def test_a_dropped_create_says_the_connection_dropped_not_a_restart(rig: FeishuRig) -> None:
    rig.emulator.faults.add("create_drop")
    async with rig.app() as app:
        job = await one_job(rig, app, "a tram in the rain, fast 5s 720p")
        assert app.store is not None
        assert await app.store.credits_committed(f"feishu:{USER}", since=0) == 15  # may be billed
    assert job.state is JobState.UNCERTAIN and job.error_key == "create_unknown"
    shown = texts(final_card(rig, job))
    assert TEXTS("delivery.uncertain_dropped", "en") in shown
    assert TEXTS("uncertain.body", "en") not in shown


async def test_what_reflection_changed_is_shown_in_progress_and_final(rig: FeishuRig) -> None:
    rig.emulator.faults.add("create_code", code=6010, when={"resolution": "720p"})
    async with rig.app() as app:
        job = await one_job(rig, app, "a bridge at dusk, fast 5s 720p")
    assert job.state is JobState.SUCCEEDED
    changed = job.extra["reflected"]
    assert changed["credit"] == [15, job.credit] and job.credit != 15
    line = next(t for t in texts(final_card(rig, job)) if t.startswith("ℹ️"))
    assert TEXTS("delivery.change_credit", "en", old=15, new=job.credit) in line
    assert str(job.spec.resolution) == str(changed.get("resolution", [None, job.spec.resolution])[1])
    progress_cards = rig.patches(job.notice_ref)
    assert any(line in texts(c) for c in progress_cards[:-1])
