"""ImaClient end to end against the independent emulator: four task types, variants, faults."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ima import (
    CreateOutcomeUnknown,
    ImaClient,
    InsufficientCredits,
    ModelId,
    Snapshot,
    TaskFailed,
    TaskState,
    TaskType,
)
from ima.emulator import DEFAULT_API_KEY, Emulator, EmulatorConfig, FaultKind, Variants


class SharedClock:
    """One fake clock for the emulator's task progress and the client's watch loop."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def png(width: int = 320, height: int = 320) -> bytes:
    """A valid grey PNG, built with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def clock() -> SharedClock:
    return SharedClock()


async def started(clock: SharedClock, **config: Any) -> Emulator:
    return await Emulator(EmulatorConfig(**config), clock=clock).start()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def client_for(emu: Emulator, session: aiohttp.ClientSession) -> ImaClient:
    return ImaClient(session, DEFAULT_API_KEY, base_url=emu.base_url, upload_base_url=emu.upload_base_url)


async def run_to_end(client: ImaClient, task_id: str, clock: SharedClock) -> list[Snapshot]:
    return [s async for s in client.watch(task_id, clock=clock, sleep=clock.sleep)]


IMAGES = {
    TaskType.TEXT_TO_VIDEO: 0,
    TaskType.IMAGE_TO_VIDEO: 1,
    TaskType.FIRST_LAST_FRAME_TO_VIDEO: 2,
    TaskType.REFERENCE_IMAGE_TO_VIDEO: 2,
}


@pytest.mark.parametrize("model", [ModelId.PRO, ModelId.FAST])
@pytest.mark.parametrize("task_type", list(IMAGES))
async def test_every_task_type_end_to_end_with_local_uploads(
    clock: SharedClock, session: aiohttp.ClientSession, tmp_path: Path, task_type: TaskType, model: ModelId
) -> None:
    emu = await started(clock)
    try:
        client = client_for(emu, session)
        files = []
        for i in range(IMAGES[task_type]):
            path = tmp_path / f"frame{i}.png"
            path.write_bytes(png())
            files.append(path)
        urls = await client.prepare_inputs(files)
        assert all(u.startswith("http") for u in urls) and len(set(urls)) == len(files)
        before = emu.balance(DEFAULT_API_KEY)
        created = await client.create_task(task_type, model, "a lighthouse at dusk", input_urls=urls)
        assert created.attempts == 1 and created.resolved.model_id is model
        assert emu.balance(DEFAULT_API_KEY) == before - created.resolved.credit
        snaps = await run_to_end(client, created.task_id, clock)
        final = snaps[-1]
        assert final.task.state is TaskState.SUCCEEDED and final.task.url.startswith("http")
        assert final.task.cover_url.startswith("http")
        assert all(s.task.state is TaskState.PROCESSING for s in snaps[:-1])
        assert [s.percent for s in snaps[:-1]] == sorted(s.percent for s in snaps[:-1])
    finally:
        await emu.stop()


@pytest.mark.parametrize(
    "variants",
    [
        Variants(success_code=200, cover_field="cover", duration_type="number", resolution_case="upper"),
        Variants(cover_field="cover_url", root_level=True, pending_resource_status="empty"),
    ],
)
@pytest.mark.parametrize("mirror", [False, True])
async def test_contract_variants(clock, session, variants: Variants, mirror: bool) -> None:
    emu = await started(clock, variants=variants, mirror_status=mirror)
    try:
        client = client_for(emu, session)
        created = await client.create_task(
            TaskType.TEXT_TO_VIDEO, ModelId.PRO, "rain", overrides={"resolution": "720P", "duration": "5"}
        )
        assert created.attempts == 1
        final = (await run_to_end(client, created.task_id, clock))[-1]
        assert final.task.state is TaskState.SUCCEEDED and final.task.cover_url
    finally:
        await emu.stop()


async def test_create_500_degrades_the_default_resolution_and_succeeds(clock, session) -> None:
    emu = await started(clock)
    try:
        emu.faults.add(FaultKind.CREATE_CODE, code=500, times=1)
        created = await client_for(emu, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "storm")
        assert created.attempts == 2
        assert [(n.key, n.params) for n in created.notes] == [
            ("reflection_degraded", {"field": "resolution", "from": "720p", "to": "480p"})
        ]
        sent = [r for r in emu.requests.find(path="/open/v1/tasks/create")]
        assert len(sent) == 2 and created.resolved.params["resolution"] == "480p"
    finally:
        await emu.stop()


async def test_unsupported_values_become_the_nearest_priced_ones(clock, session) -> None:
    emu = await started(clock)
    try:
        created = await client_for(emu, session).create_task(
            TaskType.TEXT_TO_VIDEO, ModelId.PRO, "storm", overrides={"resolution": "4K", "duration": 12}
        )
        assert created.attempts == 1
        assert {n.params["field"]: n.params["used"] for n in created.notes} == {
            "resolution": "1080p",
            "duration": "10",
        }
    finally:
        await emu.stop()


async def test_a_pinned_older_version_with_a_default_rule_is_accepted(clock, session) -> None:
    emu = await started(clock)
    try:
        client = client_for(emu, session)
        created = await client.create_task(TaskType.TEXT_TO_VIDEO, ModelId.PRO, "storm", version="ima-pro-v0")
        assert created.resolved.product.id == "ima-pro-v0" and created.attempts == 1
        assert (await run_to_end(client, created.task_id, clock))[-1].task.state is TaskState.SUCCEEDED
    finally:
        await emu.stop()


async def test_dropped_create_is_outcome_unknown_and_billed_once(clock, session) -> None:
    emu = await started(clock)
    try:
        emu.faults.add(FaultKind.CREATE_DROP, times=1)
        before = emu.balance(DEFAULT_API_KEY)
        with pytest.raises(CreateOutcomeUnknown):
            await client_for(emu, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.FAST, "calm")
        assert len(emu.tasks) == 1 and emu.balance(DEFAULT_API_KEY) < before
        assert len(emu.requests.find(path="/open/v1/tasks/create")) == 1
    finally:
        await emu.stop()


async def test_empty_balance_is_insufficient_credits(clock, session) -> None:
    emu = await started(clock)
    try:
        emu.set_balance(DEFAULT_API_KEY, 0)
        with pytest.raises(InsufficientCredits):
            await client_for(emu, session).create_task(TaskType.TEXT_TO_VIDEO, ModelId.FAST, "calm")
    finally:
        await emu.stop()


async def test_transient_poll_failures_do_not_end_the_job(clock, session) -> None:
    emu = await started(clock)
    try:
        client = client_for(emu, session)
        created = await client.create_task(TaskType.TEXT_TO_VIDEO, ModelId.FAST, "calm")
        emu.faults.add(FaultKind.DETAIL_HTTP, code=502, times=2)
        emu.faults.add(FaultKind.DETAIL_DROP, times=1)
        final = (await run_to_end(client, created.task_id, clock))[-1]
        assert final.task.state is TaskState.SUCCEEDED
    finally:
        await emu.stop()


@pytest.mark.parametrize(
    ("kind", "deleted"),
    [
        (FaultKind.MEDIA_FAILED, False),
        (FaultKind.MEDIA_DELETED, True),
        (FaultKind.MEDIA_STATUS_FAILED, False),
    ],
)
async def test_failed_tasks_raise(clock, session, kind: FaultKind, deleted: bool) -> None:
    emu = await started(clock)
    try:
        emu.faults.add(kind, times=1)
        client = client_for(emu, session)
        created = await client.create_task(TaskType.TEXT_TO_VIDEO, ModelId.FAST, "calm")
        with pytest.raises(TaskFailed) as info:
            await run_to_end(client, created.task_id, clock)
        assert info.value.deleted is deleted and info.value.task_id == created.task_id
    finally:
        await emu.stop()
