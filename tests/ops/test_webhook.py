"""The Feishu webhook route served by the bot's own web server, with the metrics it feeds."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

import pytest

from bot.jobs.model import Job
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event

from .feishu import feishu_app, post_signed
from .test_web import samples


async def _feishu_jobs(r) -> list[Job]:  # type: ignore[no-untyped-def]
    return await r.app.store.recent_jobs("feishu:ou_user0001", limit=50)


async def test_webhook_push_makes_one_job_and_redelivery_is_counted(tmp_path: Path) -> None:
    async with feishu_app(tmp_path) as (r, fake, poster):
        reply = await poster.challenge("c-123")
        assert (reply.status, reply.body) == (200, {"challenge": "c-123"})

        event = fake.register(text_event("/video fast 5s a paper boat in the rain", mention_bot=BOT_OPEN_ID))
        # The first progress patch of the card is refused once: a platform error for the metrics.
        fake.fail_next("PATCH", r"/im/v1/messages/", status=400, body={"code": 230099, "msg": "refused"})
        assert (await poster.post(event)).status == 200
        assert (await poster.post(event)).status == 200  # Feishu redelivers: acked, dropped

        async def finished() -> Job | None:
            jobs = await _feishu_jobs(r)
            return jobs[0] if jobs and jobs[0].finished and jobs[0].result_ref else None

        job = await r.wait_for(finished)
        await r.wait_for(lambda: r.app.dispatcher.deduplicated >= 1)
        assert job.state.value == "succeeded"
        assert len(await _feishu_jobs(r)) == 1

        status, _, body = await r.get("/healthz")
        assert status == 200, body
        assert json.loads(body)["adapters"] == {"console": True, "feishu": True}
        m = samples((await r.get("/metrics"))[2])
        assert m[("imabot_events_deduplicated_total", ())] == 1
        assert m[("imabot_platform_errors_total", (("platform", "feishu"), ("status", "400")))] == 1
        assert m[("imabot_adapter_connected", (("platform", "feishu"),))] == 1


async def test_forged_pushes_are_refused_and_create_nothing(tmp_path: Path) -> None:
    async with feishu_app(tmp_path) as (r, fake, poster):
        event = fake.register(text_event("/video a forged request", mention_bot=BOT_OPEN_ID))
        assert (await poster.post(event, token="wrong-token")).status == 401
        assert (await poster.post(event, bad_signature=True)).status == 401
        async with r.http.post(r.url + "/feishu/events", data=b"\x00not json") as resp:
            assert resp.status == 400
        async with r.http.post(r.url + "/feishu/events", data=io.BytesIO(b"x" * (2 * 1024 * 1024))) as resp:
            assert resp.status == 413
        assert await _feishu_jobs(r) == []


async def test_stale_and_replayed_signed_pushes_are_refused_with_401_and_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A body signed three days ago, and an exact replay of a captured request after the dedup key has
    expired (9 h later), never make a job; a fresh push does."""
    async with feishu_app(tmp_path) as (r, fake, _poster):
        three_days_ago = fake.register(
            text_event("/video fast 5s an old signed push", mention_bot=BOT_OPEN_ID)
        )
        with caplog.at_level(logging.WARNING, logger="imabot.feishu"):
            status, body = await post_signed(r, three_days_ago, stamp=time.time() - 3 * 86400)
        assert status == 401 and "timestamp" in body
        assert any("feishu webhook rejected" in m and "timestamp" in m for m in caplog.messages)

        captured = fake.register(text_event("/video fast 5s a captured push", mention_bot=BOT_OPEN_ID))
        stamp = time.time()
        assert (await post_signed(r, captured, stamp=stamp))[0] == 200
        made = await r.wait_for(_feishu_jobs_of(r))
        assert [j.spec.prompt for j in made] == ["a captured push"]
        # The same bytes again 9 hours on: its dedup key is gone by then, its timestamp is out of the window.
        assert (await post_signed(r, captured, stamp=stamp - 9 * 3600))[0] == 401
        assert (await post_signed(r, captured, stamp=time.time() + 3600))[0] == 401  # from the future too
        assert [j.spec.prompt for j in await _feishu_jobs(r)] == ["a captured push"]


async def test_the_freshness_window_comes_from_the_config(tmp_path: Path) -> None:
    async with feishu_app(tmp_path, webhook_max_age=7200) as (r, fake, _poster):
        event = fake.register(text_event("/video fast 5s an hour-old push", mention_bot=BOT_OPEN_ID))
        assert (await post_signed(r, event, stamp=time.time() - 3600))[0] == 200
        made = await r.wait_for(_feishu_jobs_of(r))
        assert [j.spec.prompt for j in made] == ["an hour-old push"]


async def test_hostile_signed_bodies_get_a_4xx_and_the_bot_keeps_serving(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deep nesting (inside and outside the envelope), `header` as a list: a short 400, no traceback. A lone
    surrogate in the text: the user still gets the job, with the text cleaned."""
    async with feishu_app(tmp_path) as (r, fake, _poster):
        with caplog.at_level(logging.DEBUG):
            deep_outer = b'{"encrypt": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
            assert (await post_signed(r, None, raw=deep_outer))[0] == 400
            deep_inner = {"schema": "2.0", "header": {"token": "x"}, "event": _nested(200)}
            assert (await post_signed(r, deep_inner))[0] == 400
            as_list = {"schema": "2.0", "header": ["event_type", "im.message.receive_v1"], "event": {}}
            assert (await post_signed(r, as_list))[0] == 400
            surrogate = fake.register(
                text_event("/video fast 5s a heron\ud800 at dawn\x00\x1b[31m", mention_bot=BOT_OPEN_ID)
            )
            assert (await post_signed(r, surrogate))[0] == 200
            made = await r.wait_for(_feishu_jobs_of(r))
            status, _, _ = await r.get("/healthz")
        assert [j.spec.prompt for j in made] == ["a heron at dawn[31m"]
        assert status == 200
        assert not [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]


def _nested(depth: int) -> dict:
    value: dict = {"end": True}
    for _ in range(depth):
        value = {"x": value}
    return value


def _feishu_jobs_of(r):  # type: ignore[no-untyped-def]
    async def jobs() -> list[Job]:
        return await _feishu_jobs(r)

    return jobs
