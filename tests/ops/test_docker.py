"""The Dockerfile (no Docker engine here): its shape is checked, and its HEALTHCHECK command is run for
real against a running bot's /healthz."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import sys
from pathlib import Path

from ima.emulator import Emulator, EmulatorConfig
from tests.bot.harness import VirtualClock

from .apps import running_app

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(
        r"\\\n\s*", " ", "\n".join(x for x in text.splitlines() if not x.lstrip().startswith("#"))
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = instructions()
    last_from = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last_from:]


def test_multi_stage_slim_and_non_root() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2 and all("-slim" in f for f in froms)
    assert re.search(r"\bAS build\b", froms[0])
    stage = final_stage()
    copies = [args for word, args in stage if word == "COPY"]
    assert copies and all(c.startswith("--from=build") for c in copies)  # nothing but the built venv
    users = [args for word, args in stage if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(args for word, args in stage if word == "RUN")
    assert "pip" not in runs  # no build tooling in the runtime stage


def test_volume_command_and_healthcheck() -> None:
    stage = dict(final_stage())
    assert "/data" in json.loads(stage["VOLUME"])
    entry, cmd = json.loads(stage["ENTRYPOINT"]), json.loads(stage["CMD"])
    assert entry + cmd == ["imabot", "run", "--config", "/config/config.yaml"]
    assert stage["STOPSIGNAL"] == "SIGTERM"
    assert "--start-period=" in stage["HEALTHCHECK"] and "CMD" in stage["HEALTHCHECK"]
    assert "IMABOT_HEALTH_URL=http://127.0.0.1:8080/healthz" in stage["ENV"]
    assert not re.search(r"(?i)(api_key|token|secret)\s*=", stage["ENV"])  # no secret baked in


def test_build_context_has_the_sources_and_no_secrets_or_state() -> None:
    patterns = [
        x.strip()
        for x in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if x.strip() and not x.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path.split("/")[0], p) for p in patterns)

    build_copies = [
        args.split()[0] for word, args in instructions() if word == "COPY" and "--from" not in args
    ]
    needed = [p for c in build_copies for p in c.split()] + ["README.md"]
    for path in needed:
        assert (ROOT / path).exists(), path
        assert not ignored(path), f"{path} is needed by the build but .dockerignore drops it"
    for path in (".git", "tests", "config.yaml", "jobs.sqlite3", "imabot.sqlite3-wal", "bot.log", ".env"):
        assert ignored(path), path


def healthcheck_argv() -> list[str]:
    args = dict(final_stage())["HEALTHCHECK"]
    return json.loads(args[args.index("CMD") + 3 :].strip())


async def _run_healthcheck(url: str) -> int:
    argv = healthcheck_argv()
    assert argv[0] == "python"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv[1:],
        env={**os.environ, "IMABOT_HEALTH_URL": url},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), 30)


async def test_the_healthcheck_command_passes_on_a_healthy_bot_and_fails_otherwise(tmp_path: Path) -> None:
    clock = VirtualClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        await asyncio.wait_for(r.feed.reading.wait(), 5)  # the console adapter runs: connected
        assert await _run_healthcheck(r.url + "/healthz") == 0
        r.feed.end()
        await r.app.wait()  # the console adapter ended: unhealthy
        assert await _run_healthcheck(r.url + "/healthz") == 1
