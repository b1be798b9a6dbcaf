"""ima.emulator admin API, request-log masking, config files, `serve`, and independence from the client."""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ima.emulator import (
    DEFAULT_API_KEY,
    CoverField,
    DurationType,
    Emulator,
    EmulatorConfig,
    EmulatorConfigError,
    FaultKind,
    http_status_for,
    serve,
)

KEY = "ima_admin_key_1234567890"
EMULATOR_DIR = Path(__file__).resolve().parents[2] / "ima" / "emulator"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(EmulatorConfig(api_keys={KEY: 500}, speed=100.0)) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def admin(
    http: aiohttp.ClientSession, emu: Emulator, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, f"{emu.base_url}/_emulator/{path}", json=body) as resp:
        return resp.status, await resp.json()


def payload(prompt: str = "dawn over hills") -> dict[str, Any]:
    inner = {
        "duration": 5,
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "audio": True,
        "prompt": prompt,
        "n": 1,
    }
    inner |= {"input_images": [], "cast": {"points": 30, "attribute_id": 1104}}
    p = {
        "attribute_id": 1104,
        "model_id": "ima-pro",
        "model_name": "IMA Video Pro",
        "model_version": "ima-pro",
    }
    p |= {"app": "ima", "platform": "web", "category": "text_to_video", "credit": 30, "parameters": inner}
    return {"task_type": "text_to_video", "enable_multi_model": False, "src_img_url": [], "parameters": [p]}


async def create(http: aiohttp.ClientSession, emu: Emulator, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with http.post(
        f"{emu.base_url}/open/v1/tasks/create", json=body or payload(), headers=headers
    ) as resp:
        return await resp.json()


async def test_admin_faults_tasks_advance_and_reset(emu, http) -> None:
    status, added = await admin(
        http,
        emu,
        "POST",
        "faults",
        [
            {"kind": "media_failed", "message": "nsfw"},
            {"kind": "create_drop", "times": None, "prompt_contains": "#drop"},
        ],
    )
    assert status == 201 and [a["kind"] for a in added] == ["media_failed", "create_drop"]
    assert (await admin(http, emu, "GET", "faults"))[1][1]["times"] is None
    task_id = (await create(http, emu))["data"]["id"]
    status, tasks = await admin(http, emu, "GET", "tasks")
    assert (
        [t["id"] for t in tasks] == [task_id]
        and tasks[0]["outcome"] == "failed"
        and tasks[0]["phase"] == "pending"
    )
    assert "key" not in tasks[0] and KEY not in json.dumps(tasks)
    status, moved = await admin(http, emu, "POST", "advance", {"seconds": 5})
    assert status == 200 and emu.state.offset == 5 and moved["now"] <= emu.state.now()
    assert (await admin(http, emu, "GET", "tasks"))[1][0]["phase"] == "failed"
    faults = (await admin(http, emu, "GET", "faults"))[1]
    assert faults[0]["left"] == 0 and faults[0]["hits"] == 1
    assert (await admin(http, emu, "DELETE", f"faults/{faults[1]['id']}"))[0] == 200
    assert (await admin(http, emu, "DELETE", f"faults/{faults[1]['id']}"))[0] == 404
    assert (await admin(http, emu, "POST", "faults", {"kind": "nope"}))[0] == 400
    assert (await admin(http, emu, "POST", "advance", {"seconds": -1}))[0] == 400
    status, state = await admin(http, emu, "GET", "state")
    assert state["tasks"] == 1 and state["balances"] == {KEY[:6] + "…": 470}
    assert (await admin(http, emu, "POST", "reset"))[0] == 200
    state = (await admin(http, emu, "GET", "state"))[1]
    assert (state["tasks"], state["requests"], state["faults"]) == (0, 0, 0) and emu.balance(KEY) == 500


async def test_admin_requests_are_masked_and_filterable(emu, http) -> None:
    body = payload(prompt=f"leaked {KEY} in a prompt")
    await create(http, emu, body)
    headers = {"Authorization": f"Bearer {KEY}", "x_app_language": "zh"}
    params = {"app": "ima", "platform": "web", "category": "text_to_video"}
    async with http.get(f"{emu.base_url}/open/v1/product/list", params=params, headers=headers):
        pass
    status, records = await admin(http, emu, "GET", "requests")
    assert status == 200 and len(records) == 2  # admin calls are not logged
    assert KEY not in json.dumps(records, ensure_ascii=False)
    assert records[0]["headers"]["authorization"] == f"Bearer {KEY[:6]}…"
    assert records[0]["body"]["parameters"][0]["parameters"]["prompt"] == f"leaked {KEY[:6]}… in a prompt"
    assert records[0]["code"] == 0 and records[1]["headers"]["x_app_language"] == "zh"
    only = (await admin(http, emu, "GET", "requests?path=/open/v1/product&method=get"))[1]
    assert [r["path"] for r in only] == ["/open/v1/product/list"]
    assert (await admin(http, emu, "DELETE", "requests"))[0] == 200 and len(emu.requests) == 0


async def test_unknown_presented_key_is_masked_too(emu, http) -> None:
    stranger = "ima_stranger_key_abcdef"
    async with http.post(
        f"{emu.base_url}/open/v1/tasks/detail",
        json={"task_id": "t"},
        headers={"Authorization": f"Bearer {stranger}"},
    ) as resp:
        assert (await resp.json())["code"] == 401
    assert stranger not in json.dumps([r.to_json() for r in emu.requests], ensure_ascii=False)


async def test_admin_mode_switches_mirror_variants_and_balances(emu, http) -> None:
    status, state = await admin(
        http,
        emu,
        "POST",
        "mode",
        {
            "mirror_status": True,
            "variants": {
                "success_code": 200,
                "cover_field": "cover_url",
                "duration_type": "number",
                "pending_resource_status": "",
            },
        },
    )
    assert (
        status == 200 and state["mirror_status"] and state["variants"]["pending_resource_status"] == "empty"
    )
    assert (
        emu.state.variants.cover_field is CoverField.COVER_URL
        and emu.state.variants.duration_type is DurationType.NUMBER
    )
    assert (await create(http, emu))["code"] == 200
    assert (await admin(http, emu, "POST", "balances", {"key": KEY, "balance": 5}))[1] == {
        "key": KEY[:6] + "…",
        "balance": 5,
    }
    async with http.post(
        f"{emu.base_url}/open/v1/tasks/create", json=payload(), headers={"Authorization": f"Bearer {KEY}"}
    ) as resp:
        assert resp.status == 402 and (await resp.json())["code"] == 4008
    for bad in (
        {"variants": {"success_code": 1}},
        {"variants": {"cover_field": "thumb"}},
        {"speed": 2},
        {"mirror_status": "yes"},
    ):
        assert (await admin(http, emu, "POST", "mode", bad))[0] == 400
    assert (await admin(http, emu, "POST", "mode", {"verify_status": "processing"}))[1][
        "verify_status"
    ] == "processing"


def test_status_mapping() -> None:
    assert [http_status_for(c) for c in (0, 200, 401, 4008, 4014, 6006, 6009, 6010, 500, 404, 503, 7777)] == [
        200,
        200,
        401,
        402,
        403,
        400,
        400,
        400,
        500,
        404,
        503,
        400,
    ]


def test_config_from_yaml_and_json_files(tmp_path: Path) -> None:
    yaml_file = tmp_path / "emu.yaml"
    yaml_file.write_text(
        "api_keys:\n  ima_a_key_000000: 50\nspeed: 20\nmirror_status: true\n"
        "variants:\n  success_code: 200\n  cover_field: cover\n  resolution_case: upper\n  pending_resource_status: ''\n"
        "base_seconds:\n  ima-pro: 300\ncodes:\n  unknown_task: 1404\nupload:\n  check_timestamp: true\n"
        "faults:\n  - {kind: create_code, code: 500, when: {resolution: 1080p}, times: 2}\n",
        encoding="utf-8",
    )
    config = EmulatorConfig.from_file(yaml_file)
    assert config.api_keys == {"ima_a_key_000000": 50} and config.speed == 20 and config.mirror_status
    assert config.variants.success_code == 200 and config.variants.cover_field is CoverField.COVER
    assert config.variants.pending_resource_status.value == "empty"
    assert config.base_seconds == {"ima-pro": 300} and config.codes.unknown_task == 1404
    assert config.upload.check_timestamp and config.faults[0].kind is FaultKind.CREATE_CODE
    assert config.faults[0].when == {"resolution": "1080P"} and config.faults[0].times == 2
    assert "ima_a_key" not in repr(config)
    json_file = tmp_path / "emu.json"
    json_file.write_text(json.dumps({"api_keys": ["ima_b_key_000000"], "speed": 5}), encoding="utf-8")
    assert EmulatorConfig.from_file(json_file).api_keys == {"ima_b_key_000000": 1_000_000}


@pytest.mark.parametrize(
    ("raw", "dotted"),
    [
        ({"sped": 2}, "sped"),
        ({"speed": 0}, "speed"),
        ({"variants": {"cover_field": "thumb"}}, "variants.cover_field"),
        ({"variants": {"success_code": 1}}, "variants.success_code"),
        ({"variants": {"colour": 1}}, "variants.colour"),
        ({"upload": {"check_timestamp": "yes"}}, "upload.check_timestamp"),
        ({"base_seconds": {"ima-pro": -1}}, "base_seconds.ima-pro"),
        ({"api_keys": {}}, "api_keys"),
        ({"faults": {"kind": "create_drop"}}, "faults"),
    ],
)
def test_config_errors_name_the_dotted_key(raw, dotted) -> None:
    with pytest.raises(EmulatorConfigError, match=re.escape(dotted)):
        EmulatorConfig.from_mapping(raw)


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(EmulatorConfigError, match="cannot read"):
        EmulatorConfig.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("speed: [1,\n", encoding="utf-8")
    with pytest.raises(EmulatorConfigError, match="YAML"):
        EmulatorConfig.from_file(bad)


async def test_serve_prints_urls_and_runs_until_cancelled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "emu.json"
    config_file.write_text(json.dumps({"speed": 1}), encoding="utf-8")
    runner = asyncio.create_task(serve("127.0.0.1", 0, speed=20, config_path=str(config_file)))
    printed = ""

    async def banner() -> str:
        nonlocal printed
        while "admin:" not in printed:
            await asyncio.sleep(0)  # yield to the server task; no wall-clock wait
            printed += capsys.readouterr().out
        return printed

    try:
        await asyncio.wait_for(banner(), timeout=5)
        assert "speed x20" in printed and f"built-in test key: {DEFAULT_API_KEY}" in printed
        api = re.search(r"api:\s+(\S+)", printed)[1]
        async with aiohttp.ClientSession() as http:
            params = {"app": "ima", "platform": "web", "category": "text_to_video"}
            headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
            async with http.get(f"{api}/open/v1/product/list", params=params, headers=headers) as resp:
                assert (await resp.json())["code"] == 0
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def test_serve_rejects_a_bad_config_before_binding(tmp_path: Path) -> None:
    config_file = tmp_path / "emu.json"
    config_file.write_text(json.dumps({"sped": 1}), encoding="utf-8")
    with pytest.raises(EmulatorConfigError, match="sped"):
        await serve("127.0.0.1", 0, speed=1, config_path=str(config_file))


def test_emulator_imports_no_client_module() -> None:
    # The emulator is written from the contract alone, so it and the client can catch each other's mistakes.
    allowed = {"ima.errors", "ima.models"}
    for path in EMULATOR_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert f"ima.{node.module}" in allowed, f"{path.name} imports ima.{node.module}"
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ima"):
                assert node.module in allowed, f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("ima.") and a.name not in allowed for a in node.names)


def test_bundled_assets_are_small_real_media() -> None:
    video = (EMULATOR_DIR / "assets" / "sample.mp4").read_bytes()
    cover = (EMULATOR_DIR / "assets" / "cover.jpg").read_bytes()
    assert video[4:8] == b"ftyp" and b"moov" in video and len(video) < 50_000
    assert cover[:3] == b"\xff\xd8\xff" and cover[-2:] == b"\xff\xd9" and len(cover) < 50_000
