"""ima.emulator fault injection over real HTTP: create, detail, media outcomes, upload, config faults."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ima.emulator import Emulator, EmulatorConfig, EmulatorConfigError, Fault, FaultError, FaultKind

KEY = "ima_fault_key_1234567890"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    # speed 100: ima-pro runs 2 s of emulator time; tests move time with advance(), never by sleeping.
    async with Emulator(EmulatorConfig(api_keys={KEY: 10_000}, speed=100.0)) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def payload(
    resolution: str = "720p", duration: int = 5, prompt: str = "a lighthouse at dusk"
) -> dict[str, Any]:
    rules = {("720p", 5): (1104, 30), ("1080p", 5): (1107, 60)}
    attribute_id, points = rules[(resolution, duration)]
    inner = {"duration": duration, "resolution": resolution, "aspect_ratio": "16:9", "audio": True}
    inner |= {
        "prompt": prompt,
        "n": 1,
        "input_images": [],
        "cast": {"points": points, "attribute_id": attribute_id},
    }
    p = {
        "attribute_id": attribute_id,
        "model_id": "ima-pro",
        "model_name": "IMA Video Pro",
        "model_version": "ima-pro",
    }
    p |= {"app": "ima", "platform": "web", "category": "text_to_video", "credit": points, "parameters": inner}
    return {"task_type": "text_to_video", "enable_multi_model": False, "src_img_url": [], "parameters": [p]}


HEADERS = {"Authorization": f"Bearer {KEY}"}


async def create(http: aiohttp.ClientSession, emu: Emulator, body: Any = None, **kw: Any) -> Any:
    url = f"{emu.base_url}/open/v1/tasks/create"
    async with http.post(url, json=body or payload(), headers=HEADERS, **kw) as resp:
        return await resp.json()


async def detail_raw(
    http: aiohttp.ClientSession, emu: Emulator, task_id: str, **kw: Any
) -> tuple[int, str, Any]:
    url = f"{emu.base_url}/open/v1/tasks/detail"
    async with http.post(url, json={"task_id": task_id}, headers=HEADERS, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, resp.content_type, body


async def media(http: aiohttp.ClientSession, emu: Emulator, task_id: str) -> dict[str, Any]:
    status, _, body = await detail_raw(http, emu, task_id)
    assert status == 200 and body["code"] == 0
    return body["data"]["medias"][0]


async def test_forced_create_code_only_when_param_matches_and_only_k_times(emu, http) -> None:
    emu.faults.add(FaultKind.CREATE_CODE, code=500, when={"resolution": "1080P"}, times=2)
    assert (await create(http, emu, payload("720p")))["code"] == 0
    assert (await create(http, emu, payload("1080p")))["code"] == 500
    assert (await create(http, emu, payload("1080p")))["code"] == 500
    assert (await create(http, emu, payload("1080p")))["code"] == 0
    assert len(emu.tasks) == 2 and emu.balance(KEY) == 10_000 - 30 - 60
    armed = next(iter(emu.faults))
    assert (armed.hits, armed.left) == (2, 0)
    assert [r.fault for r in emu.requests.find("/open/v1/tasks/create")] == [
        None,
        "create_code",
        "create_code",
        None,
    ]


@pytest.mark.parametrize("code", [500, 6009, 6010, 4014, 4008, 401])
async def test_each_forced_create_code(emu, http, code) -> None:
    emu.faults.add(FaultKind.CREATE_CODE, code=code)
    answer = await create(http, emu)
    assert answer["code"] == code and answer["message"]
    assert emu.tasks == {} and emu.balance(KEY) == 10_000
    assert (await create(http, emu))["code"] == 0


async def test_forced_code_by_prompt_marker_is_mirrored_when_asked(emu, http) -> None:
    emu.mirror_status = True
    emu.faults.add(FaultKind.CREATE_CODE, code=4014, prompt_contains="[sub]", times=None)
    url = f"{emu.base_url}/open/v1/tasks/create"
    async with http.post(url, json=payload(prompt="x [sub]"), headers=HEADERS) as resp:
        assert resp.status == 403 and (await resp.json())["code"] == 4014
    assert (await create(http, emu, payload(prompt="plain")))["code"] == 0


async def test_create_drop_leaves_a_billed_task_behind(emu, http) -> None:
    emu.faults.add(FaultKind.CREATE_DROP)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await create(http, emu)
    assert len(emu.tasks) == 1 and emu.balance(KEY) == 10_000 - 30
    record = emu.requests.find("/open/v1/tasks/create")[-1]
    assert record.status is None and record.fault == "create_drop"
    assert (await create(http, emu))["code"] == 0


async def test_slow_answers_delay_then_answer_or_outlast_a_client_timeout(emu, http) -> None:
    task_id = (await create(http, emu))["data"]["id"]
    emu.faults.add(FaultKind.DETAIL_DELAY, seconds=0.05)
    started = time.monotonic()
    assert (await detail_raw(http, emu, task_id))[2]["code"] == 0
    assert time.monotonic() - started >= 0.05
    emu.faults.add(FaultKind.DETAIL_DELAY, seconds=60)
    with pytest.raises(asyncio.TimeoutError):
        await detail_raw(http, emu, task_id, timeout=aiohttp.ClientTimeout(total=0.1))
    emu.faults.add(FaultKind.CREATE_DELAY, seconds=60)
    with pytest.raises(asyncio.TimeoutError):
        await create(http, emu, timeout=aiohttp.ClientTimeout(total=0.1))


async def test_detail_http_5xx_for_the_next_k_calls(emu, http) -> None:
    task_id = (await create(http, emu))["data"]["id"]
    emu.faults.add(FaultKind.DETAIL_HTTP, code=502, times=2)
    for _ in range(2):
        status, content_type, body = await detail_raw(http, emu, task_id)
        assert (status, content_type) == (502, "text/html") and "502" in body
    assert (await detail_raw(http, emu, task_id))[0] == 200


async def test_detail_drop_and_detail_code_for_one_task_only(emu, http) -> None:
    first = (await create(http, emu))["data"]["id"]
    second = (await create(http, emu))["data"]["id"]
    emu.faults.add(FaultKind.DETAIL_DROP, task_id=second)
    assert (await detail_raw(http, emu, first))[2]["code"] == 0
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await detail_raw(http, emu, second)
    emu.faults.add(FaultKind.DETAIL_CODE, code=500)
    assert (await detail_raw(http, emu, first))[2]["code"] == 500
    assert (await detail_raw(http, emu, second))[2]["code"] == 0


async def test_media_failed_by_prompt_marker(emu, http) -> None:
    emu.faults.add(FaultKind.MEDIA_FAILED, prompt_contains="#fail", message="content policy", times=None)
    bad = (await create(http, emu, payload(prompt="storm #fail")))["data"]["id"]
    good = (await create(http, emu, payload(prompt="calm sea")))["data"]["id"]
    emu.advance(1.0)
    assert (await media(http, emu, bad))["resource_status"] == 0
    emu.advance(5.0)
    failed = await media(http, emu, bad)
    assert (failed["resource_status"], failed["status"], failed["error_msg"]) == (
        2,
        "failed",
        "content policy",
    )
    assert failed["url"] == ""
    assert (await media(http, emu, good))["resource_status"] == 1


async def test_media_deleted_for_the_next_task_only(emu, http) -> None:
    emu.faults.add(FaultKind.MEDIA_DELETED)
    gone = (await create(http, emu))["data"]["id"]
    fine = (await create(http, emu))["data"]["id"]
    emu.advance(10.0)
    assert (await media(http, emu, gone))["resource_status"] == 3
    assert (await media(http, emu, fine))["resource_status"] == 1
    async with http.get(f"{emu.base_url}/cdn/results/{gone}/0.mp4") as resp:
        assert resp.status == 404


async def test_media_status_failed_keeps_resource_status_1_and_a_url(emu, http) -> None:
    emu.faults.add(FaultKind.MEDIA_STATUS_FAILED)
    task_id = (await create(http, emu))["data"]["id"]
    emu.advance(10.0)
    m = await media(http, emu, task_id)
    assert (m["resource_status"], m["status"]) == (1, "failed") and m["url"].endswith(".mp4")


async def test_media_no_url_for_a_while_then_url(emu, http) -> None:
    emu.faults.add(FaultKind.MEDIA_NO_URL, seconds=30)
    task_id = (await create(http, emu))["data"]["id"]
    emu.advance(2.0)  # done at 2 s (200 s / speed 100)
    m = await media(http, emu, task_id)
    assert (m["resource_status"], m["status"], m["url"]) == (1, "success", "")
    emu.advance(29.0)
    assert (await media(http, emu, task_id))["url"] == ""
    emu.advance(1.0)
    assert (await media(http, emu, task_id))["url"].endswith("/0.mp4")


async def test_media_never_finishes_and_task_seconds_override(emu, http) -> None:
    emu.faults.add(FaultKind.MEDIA_NEVER)
    never = (await create(http, emu))["data"]["id"]
    emu.faults.add(FaultKind.TASK_SECONDS, seconds=500)
    slow = (await create(http, emu))["data"]["id"]
    assert emu.tasks[slow].seconds == 500 and emu.tasks[never].seconds == 2.0
    emu.advance(499)
    assert (await media(http, emu, slow))["resource_status"] == 0
    emu.advance(1)
    assert (await media(http, emu, slow))["resource_status"] == 1
    emu.advance(100_000)
    assert (await media(http, emu, never))["resource_status"] == 0


async def upload_token(http: aiohttp.ClientSession, emu: Emulator) -> Any:
    ts, nonce = str(int(time.time())), uuid.uuid4().hex[:21]
    sign = hashlib.sha1(f"webAgent|32jdskjdk320eew|{ts}|{nonce}".encode()).hexdigest().upper()
    query = {"appUid": KEY, "appId": "webAgent", "appKey": "32jdskjdk320eew", "cmimToken": KEY, "sign": sign}
    query |= {"timestamp": ts, "nonce": nonce, "fService": "privite", "fType": "picture", "fSuffix": "jpg"}
    query["fContentType"] = "image/jpeg"
    async with http.get(f"{emu.upload_base_url}/api/rest/oss/getuploadtoken", params=query) as resp:
        return await resp.json()


async def test_upload_code_and_put_status_faults(emu, http) -> None:
    emu.faults.add(FaultKind.UPLOAD_CODE, code=500, message="oss busy")
    assert (await upload_token(http, emu))["code"] == 500
    token = await upload_token(http, emu)
    assert token["code"] == 0
    emu.faults.add(FaultKind.PUT_STATUS, code=503)
    put = {"data": b"\xff\xd8jpeg", "headers": {"Content-Type": "image/jpeg"}}
    async with http.put(token["data"]["ful"], **put) as resp:
        assert resp.status == 503
    async with http.put(token["data"]["ful"], **put) as resp:
        assert resp.status == 200


async def test_faults_from_config_apply_and_reset_restores_them() -> None:
    config = EmulatorConfig.from_mapping(
        {"api_keys": {KEY: 100}, "faults": [{"kind": "create_code", "code": 6010, "times": 1}]}
    )
    async with Emulator(config) as emu, aiohttp.ClientSession() as http:
        assert (await create(http, emu))["code"] == 6010
        assert (await create(http, emu))["code"] == 0
        emu.reset()
        assert (await create(http, emu))["code"] == 6010 and emu.balance(KEY) == 100


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "explode"},
        {"kind": "create_code"},
        {"kind": "detail_delay"},
        {"kind": "create_drop", "times": 0},
        {"kind": "create_drop", "color": "red"},
        {"code": 500},
        "create_code",
    ],
)
def test_bad_faults_are_refused(raw) -> None:
    with pytest.raises(FaultError):
        Fault.from_mapping(raw)
    with pytest.raises(EmulatorConfigError, match=r"faults\[0\]"):
        EmulatorConfig.from_mapping({"faults": [raw]})
