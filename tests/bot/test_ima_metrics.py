"""IMA call timing without aiohttp tracing: the client's observer feeds the latency histogram for every
call (products, create, detail, upload token, the presigned PUT) and for calls that got no answer."""

from __future__ import annotations

import aiohttp
import pytest

from bot.metrics import Metrics
from ima import ImaClient
from ima.emulator import DEFAULT_API_KEY, Emulator
from ima.errors import ImaTransportError
from ima.models import ModelId, TaskType

COUNT = "imabot_ima_request_duration_seconds_count"


def count(metrics: Metrics, endpoint: str, status: str) -> float:
    return metrics.registry.get_sample_value(COUNT, {"endpoint": endpoint, "status": status}) or 0.0


async def test_every_ima_call_is_timed_by_endpoint_and_status() -> None:
    metrics = Metrics()
    async with Emulator() as emu, aiohttp.ClientSession() as session:
        client = ImaClient(
            session,
            DEFAULT_API_KEY,
            base_url=emu.base_url,
            upload_base_url=emu.upload_base_url,
            observe=metrics.observe_ima,
        )
        url = await client.upload_file(b"\x89PNG\r\n\x1a\n" + bytes(64), filename="a.png")
        created = await client.create_task(TaskType.TEXT_TO_VIDEO, ModelId.FAST, "a fox")
        await client.fetch_task(created.task_id)
    assert url.startswith("http")
    assert count(metrics, "/open/v1/product/list", "200") >= 1
    assert count(metrics, "/open/v1/tasks/create", "200") == 1
    assert count(metrics, "/open/v1/tasks/detail", "200") == 1
    assert count(metrics, "upload", "200") == 1  # the presigned PUT: labelled, its URL never shown
    assert not any(
        "X-Amz" in str(s.labels) or "?" in str(s.labels)
        for m in metrics.registry.collect()
        for s in m.samples
    )


async def test_a_call_without_an_answer_is_timed_as_error() -> None:
    metrics = Metrics()
    async with aiohttp.ClientSession() as session:
        client = ImaClient(
            session, DEFAULT_API_KEY, base_url="http://127.0.0.1:9", observe=metrics.observe_ima
        )
        with pytest.raises(ImaTransportError):
            await client.fetch_task("t-1")
    assert count(metrics, "/open/v1/tasks/detail", "error") == 1
