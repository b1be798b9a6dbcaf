"""Hostile attachments through the real App: the bytes decide (ZIP/ELF labelled image/png, decompression
bombs), Discord attachments come only from Discord's hosts, and nothing refused ever reaches IMA."""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.adapters.discord._transfer import DownloadRefused, download_capped
from bot.core.media import check_image, sniff
from bot.jobs.model import JobState
from bot.jobs.texts import Texts
from ima.emulator import Emulator, EmulatorConfig
from tests.bot.discord_app import PNG, Rig, VirtualClock, embed
from tests.bot.harness import VirtualClock as ConsoleClock
from tests.fakes.discord_server import FakeDiscord

from .apps import running_app

TEXTS = Texts.load()
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40)
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(56)


def png(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height (a bomb when huge: its few bytes inflate to gigabytes)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    clock = VirtualClock(time.time())
    async with FakeDiscord(clock=clock) as fake, Emulator(EmulatorConfig(), clock=clock) as emu:
        fake.install(monkeypatch)
        yield Rig(fake, emu, clock, tmp_path / "jobs.sqlite3")


def _reason(rig: Rig, job_id: str) -> str:
    """The failure reason line of a job's final message."""
    finals = [m for m in rig.bot_messages(rig.fake.dm_channel_id(rig.fake.user_id)) if job_id in str(m)]
    return str(embed(finals[-1]))


@pytest.mark.parametrize(
    ("data", "declared", "filename"),
    [
        (ZIP, "image/png", "cat.png"),  # a ZIP archive labelled as a PNG
        (ELF, "image/png", "cat.png"),  # an executable labelled as a PNG
        (ELF, None, "payload"),  # no declared type, no extension: sniffed after the capped download
    ],
)
async def test_discord_files_that_are_not_images_never_reach_ima(
    rig: Rig, data: bytes, declared: str | None, filename: str
) -> None:
    async with rig.app() as app:
        att = rig.fake.add_cdn_file(filename, data, declared)
        await rig.fake.send_message("make the waves move", dm=True, attachments=[att])
        (job,) = await rig.jobs(app)
    assert job.state is JobState.FAILED and job.error_key == "attachment_not_image"
    assert TEXTS("error.attachment_not_image", "en", name=filename) in _reason(rig, job.id)
    assert rig.emulator.state.uploads == {} and rig.emulator.tasks == {}


async def test_a_discord_image_with_no_declared_type_is_sniffed_and_used(rig: Rig) -> None:
    async with rig.app() as app:
        att = rig.fake.add_cdn_file("photo", png(640, 480), None)
        await rig.fake.send_message("make the waves move", dm=True, attachments=[att])
        (job,) = await rig.jobs(app)
    assert job.state is JobState.SUCCEEDED
    (upload,) = rig.emulator.state.uploads.values()
    assert upload.data == png(640, 480)


async def test_a_decompression_bomb_is_refused_from_its_header(rig: Rig) -> None:
    async with rig.app() as app:
        att = rig.fake.add_cdn_file("huge.png", png(100_000, 100_000), "image/png")
        await rig.fake.send_message("make the waves move", dm=True, attachments=[att])
        (job,) = await rig.jobs(app)
    assert job.state is JobState.FAILED and job.error_key == "attachment_too_many_pixels"
    assert "100000×100000" in _reason(rig, job.id)
    assert rig.emulator.state.uploads == {} and rig.emulator.tasks == {}


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.1.2.3/internal.png",
        "https://example.com/cat.png",
        "file:///etc/passwd",
    ],
)
async def test_discord_attachments_are_fetched_only_from_discord_hosts(rig: Rig, url: str) -> None:
    async with rig.app() as app:
        att = {**rig.fake.add_cdn_file("cat.png", PNG), "url": url, "proxy_url": url}
        await rig.fake.send_message("make the waves move", dm=True, attachments=[att])
        (job,) = await rig.jobs(app)
    assert job.state is JobState.FAILED and job.error_key == "attachment_bad_host"
    assert TEXTS("error.attachment_bad_host", "en", name="cat.png") in _reason(rig, job.id)
    assert rig.emulator.tasks == {}


async def test_a_redirect_out_of_the_allowed_hosts_is_not_followed() -> None:
    """The allowed CDN answers with a redirect to another host: that host never sees a request."""
    seen: list[str] = []

    async def outside(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(body=PNG, content_type="image/png")

    async with _server(outside) as out_url:

        async def cdn(request: web.Request) -> web.Response:
            if request.path == "/inside":
                return web.Response(body=PNG, content_type="image/png")
            raise web.HTTPFound(out_url + "/stolen" if request.path == "/away" else "/inside")

        async with _server(cdn) as cdn_url, aiohttp.ClientSession() as session:
            hosts = frozenset({cdn_url.removeprefix("http://")})
            with pytest.raises(DownloadRefused):
                await download_capped(session, cdn_url + "/away", 1 << 20, hosts=hosts)
            data, _ = await download_capped(session, cdn_url + "/hop", 1 << 20, hosts=hosts)  # stays inside
    assert seen == [] and data == PNG


async def test_the_console_refuses_a_bomb_before_upload(tmp_path: Path) -> None:
    """The same byte check holds for every adapter: here the console (which checks magic numbers only)."""
    (tmp_path / "huge.png").write_bytes(png(60_000, 60_000))
    clock = ConsoleClock()
    async with Emulator(EmulatorConfig(), clock=clock) as emu, running_app(tmp_path, emu, clock) as r:
        r.feed.say("/video fast 5s huge.png make it move")
        (job,) = await r.wait_for(lambda: _finished(r))
    assert job.error_key == "attachment_too_many_pixels"
    assert emu.state.uploads == {} and emu.tasks == {}


def test_header_reads() -> None:
    assert sniff(png(640, 480)) is not None and (sniff(png(640, 480)).width, sniff(png(640, 480)).height) == (
        640,
        480,
    )
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + (
        b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", 1080, 1920) + b"\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    )
    info = sniff(jpeg)
    assert info is not None and (info.mime, info.width, info.height) == ("image/jpeg", 1920, 1080)
    gif = b"GIF89a" + struct.pack("<HH", 320, 200) + bytes(10)
    assert (sniff(gif).width, sniff(gif).height) == (320, 200)  # type: ignore[union-attr]
    vp8x = (
        b"RIFF\x00\x00\x00\x00WEBPVP8X"
        + bytes(8)
        + (4999).to_bytes(3, "little")
        + (2999).to_bytes(3, "little")
    )
    assert (sniff(vp8x).width, sniff(vp8x).height) == (5000, 3000)  # type: ignore[union-attr]
    assert sniff(ZIP) is None and sniff(ELF) is None and sniff(b"") is None
    with pytest.raises(Exception, match="ELF"):
        check_image(ELF, name="x")
    with pytest.raises(Exception, match="30000x1"):
        check_image(png(30_000, 1), name="x")  # a side beyond MAX_SIDE
    assert check_image(png(7000, 7000), name="x").mime == "image/png"  # 49 MP: allowed


async def _finished(r):  # type: ignore[no-untyped-def]
    jobs = await r.jobs()
    return jobs if jobs and all(j.finished and j.result_ref for j in jobs) else None


class _server:
    """A tiny HTTP server on 127.0.0.1 (a free port) answering every path with handler."""

    def __init__(self, handler) -> None:  # type: ignore[no-untyped-def]
        self._handler = handler
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()
