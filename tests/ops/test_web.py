"""The bot's web server for real: /healthz and /metrics over HTTP from a running App, and the purge task."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.app import App, purge_events, purge_events_forever
from bot.jobs.store import JobStore
from ima.emulator import Emulator, EmulatorConfig
from tests.bot.harness import VirtualClock

from .apps import config_for, running_app


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_and_health_follow_a_job_end_to_end(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        status, ctype, body = await r.get("/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        before = samples(body)
        assert before[("imabot_jobs", (("state", "queued"),))] == 0
        assert before[("imabot_queue_length", ())] == 0

        r.feed.say("/video fast 5s a red kite over the sea")
        job = await r.wait_for(lambda: _one_finished(r))
        assert job.state.value == "succeeded"

        status, _, body = await r.get("/healthz")
        assert status == 200, body
        assert json.loads(body) == {"status": "ok", "store": True, "adapters": {"console": True}}

        after = samples((await r.get("/metrics"))[2])
        assert after[("imabot_jobs_finished_total", (("model", "ima-pro-fast"), ("state", "succeeded")))] == 1
        for state in ("queued", "preparing", "creating", "running"):
            assert after[("imabot_jobs", (("state", state),))] == 0, state
        duration = after[
            ("imabot_job_duration_seconds_sum", (("model", "ima-pro-fast"), ("state", "succeeded")))
        ]
        assert duration == job.finished_at - job.started_at > 0
        create = (("endpoint", "/open/v1/tasks/create"), ("status", "200"))
        assert after[("imabot_ima_request_duration_seconds_count", create)] == 1
        detail = (("endpoint", "/open/v1/tasks/detail"), ("status", "200"))
        assert after[("imabot_ima_request_duration_seconds_count", detail)] >= 1
        assert after[("imabot_events_deduplicated_total", ())] == 0
        assert after[("imabot_adapter_connected", (("platform", "console"),))] == 1

        # End of input: the console adapter stops, and health says so.
        r.feed.end()
        await r.app.wait()
        status, _, body = await r.get("/healthz")
        assert status == 503
        assert json.loads(body)["adapters"] == {"console": False}


async def _one_finished(r):  # type: ignore[no-untyped-def]
    jobs = await r.jobs()
    return jobs[0] if len(jobs) == 1 and jobs[0].finished and jobs[0].result_ref else None


async def test_failed_jobs_are_counted_by_ima_code(tmp_path: Path) -> None:
    clock = VirtualClock()
    config = EmulatorConfig.from_mapping({"faults": [{"kind": "create_code", "code": 4008, "times": 10}]})
    async with Emulator(config, clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        r.feed.say("/video fast 5s a lighthouse at night")
        job = await r.wait_for(lambda: _one_finished(r))
        assert job.state.value == "failed"
        after = samples((await r.get("/metrics"))[2])
        key = (("code", job.error_code), ("key", job.error_key))
        assert after[("imabot_ima_errors_total", key)] == 1
        assert after[("imabot_jobs_finished_total", (("model", "ima-pro-fast"), ("state", "failed")))] == 1


async def test_start_purges_expired_event_keys_and_the_loop_keeps_purging(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = await JobStore.open(tmp_path / "jobs.sqlite3", clock=lambda: now[0])
    try:
        assert await store.claim_events(["old"], ttl=10)
        assert await store.claim_events(["fresh"], ttl=10_000)
        now[0] += 100  # "old" expires; "fresh" does not
        assert await purge_events(store) == 1
        assert await store.claim_events(["old"], ttl=10)  # gone, so claimable again
        assert not await store.claim_events(["fresh"], ttl=10)

        naps: list[float] = []

        async def sleep(seconds: float) -> None:
            naps.append(seconds)
            now[0] += seconds
            if len(naps) == 3:
                raise _Stop

        try:
            await purge_events_forever(store, interval=60, sleep=sleep)
        except _Stop:
            pass
        assert naps == [60, 60, 60]
        assert await store.claim_events(["old"], ttl=10)  # the loop purged it again after it expired
    finally:
        await store.close()


class _Stop(Exception):
    pass


async def test_app_start_purges_before_taking_events(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu:
        config = config_for(tmp_path, emu, web={"enabled": False})
        store = await JobStore.open(config.store.path, clock=lambda: 0.0)
        assert await store.claim_events(["feishu:event:expired"], ttl=1)  # expired long before now
        await store.close()
        app = App(config, adapters=[], clock=clock, sleep=clock.sleep)
        try:
            await app.start()
            assert app.store is not None
            assert await app.store.purge_events() == 0  # start already did it
        finally:
            await app.close()
