"""Discord finals past discord.py's give-up: the outbox retries later and the final shows exactly once.

The real App on discord.py against the fake Discord and the emulator, one virtual clock for all. The fake
refuses the final's post more times than one delivery attempt makes (Delivery.send tries 3 times), so
only the finals outbox can get it out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.jobs.model import Job, JobState
from bot.jobs.outbox import OutboxSettings
from bot.jobs.texts import Texts
from tests.waiting import until_job_change

from .discord_app import Rig, embed, open_discord_rig

TEXTS = Texts.load()
POSTS = r"^/channels/\d+/messages$"


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    async with open_discord_rig(tmp_path, monkeypatch) as rig:
        yield rig


def refusal(status: int) -> tuple[dict, dict]:  # type: ignore[type-arg]
    """(body, headers) of a refusal discord.py raises at once, without retrying it itself."""
    if status == 429:  # no Via header: a Cloudflare ban to discord.py, raised at once
        return {"message": "You are being rate limited.", "retry_after": 0.5, "global": False}, {
            "Retry-After": "0.5"
        }
    return {"message": "Service Unavailable", "code": 0}, {}


@pytest.mark.parametrize("status", [503, 429])
async def test_a_final_refused_past_three_attempts_is_retried_later_and_shown_once(
    rig: Rig, status: int
) -> None:
    fake = rig.fake
    async with rig.app() as app:
        # Outbox waits of a few ms: what the clock shows between the tries is the attempts' own backoff.
        app.runner.outbox.settings = OutboxSettings(first_delay=0.01, max_delay=0.01, give_up_after=1e9)
        assert app.store is not None
        store = app.store
        rig.clock.hold()  # the job parks at its first wait once it runs: the fault goes in then
        ask = await fake.send_message("a fox running through snow", mention_bot=True)

        async def running() -> Job | None:
            jobs = await store.recent_jobs(rig.user_key, limit=1)
            return jobs[0] if jobs and jobs[0].state is JobState.RUNNING and jobs[0].notice_ref else None

        job = await until_job_change(app.runner.listeners, running, 15)
        await rig.clock.wait_parked(1)
        posts_before = len(fake.requests_to("POST", POSTS))
        body, headers = refusal(status)
        # Seven refusals: two whole delivery attempts (3 tries each) and the first try of a third.
        fake.fail_next("POST", POSTS, status, body, headers, times=7)
        rig.clock.release()

        async def delivered() -> Job | None:
            current = await store.get_job(job.id)
            return current if current is not None and current.result_ref else None

        done = await until_job_change(app.runner.listeners, delivered, 30)
    assert done.state is JobState.SUCCEEDED
    tries = fake.requests_to("POST", POSTS)[posts_before:]
    assert [r.status for r in tries] == [status] * 7 + [200]
    # The outbox, not one attempt's loop, got it out: two failed attempts recorded, waits between them.
    assert done.extra["outbox"]["attempts"] == 2
    # Within an attempt the tries wait 1 s then 2 s, or what a 429 asks for (0.5 s): two attempts' worth
    # passed on the bot's clock between the final (finished_at) and the last failure's next retry.
    waits = {503: 1 + 2, 429: 0.5 + 0.5}[status]
    elapsed = done.extra["outbox"]["next_at"] - done.finished_at
    assert 2 * waits <= elapsed < 2 * waits + 0.5
    # Every try carried the job's final key as its enforced nonce: a lost answer could not make two.
    assert len({(r.body["nonce"], r.body.get("enforce_nonce")) for r in tries}) == 1
    success = TEXTS("success.title", "en")
    finals = [m for m in rig.bot_messages(fake.channel_id) if m["embeds"] and embed(m)["title"] == success]
    (final,) = finals  # exactly one visible final, the one the job records
    assert done.result_ref.endswith(f":{final['id']}")
    assert final["message_reference"]["message_id"] == ask["id"]
    # The progress message then says it is closed (not left on "Generating").
    progress = rig.message(done.notice_ref)
    assert embed(progress)["title"] != TEXTS("progress.title", "en", model="Ima Sevio 1.0-Fast")
