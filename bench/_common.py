"""Shared bench plumbing: an emulator in its own process, process RSS and CPU, percentiles, a null chat."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from bot.core import Attachment, AttachmentRejected, IntentHandler, Notice, Origin

ROOT = Path(__file__).resolve().parents[1]
HOURS = 3600.0


def rss_kb() -> int:
    """Returns this process's resident set size in KiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_s() -> float:
    """Returns the CPU seconds (user + system, every thread) this process has used."""
    return time.process_time()


def pct(values: Sequence[float], p: float) -> float:
    """Returns the p-th percentile (0-100, nearest rank) of values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def describe_ms(values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"n={len(ms)} p50={pct(ms, 50):.1f} ms p90={pct(ms, 90):.1f} ms p99={pct(ms, 99):.1f} ms "
        f"max={max(ms):.1f} ms mean={statistics.fmean(ms):.1f} ms"
    )


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1).strip() if m else cpu
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}, load average {load}"


@contextlib.asynccontextmanager
async def emulator_process(*, task_seconds: float = 100 * HOURS, speed: float = 1.0) -> AsyncIterator[str]:
    """Runs `python -m ima emulator` in a child process (so its CPU and memory are not ours); yields its
    base URL. Tasks take task_seconds of emulator time, so jobs stay in flight while we measure."""
    with tempfile.TemporaryDirectory(prefix="imabot-bench-emu-") as tmp:
        cfg = Path(tmp) / "emulator.json"
        cfg.write_text(
            json.dumps(
                {
                    "base_seconds": {"ima-pro": task_seconds, "ima-pro-fast": task_seconds},
                    "task_timeout_seconds": task_seconds * 2,
                }
            )
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ima",
            "emulator",
            "--port",
            "0",
            "--speed",
            str(speed),
            "--config",
            str(cfg),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=str(ROOT),
        )
        try:
            assert proc.stdout is not None
            url = ""
            while not url:
                line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
                if not line:
                    raise RuntimeError("the emulator exited at start")
                if m := re.search(r"api:\s+(http://\S+)", line):
                    url = m.group(1)
            yield url
        finally:
            proc.terminate()
            await proc.wait()


class NullChat:
    """A platform adapter that shows nothing: notices cost only what the pipeline itself spends."""

    platform = "bench"
    final_in_place = False

    def __init__(self) -> None:
        self.sent = 0
        self.edited = 0
        self._closed = asyncio.Event()

    @property
    def connected(self) -> bool:
        return not self._closed.is_set()

    async def send(self, origin: Origin, notice: Notice, *, key: str) -> str:
        self.sent += 1
        return f"ref-{key}"

    async def edit(self, origin: Origin, ref: str, notice: Notice) -> str:
        self.edited += 1
        return ref

    async def read_attachment(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        raise AttachmentRejected("attachment_download_failed", name=attachment.filename)

    async def run(self, handler: IntentHandler) -> None:
        await self._closed.wait()

    async def stop_intake(self) -> None:
        """Nothing comes in: the bench hands intents to the dispatcher itself."""

    async def close(self) -> None:
        self._closed.set()


def bench_config(base_url: str, store: Path, *, n: int, **sections: Any) -> Any:
    """A production-shaped config for n concurrent jobs against the emulator (web server on a free port)."""
    from bot.config import parse_config
    from ima.emulator import DEFAULT_API_KEY

    data: dict[str, Any] = {
        "ima": {"api_key": DEFAULT_API_KEY, "base_url": base_url, "upload_base_url": base_url},
        "store": {"path": str(store)},
        "jobs": {"global_concurrency": n, "per_user_concurrency": n, "max_pending_per_user": n},
        "web": {"enabled": True, "host": "127.0.0.1", "port": 0},
        "logging": {"level": "WARNING"},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return parse_config(data)


@contextlib.asynccontextmanager
async def fake_feishu_process(tls: tuple[str, str] | None = None) -> AsyncIterator[dict[str, str]]:
    """Runs bench/_fake_feishu.py in a child process; yields {"fake", "control"} URLs (and "tls" when
    tls=(cert, key) is given: the same API over https)."""
    extra = ["--tls", *tls] if tls else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "_fake_feishu.py"),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=str(ROOT),
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        urls = dict(re.findall(r"(fake|control|tls) (\S+)", line))
        if "fake" not in urls:
            raise RuntimeError(f"the fake Feishu did not start: {line!r}")
        yield urls
    finally:
        proc.terminate()
        await proc.wait()


def self_signed(directory: Path) -> tuple[str, str, str]:
    """Writes a certificate for 127.0.0.1 and its key, and a CA file = the public bundle (certifi) plus
    that certificate, so clients verify it at the cost of loading a real bundle; returns their paths."""
    import subprocess

    import certifi

    cert, key, bundle = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    bundle.write_text(Path(certifi.where()).read_text() + cert.read_text())
    return str(cert), str(key), str(bundle)
