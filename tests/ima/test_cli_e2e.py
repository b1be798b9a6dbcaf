"""`ima` as a real subprocess against the emulator running on the test's event loop (127.0.0.1, port 0)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ima.emulator import Emulator, EmulatorConfig, FaultKind
from ima.models import API_KEY_URL, RECORDS_URL, SUBSCRIPTION_URL

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "ima" / "emulator" / "fixtures" / "products.json"
KEY = "ima_e2e_cli_key_0123456789abcdef"
SPEED = 2000.0  # ima-pro-fast's 90 emulator seconds pass in 45 ms


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def last(self) -> dict[str, Any]:
        """The last stdout line as JSON (the --output-json contract)."""
        lines = self.out.strip().splitlines()
        assert lines, f"no stdout; stderr was:\n{self.err}"
        return json.loads(lines[-1])


Cli = Callable[..., Awaitable[Run]]


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMA_")}
    env.update(HOME=str(home), PYTHONIOENCODING="utf-8", **(extra or {}))
    return env


RUN_LIMIT_S = 30.0


async def _run(args: list[str], env: dict[str, str]) -> Run:
    # cwd=ROOT so `-m ima` imports this checkout whatever the installed copy is.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ima",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), RUN_LIMIT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Run(proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode())


async def _emulator(**config: Any) -> Emulator:
    config.setdefault("api_keys", {KEY: 100_000})
    config.setdefault("speed", SPEED)
    return await Emulator(EmulatorConfig(**config)).start(host="127.0.0.1", port=0)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    emulator = await _emulator()
    try:
        yield emulator
    finally:
        await emulator.stop()


def _cli_for(emulator: Emulator, tmp_path: Path) -> Cli:
    async def cli(command: str, *args: str, key: str = KEY, env: dict[str, str] | None = None) -> Run:
        argv = [
            command,
            *args,
            "--base-url",
            emulator.base_url,
            "--upload-base-url",
            emulator.upload_base_url,
            "--log-dir",
            str(tmp_path / "logs"),
        ]
        if command == "create":
            argv += [
                "--prefs-file",
                str(tmp_path / "prefs.json"),
                "--poll-interval",
                "0.05",
                "--max-wait",
                "20",
            ]
        run = await _run(argv, _env(tmp_path / "home", {"IMA_API_KEY": key, **(env or {})}))
        assert key not in run.out + run.err  # the key is never printed
        return run

    return cli


@pytest.fixture
def cli(emu: Emulator, tmp_path: Path) -> Cli:
    return _cli_for(emu, tmp_path)


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    jpg = (ROOT / "ima" / "emulator" / "assets" / "cover.jpg").read_bytes()
    paths = []
    for name in ("first.jpg", "last.jpg"):
        path = tmp_path / name
        path.write_bytes(jpg + name.encode())  # distinct bytes per file
        paths.append(path)
    return paths


def _creates(emu: Emulator) -> list[Any]:
    return [r.body for r in emu.requests.find("/open/v1/tasks/create", "POST")]


def _log_text(tmp_path: Path) -> str:
    return "".join(
        p.read_text(encoding="utf-8") for p in sorted((tmp_path / "logs").glob("ima_create_*.log"))
    )


# ---- success paths -------------------------------------------------------------------------------


async def test_text_to_video_prints_the_vendor_json_and_saves_the_preference(
    cli: Cli, emu: Emulator, tmp_path: Path
) -> None:
    run = await cli("create", "--task-type", "text_to_video", "--prompt", "a cat surfing", "--output-json")
    assert run.code == 0, run.err
    result = run.last
    assert set(result) == {"task_id", "url", "cover_url", "model_id", "model_name", "credit"}
    assert (result["model_id"], result["model_name"]) == ("ima-pro-fast", "Ima Sevio 1.0-Fast")  # the default
    assert result["task_id"] in emu.tasks
    assert result["url"].startswith(emu.base_url) and result["url"].endswith(".mp4")
    assert result["cover_url"].endswith(".jpg")
    assert result["credit"] == emu.tasks[result["task_id"]].points
    assert "Ima Sevio 1.0-Fast" in run.err and "credits" in run.err  # progress goes to stderr
    prefs = json.loads((tmp_path / "prefs.json").read_text(encoding="utf-8"))
    entry = prefs["user_default"]["text_to_video"]
    assert (entry["model_id"], entry["model_name"], entry["credit"]) == (
        "ima-pro-fast",
        "Ima Sevio 1.0-Fast",
        15,
    )
    log = _log_text(tmp_path)
    assert KEY not in log and KEY[:10] + "..." in log
    assert f"created task_id={result['task_id']}" in log


async def test_the_issue_example_keeps_15_s_and_says_why(cli: Cli, emu: Emulator) -> None:
    run = await cli(
        "create",
        "--task-type",
        "text_to_video",
        "--model-id",
        "ima-pro",
        "--prompt",
        "p",
        "--extra-params",
        '{"duration":15,"resolution":"1080p"}',
        "--json",
    )
    assert run.code == 0, run.err
    assert "Note: Ima Sevio 1.0 offers 1080P only up to 10 s, so this is 720P at 15 s" in run.err
    (body,) = _creates(emu)
    inner = body["parameters"][0]["parameters"]
    assert (str(inner["duration"]), inner["resolution"].lower()) == ("15", "720p")


async def test_fast_full_hd_names_the_model_that_offers_it(cli: Cli, emu: Emulator) -> None:
    run = await cli(
        "create",
        "--task-type",
        "text_to_video",
        "--model-id",
        "ima-pro-fast",
        "--prompt",
        "p",
        "--extra-params",
        '{"resolution":"1080p"}',
    )
    assert run.code == 0, run.err
    assert "Ima Sevio 1.0 offers 1080P: run again with --model-id ima-pro" in run.err


async def test_the_saved_preference_is_used_when_model_is_absent(cli: Cli, emu: Emulator) -> None:
    first = await cli(
        "create",
        "--task-type",
        "text_to_video",
        "--model-id",
        "Ima Sevio 1.0",
        "--prompt",
        "p",
        "--output-json",
        "--user-id",
        "alice",
    )
    assert first.code == 0, first.err
    assert first.last["model_id"] == "ima-pro"
    second = await cli(
        "create", "--task-type", "text_to_video", "--prompt", "p", "--user-id", "alice", "--language", "zh"
    )
    assert second.code == 0, second.err
    assert "使用你上次在 text_to_video 用的模型" in second.err
    assert "视频已生成" in second.out and "Ima Sevio 1.0（ima-pro）" in second.out  # human result, Chinese
    assert [c["parameters"][0]["model_id"] for c in _creates(emu)] == ["ima-pro", "ima-pro"]


async def test_image_to_video_uploads_a_local_file(cli: Cli, emu: Emulator, images: list[Path]) -> None:
    run = await cli(
        "create",
        "--task-type",
        "image_to_video",
        "--model-id",
        "ima-pro",
        "--prompt",
        "zoom in",
        "--input-images",
        str(images[0]),
        "--output-json",
    )
    assert run.code == 0, run.err
    (body,) = _creates(emu)
    (url,) = body["src_img_url"]
    assert url.startswith(emu.upload_base_url + "/cdn/")
    assert body["parameters"][0]["parameters"]["input_images"] == [url]
    stored = [slot.data for slot in emu.state.uploads.values()]
    assert stored == [images[0].read_bytes()]
    assert run.last["model_name"] == "Ima Sevio 1.0"


async def test_first_last_frame_uploads_both_files_in_order(
    cli: Cli, emu: Emulator, images: list[Path]
) -> None:
    run = await cli(
        "create",
        "--task-type",
        "first_last_frame_to_video",
        "--prompt",
        "day to night",
        "--input-images",
        str(images[0]),
        str(images[1]),
        "--output-json",
    )
    assert run.code == 0, run.err
    (body,) = _creates(emu)
    first, last = body["src_img_url"]
    by_path = {path: slot.data for path, slot in emu.state.uploads.items()}
    assert by_path[first.split("/cdn/", 1)[1]] == images[0].read_bytes()
    assert by_path[last.split("/cdn/", 1)[1]] == images[1].read_bytes()


async def test_reference_mixes_a_local_file_and_a_url(cli: Cli, emu: Emulator, images: list[Path]) -> None:
    remote = f"{emu.base_url}/cdn/results/ref.jpg"
    run = await cli(
        "create",
        "--task-type",
        "reference_image_to_video",
        "--prompt",
        "same style",
        "--input-images",
        str(images[0]),
        "--input-images",
        remote,
        "--output-json",
    )
    assert run.code == 0, run.err
    (body,) = _creates(emu)
    uploaded, passed = body["src_img_url"]
    assert uploaded.startswith(emu.upload_base_url + "/cdn/") and passed == remote
    assert run.last["task_id"] in emu.tasks


async def test_unwritable_prefs_and_log_paths_do_not_fail_the_run(emu: Emulator, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory", encoding="utf-8")
    argv = [
        "create",
        "--task-type",
        "text_to_video",
        "--prompt",
        "p",
        "--output-json",
        "--poll-interval",
        "0.05",
        "--base-url",
        emu.base_url,
        "--prefs-file",
        str(blocker / "prefs.json"),
    ]
    run = await _run(argv, _env(tmp_path, {"IMA_API_KEY": KEY, "IMA_LOG_DIR": str(blocker / "logs")}))
    assert run.code == 0, run.err
    assert run.last["task_id"] in emu.tasks
    assert "Note: no log file" in run.err
    assert "Note: the model preference could not be saved" in run.err
    assert "Traceback" not in run.err


# ---- reflection ----------------------------------------------------------------------------------


def _products_with_a_cheaper_mode_rule(tmp_path: Path) -> str:
    # The fast text leaf gains a cheapest rule keyed on `mode`, which the default parameters lack:
    # the one shape where a 6009 has something to add.
    trees = json.loads(FIXTURE.read_text(encoding="utf-8"))
    trees = copy.deepcopy(trees)
    for group in trees["categories"]["text_to_video"]:
        for leaf in group.get("children", []):
            if leaf["id"] == "ima-pro-fast":
                leaf["credit_rules"].append(
                    {
                        "attribute_id": 1399,
                        "points": 5,
                        "attributes": {"duration": "5", "resolution": "480p", "mode": "eco"},
                    }
                )
    path = tmp_path / "products.json"
    path.write_text(json.dumps(trees), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("code", "mirror", "note"),
    [
        (500, False, "IMA refused resolution=720p; retried with 480p"),
        (500, True, "IMA refused resolution=720p; retried with 480p"),  # HTTP 500 carrying the body code
        (6009, False, "added the cheapest rule's settings: duration=5, resolution=480p, mode=eco"),
        (6010, False, "switched to price rule"),
    ],
)
async def test_create_rejections_recover_through_reflection(
    tmp_path: Path, code: int, mirror: bool, note: str
) -> None:
    emulator = await _emulator(
        mirror_status=mirror, products_path=_products_with_a_cheaper_mode_rule(tmp_path)
    )
    try:
        emulator.faults.add(FaultKind.CREATE_CODE, code=code, times=1)
        run = await _cli_for(emulator, tmp_path)(
            "create", "--task-type", "text_to_video", "--prompt", "p", "--output-json"
        )
        assert run.code == 0, run.err
        assert "Attempt 2" in run.err and note in run.err
        assert len(_creates(emulator)) == 2
        first, second = (c["parameters"][0] for c in _creates(emulator))
        assert first["parameters"] != second["parameters"] or first["attribute_id"] != second["attribute_id"]
        task = emulator.tasks[run.last["task_id"]]
        assert run.last["credit"] == task.points == second["credit"]
        prefs = json.loads((tmp_path / "prefs.json").read_text(encoding="utf-8"))
        assert prefs["user_default"]["text_to_video"]["credit"] == second["credit"]
    finally:
        await emulator.stop()


# ---- failures that end the run -------------------------------------------------------------------


async def test_invalid_key_ends_with_the_key_hint(cli: Cli, emu: Emulator) -> None:
    wrong = "ima_wrong_key_fedcba9876543210"
    run = await cli("create", "--task-type", "text_to_video", "--prompt", "p", "--output-json", key=wrong)
    assert run.code == 3
    error = run.last["error"]
    assert error["code"] == "401"
    assert API_KEY_URL in error["hint"]
    assert "Traceback" not in run.err
    assert _creates(emu) == []


async def test_insufficient_credits_ends_with_the_top_up_hint(cli: Cli, emu: Emulator) -> None:
    emu.set_balance(KEY, 1)
    run = await cli("create", "--task-type", "text_to_video", "--prompt", "p", "--output-json")
    assert run.code == 3
    error = run.last["error"]
    assert error["code"] == "4008"
    assert SUBSCRIPTION_URL in error["hint"]
    assert len(_creates(emu)) == 1  # 4008 is never retried
    assert "Traceback" not in run.err


async def test_missing_key_needs_no_server(tmp_path: Path) -> None:
    run = await _run(
        [
            "create",
            "--task-type",
            "text_to_video",
            "--prompt",
            "p",
            "--output-json",
            "--log-dir",
            str(tmp_path),
        ],
        _env(tmp_path),
    )
    assert run.code == 2
    error = run.last["error"]
    assert error["code"] == "missing_api_key"
    assert API_KEY_URL in error["hint"]


async def test_bad_arguments_report_json_and_exit_2(tmp_path: Path) -> None:
    env = _env(tmp_path, {"IMA_API_KEY": KEY, "IMA_LOG_DIR": str(tmp_path)})
    bad_type = await _run(["create", "--task-type", "text_to_image", "--prompt", "p", "--output-json"], env)
    assert bad_type.code == 2 and bad_type.last["error"]["code"] == "usage"
    bad_model = await _run(
        ["create", "--task-type", "text_to_video", "--model-id", "kling", "--prompt", "p", "--output-json"],
        env,
    )
    assert bad_model.code == 2 and bad_model.last["error"]["code"] == "model_not_allowed"
    missing_frame = await _run(
        [
            "create",
            "--task-type",
            "first_last_frame_to_video",
            "--prompt",
            "p",
            "--input-images",
            "https://x/a.jpg",
            "--output-json",
        ],
        env,
    )
    assert missing_frame.code == 2 and "two images" in missing_frame.last["error"]["message"]
    assert all("Traceback" not in r.err for r in (bad_type, bad_model, missing_frame))


@pytest.mark.parametrize("kind", [FaultKind.DETAIL_HTTP, FaultKind.DETAIL_DROP])
async def test_transient_detail_failures_do_not_end_the_job(cli: Cli, emu: Emulator, kind: FaultKind) -> None:
    emu.faults.add(kind, times=1)
    run = await cli("create", "--task-type", "text_to_video", "--prompt", "p", "--output-json")
    assert run.code == 0, run.err
    assert run.last["task_id"] in emu.tasks
    assert [a.hits for a in emu.faults] == [1]


async def test_a_task_that_never_finishes_stops_at_max_wait(emu: Emulator, tmp_path: Path) -> None:
    emu.faults.add(FaultKind.MEDIA_NEVER, times=1)
    argv = [
        "create",
        "--task-type",
        "text_to_video",
        "--prompt",
        "p",
        "--output-json",
        "--poll-interval",
        "0.05",
        "--max-wait",
        "1.5",
        "--base-url",
        emu.base_url,
        "--log-dir",
        str(tmp_path / "logs"),
        "--prefs-file",
        str(tmp_path / "prefs.json"),
    ]
    run = await _run(argv, _env(tmp_path, {"IMA_API_KEY": KEY}))
    assert run.code == 5
    error = run.last["error"]
    assert error["code"] == "timeout"
    assert RECORDS_URL in error["hint"]
    assert not (tmp_path / "prefs.json").exists()  # no preference for a run without a video


async def test_a_failed_generation_exits_4(cli: Cli, emu: Emulator) -> None:
    emu.faults.add(FaultKind.MEDIA_FAILED, times=1, message="content policy")
    run = await cli("create", "--task-type", "text_to_video", "--prompt", "p", "--output-json")
    assert run.code == 4
    assert run.last["error"]["code"] == "task_failed"


async def test_a_lost_create_answer_is_not_resent(cli: Cli, emu: Emulator) -> None:
    emu.faults.add(FaultKind.CREATE_DROP, times=1)
    run = await cli("create", "--task-type", "text_to_video", "--prompt", "p", "--output-json")
    assert run.code == 6
    assert RECORDS_URL in run.last["error"]["hint"]
    assert len(_creates(emu)) == 1


# ---- products and status -------------------------------------------------------------------------


async def test_products_lists_only_allowed_models(cli: Cli, emu: Emulator, tmp_path: Path) -> None:
    run = await cli("products", "--category", "image_to_video", "--json", "--language", "zh")
    assert run.code == 0, run.err
    items = run.last["products"]
    assert {i["model_id"] for i in items} == {"ima-pro", "ima-pro-fast"}  # kling is left out
    fast = next(i for i in items if i["version_id"] == "ima-pro-fast")
    assert fast["model_name"] == "Ima Sevio 1.0-Fast"
    assert {o["field"] for o in fast["options"]} >= {"duration", "resolution", "aspect_ratio", "audio"}
    assert all({"attribute_id", "points", "attributes"} <= set(r) for r in fast["credit_rules"])
    (request,) = emu.requests.find("/open/v1/product/list")
    assert request.query["category"] == "image_to_video"
    assert request.headers.get("x_app_language") == "zh"
    table = await cli("products")
    assert table.code == 0
    for category in (
        "text_to_video",
        "image_to_video",
        "first_last_frame_to_video",
        "reference_image_to_video",
    ):
        assert f"{category}: 3 model version(s)" in table.out
    assert "kling" not in table.out
    vendor_style = await _run(
        ["--task-type", "first_last_frame_to_video", "--list-models", "--base-url", emu.base_url],
        _env(tmp_path, {"IMA_API_KEY": KEY, "IMA_LOG_DIR": str(tmp_path / "logs")}),
    )
    assert vendor_style.code == 0, vendor_style.err
    assert "first_last_frame_to_video: 3 model version(s)" in vendor_style.out


async def test_status_reads_one_task(cli: Cli, emu: Emulator) -> None:
    created = await cli("create", "--task-type", "text_to_video", "--prompt", "p", "--output-json")
    task_id = created.last["task_id"]
    before = len(emu.requests.find("/open/v1/tasks/detail"))
    status = await cli("status", task_id, "--output-json")
    assert status.code == 0, status.err
    assert status.last == {
        "task_id": task_id,
        "state": "succeeded",
        "url": created.last["url"],
        "cover_url": created.last["cover_url"],
        "error": "",
    }
    assert len(emu.requests.find("/open/v1/tasks/detail")) == before + 1
    human = await cli("status", task_id)
    assert f"Task {task_id}: succeeded" in human.out and created.last["url"] in human.out
    unknown = await cli("status", "task_nope", "--output-json")
    assert unknown.code != 0 and "error" in unknown.last


# ---- the emulator command ------------------------------------------------------------------------


async def test_emulator_command_serves_until_sigterm(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ima",
        "emulator",
        "--port",
        "0",
        "--speed",
        "50",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=_env(tmp_path),
    )
    try:
        assert proc.stdout is not None
        header = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert "speed x50" in header
        api_line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        base_url = api_line.split()[-1]
        assert base_url.startswith("http://127.0.0.1:")
        products = await _run(
            [
                "products",
                "--category",
                "text_to_video",
                "--json",
                "--base-url",
                base_url,
                "--log-dir",
                str(tmp_path),
            ],
            _env(tmp_path, {"IMA_API_KEY": "ima_emulator_local_key"}),
        )
        assert products.code == 0, products.err
        assert len(products.last["products"]) == 3
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert "Emulator stopped." in err.decode()
    assert "Traceback" not in err.decode()


async def test_emulator_command_reports_a_taken_port(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        run = await _run(["emulator", "--port", str(port)], _env(tmp_path))
    finally:
        server.close()
        await server.wait_closed()
    assert run.code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in run.err
    assert "Traceback" not in run.err


async def test_ctrl_c_while_waiting_names_the_running_task(emu: Emulator, tmp_path: Path) -> None:
    emu.faults.add(FaultKind.MEDIA_NEVER, times=1)
    argv = [
        "create",
        "--task-type",
        "text_to_video",
        "--prompt",
        "p",
        "--poll-interval",
        "0.05",
        "--base-url",
        emu.base_url,
        "--log-dir",
        str(tmp_path / "logs"),
    ]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ima",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=_env(tmp_path, {"IMA_API_KEY": KEY}),
    )
    try:
        assert proc.stderr is not None
        seen = []
        while not any("Waiting for the video" in line for line in seen):
            line = (await asyncio.wait_for(proc.stderr.readline(), 10)).decode()
            assert line, f"stderr ended early: {seen}"
            seen.append(line)
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    (task_id,) = emu.tasks
    assert proc.returncode == 130
    assert f"ima status {task_id}" in err.decode()
    assert "Traceback" not in err.decode()
