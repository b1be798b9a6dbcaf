"""Logging: secrets never reach a line, every job line carries the job's trace id, JSON lines, rotation."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.logs import BACKUP_DAYS, JsonFormatter, Redactor, setup_logging, trace_id_for
from ima.emulator import Emulator, EmulatorConfig
from tests.bot.procs import ROOT

IMA_KEY = "ima_ops_test_key_9f8e7d6c5b4a3928"
DISCORD_TOKEN = "MTAxNjQ4ODg4ODg4ODg4ODg4OA.GhJkLm.abcdefghijklmnopqrstuvwxyz0123456789AB"
FEISHU_SECRET = "feishu-app-secret-5a4b3c2d1e"


@pytest.fixture
def isolated_root() -> Iterator[None]:
    """Leaves the root logger (and lark-oapi's logger) as it found them."""
    root, lark = logging.getLogger(), logging.getLogger("Lark")
    saved = (list(root.handlers), root.level, list(lark.handlers), lark.level, lark.propagate)
    try:
        yield
    finally:
        for h in root.handlers:
            if h not in saved[0]:
                root.removeHandler(h)
                h.close()
        root.setLevel(saved[1])
        for h in saved[2]:
            if h not in lark.handlers:
                lark.addHandler(h)
        lark.setLevel(saved[3])
        lark.propagate = saved[4]


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("imabot.test", logging.WARNING, __file__, 1, msg, args, exc_info)


def test_configured_secrets_and_key_shapes_are_masked_everywhere_in_a_record() -> None:
    r = Redactor([IMA_KEY, DISCORD_TOKEN, FEISHU_SECRET, "short"])
    try:
        raise RuntimeError(f"upload failed for {IMA_KEY}")
    except RuntimeError as exc:
        record = _record(
            "calling %s with %s", f"https://x/y?appUid={IMA_KEY}&cmimToken={IMA_KEY}", FEISHU_SECRET, exc=exc
        )
    assert r.filter(record)
    text = logging.Formatter().format(record)
    assert IMA_KEY not in text and FEISHU_SECRET not in text
    assert "appUid=***" in text and "Traceback" in text  # the traceback stays, masked

    shapes = [
        ("Authorization: Bearer ima_unlisted_key_0123456789abcdef", "ima_unlisted_key_0123456789abcdef"),
        ("Authorization: Bot " + DISCORD_TOKEN, DISCORD_TOKEN),
        ("token " + DISCORD_TOKEN + " leaked", DISCORD_TOKEN),
        ("tenant t-g1044ghJKL0123456789abcdef used", "t-g1044ghJKL0123456789abcdef"),
        ("wss://x/ws?device_id=7&access_key=abc123secret&ticket=tk-987", "abc123secret"),
    ]
    bare = Redactor()
    for line, secret in shapes:
        assert secret not in bare.redact(line), line
        assert "***" in bare.redact(line)
    # Ordinary words that merely look like the prefixes stay readable.
    for plain in ("model ima_pro_fast", "x-app-source ima_skills", "job=0a1b2c3d4e5f queued", "t-shirt"):
        assert bare.redact(plain) == plain


def test_trace_id_comes_from_the_message_or_the_job_task() -> None:
    assert trace_id_for("job=0a1b2c3d4e5f queued text_to_video") == "0a1b2c3d4e5f"
    assert trace_id_for("nothing about a job") == "-"

    async def inside() -> str:
        return trace_id_for("poll answered")

    async def main() -> tuple[str, str]:
        job_task = asyncio.create_task(inside(), name="run:00aa11bb22cc")
        other = asyncio.create_task(inside(), name="adapter-console")
        return await job_task, await other

    assert asyncio.run(main()) == ("00aa11bb22cc", "-")


def test_json_lines_carry_the_trace_id_and_exceptions(isolated_root: None) -> None:
    out = io.StringIO()
    setup_logging(level="INFO", json_lines=True, stream=out, secrets=[IMA_KEY])
    log = logging.getLogger("imabot.test")
    log.info("job=%s started with key %s", "abcdef012345", IMA_KEY)
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("job=abcdef012345 crashed")
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["trace_id"] for x in lines] == ["abcdef012345", "abcdef012345"]
    assert lines[0]["message"] == "job=abcdef012345 started with key ***"
    assert lines[1]["level"] == "ERROR" and "ValueError: boom" in lines[1]["message"]
    assert isinstance(JsonFormatter().format(_record("plain")), str)


def test_setup_is_idempotent_and_takes_over_lark_output(isolated_root: None) -> None:
    lark = logging.getLogger("Lark")
    lark.addHandler(logging.StreamHandler(io.StringIO()))  # what lark-oapi installs on import
    first = setup_logging(level="DEBUG", stream=io.StringIO())
    second = setup_logging(level="DEBUG", stream=io.StringIO())
    root = logging.getLogger()
    assert not any(h in root.handlers for h in first)
    assert all(h in root.handlers for h in second)
    assert lark.handlers == [] and lark.propagate and lark.level == logging.WARNING
    assert logging.getLogger("aiosqlite").level == logging.INFO  # its DEBUG lines carry user prompts


def test_file_logs_rotate_at_midnight_and_keep_seven_days(tmp_path: Path, isolated_root: None) -> None:
    path = tmp_path / "logs" / "imabot.log"
    handlers = setup_logging(level="INFO", file=str(path), stream=io.StringIO())
    files = [h for h in handlers if isinstance(h, logging.handlers.TimedRotatingFileHandler)]
    assert len(files) == 1
    handler = files[0]
    assert handler.when == "MIDNIGHT" and handler.backupCount == BACKUP_DAYS == 6
    for day in range(1, 11):  # ten old daily files lying around
        (path.parent / f"imabot.log.2020-01-{day:02d}").write_text("old\n", encoding="utf-8")
    logging.getLogger("imabot.test").info("before rotation")
    handler.doRollover()
    logging.getLogger("imabot.test").info("after rotation")
    kept = sorted(p.name for p in path.parent.iterdir())
    assert "imabot.log" in kept
    assert len(kept) == 1 + BACKUP_DAYS  # today's file and six rotated ones: seven days
    assert "imabot.log.2020-01-01" not in kept  # the oldest went first
    assert "after rotation" in path.read_text(encoding="utf-8")


@pytest.mark.slow
async def test_a_full_debug_run_never_logs_a_secret(tmp_path: Path) -> None:
    """A real `imabot console` run at DEBUG with a file log: two image jobs (the key travels in the upload
    URL), one refused by IMA at upload and one to its video, and an empty request. No secret appears in
    the file, on stderr or on stdout, and each job's lines carry that job's trace id."""
    image = tmp_path / "first.png"
    image.write_bytes((ROOT / "tests" / "data" / "tiny.png").read_bytes())
    log_file = tmp_path / "logs" / "imabot.log"
    config = EmulatorConfig.from_mapping(
        {
            "api_keys": {IMA_KEY: 1_000_000},
            "speed": 60,
            "faults": [{"kind": "upload_code", "code": 401, "times": 1}],
        }
    )
    async with Emulator(config) as emu:
        cfg = {
            "ima": {"api_key": IMA_KEY, "base_url": emu.base_url, "upload_base_url": emu.upload_base_url},
            "store": {"path": str(tmp_path / "jobs.sqlite3")},
            "jobs": {"poll_interval": 0.2, "progress_interval_fast": 0.5, "progress_interval_pro": 0.5},
            "discord": {"token": DISCORD_TOKEN},
            "feishu": {"app_id": "cli_ops", "app_secret": FEISHU_SECRET},
            "logging": {"level": "DEBUG", "file": str(log_file)},
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "console",
            "--config",
            str(path),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(tmp_path),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        lines = f"{image} make the grass sway, fast 5s\n{image} a kite in the wind, fast 5s\n/video\n"
        out, err = await asyncio.wait_for(proc.communicate(lines.encode()), 60)
        assert proc.returncode == 0, err.decode()[-3000:]
        assert len(emu.tasks) == 1  # the other job stopped at its refused upload
    stdout, stderr, logged = out.decode(), err.decode(), log_file.read_text(encoding="utf-8")
    assert "Your video is ready" in stdout
    assert "upload token → HTTP" in logged  # the key-bearing call was logged, at DEBUG
    for secret in (IMA_KEY, DISCORD_TOKEN, FEISHU_SECRET):
        for where, text in (("log file", logged), ("stderr", stderr), ("stdout", stdout)):
            assert secret not in text, f"a secret leaked into {where}"
    # Every line naming a job carries that job's id as its trace id, and so do the IMA calls it makes.
    job_lines = [x for x in logged.splitlines() if "job=" in x]
    job_ids = {x.split("job=")[1].split()[0] for x in job_lines}
    assert len(job_ids) == 2
    assert all(f"[{x.split('job=')[1].split()[0]}]" in x for x in job_lines)
    transport = [x for x in logged.splitlines() if " ima.transport " in x]
    assert transport and all(any(f"[{j}]" in x for j in job_ids) for x in transport)
