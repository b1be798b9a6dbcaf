"""ima.emulator upload host over real HTTP: signed token call, presigned PUT, CDN round trip."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from ima.emulator import Emulator, EmulatorConfig, UploadSettings, expected_sign

KEY = "ima_upload_key_1234567890"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(api_keys={KEY: 100})) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def token_query(
    key: str = KEY, *, timestamp: int | None = None, content_type: str = "image/jpeg", **over: str
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = over.pop("nonce", uuid.uuid4().hex[:21])
    # Written out independently of the emulator's own helper, from the contract's formula.
    sign = hashlib.sha1(f"webAgent|32jdskjdk320eew|{ts}|{nonce}".encode()).hexdigest().upper()
    query = {
        "appUid": key,
        "appId": "webAgent",
        "appKey": "32jdskjdk320eew",
        "cmimToken": key,
        "sign": sign,
        "timestamp": ts,
        "nonce": nonce,
        "fService": "privite",
        "fType": "picture",
        "fSuffix": "jpg",
        "fContentType": content_type,
    }
    return query | over


async def get_token(http: aiohttp.ClientSession, emu: Emulator, query: dict[str, str]) -> tuple[int, Any]:
    async with http.get(f"{emu.upload_base_url}/api/rest/oss/getuploadtoken", params=query) as resp:
        return resp.status, await resp.json()


def test_expected_sign_matches_the_contract_formula() -> None:
    assert (
        expected_sign("1700000000", "a" * 21)
        == hashlib.sha1(b"webAgent|32jdskjdk320eew|1700000000|" + b"a" * 21).hexdigest().upper()
    )


async def test_token_put_and_cdn_round_trip(emu, http) -> None:
    status, body = await get_token(http, emu, token_query())
    assert status == 200 and body["code"] == 0
    data = body["data"]
    ful, fdl = URL(data["ful"]), URL(data["fdl"])
    assert ful.path.startswith("/oss/webAgent/privite/") and ful.path.endswith(".jpg")
    assert set(ful.query) == {"Expires", "OSSAccessKeyId", "Signature"}
    assert fdl.path == "/cdn/" + data["fdl_key"] and data["fdl_key"] == ful.path.removeprefix("/oss/")
    assert KEY not in data["ful"] and KEY not in data["fdl"]
    async with http.get(data["fdl"]) as resp:
        assert resp.status == 404  # nothing uploaded yet
    async with http.put(data["ful"], data=JPEG, headers={"Content-Type": "image/jpeg"}) as resp:
        assert resp.status == 200 and resp.headers["ETag"]
    async with http.get(data["fdl"]) as resp:
        assert resp.status == 200 and resp.content_type == "image/jpeg" and await resp.read() == JPEG


async def test_put_enforces_content_type_and_signature(emu, http) -> None:
    _, body = await get_token(http, emu, token_query(content_type="video/mp4"))
    ful = body["data"]["ful"]
    async with http.put(ful, data=b"mp4", headers={"Content-Type": "image/jpeg"}) as resp:
        assert resp.status == 403 and "SignatureDoesNotMatch" in await resp.text()
    tampered = str(URL(ful).update_query(Signature="0" * 40))
    async with http.put(tampered, data=b"mp4", headers={"Content-Type": "video/mp4"}) as resp:
        assert resp.status == 403
    async with http.put(f"{emu.upload_base_url}/oss/webAgent/privite/x.jpg", data=b"x") as resp:
        assert resp.status == 404
    async with http.put(ful, data=b"mp4", headers={"Content-Type": "video/mp4"}) as resp:
        assert resp.status == 200


async def test_put_content_type_check_can_be_switched_off(http) -> None:
    config = EmulatorConfig(api_keys={KEY: 1}, upload=UploadSettings(enforce_content_type=False))
    async with Emulator(config) as emu:
        _, body = await get_token(http, emu, token_query())
        async with http.put(body["data"]["ful"], data=b"png", headers={"Content-Type": "image/png"}) as resp:
            assert resp.status == 200
        async with http.get(body["data"]["fdl"]) as resp:
            assert resp.content_type == "image/png"


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"sign": "0" * 40}, 403),
        ({"fService": "private"}, 400),
        ({"appKey": "275c6a57"}, 403),
        ({"appId": "ima"}, 403),
        ({"nonce": "short"}, 400),
        ({"fType": "document"}, 400),
        ({"cmimToken": "ima_another_key_12345"}, 401),
        ({"appUid": "ima_unknown_key_12345", "cmimToken": "ima_unknown_key_12345"}, 401),
        ({"timestamp": ""}, 400),
    ],
)
async def test_bad_token_calls_are_refused(emu, http, over, code) -> None:
    status, body = await get_token(http, emu, token_query(**over))
    assert (status, body["code"]) == (200, code)
    assert emu.state.uploads == {}


async def test_lowercase_sign_is_refused(emu, http) -> None:
    query = token_query()
    query["sign"] = query["sign"].lower()
    assert (await get_token(http, emu, query))[1]["code"] == 403


async def test_missing_param_names_it(emu, http) -> None:
    query = token_query()
    del query["nonce"]
    _, body = await get_token(http, emu, query)
    assert body["code"] == 400 and "nonce" in body["message"]


async def test_stale_timestamp_only_when_checked(http) -> None:
    stale = int(time.time()) - 3600
    async with Emulator(EmulatorConfig(api_keys={KEY: 1})) as emu:
        assert (await get_token(http, emu, token_query(timestamp=stale)))[1]["code"] == 0
    config = EmulatorConfig(
        api_keys={KEY: 1}, upload=UploadSettings(check_timestamp=True, max_skew_seconds=300)
    )
    async with Emulator(config) as emu:
        assert (await get_token(http, emu, token_query(timestamp=stale)))[1]["code"] == 403
        emu.mirror_status = True
        status, body = await get_token(http, emu, token_query(timestamp=stale))
        assert (status, body["code"]) == (403, 403)


async def test_separate_upload_port(http) -> None:
    async with Emulator(EmulatorConfig(api_keys={KEY: 1})) as probe:
        pass  # only to learn that start() fills both URLs on one port
    assert probe.base_url == probe.upload_base_url
    emu = Emulator(EmulatorConfig(api_keys={KEY: 1}))
    await emu.start(upload_port=0)
    try:
        assert emu.base_url != emu.upload_base_url
        status, body = await get_token(http, emu, token_query())
        assert status == 200 and body["data"]["ful"].startswith(emu.upload_base_url)
        async with http.get(f"{emu.upload_base_url}/open/v1/product/list") as resp:
            assert resp.status == 404
        async with http.get(f"{emu.base_url}/api/rest/oss/getuploadtoken") as resp:
            assert resp.status == 404
    finally:
        await emu.stop()


async def test_upload_log_never_holds_the_key(emu, http) -> None:
    _, body = await get_token(http, emu, token_query())
    async with http.put(body["data"]["ful"], data=JPEG, headers={"Content-Type": "image/jpeg"}) as resp:
        assert resp.status == 200
    records = [r.to_json() for r in emu.requests]
    assert len(records) == 2
    assert KEY not in json.dumps(records)
    assert records[0]["query"]["appUid"] == KEY[:6] + "…" and records[0]["query"]["fService"] == "privite"
    assert records[1]["body"] == {"bytes": len(JPEG)}
