"""The Feishu webhook route served by the bot's own web server, with the metrics it feeds."""

from __future__ import annotations

import io
import json
from pathlib import Path

from bot.jobs.model import Job
from tests.fakes.feishu_events import BOT_OPEN_ID, text_event

from .feishu import feishu_app
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
