"""The pure pieces behind the hostile-input guards, edge by edge: image sniffing, text cleaning, the store
lock and the store identity. (The App-level tests are in test_hostile_files/text and test_store_guard.)"""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import zlib
from pathlib import Path

import pytest

from bot.core import (
    Action,
    ActionIntent,
    AttachmentRejected,
    Command,
    CommandIntent,
    GenerationIntent,
    Origin,
)
from bot.core.media import MAX_PIXELS, MAX_SIDE, ImageInfo, check_image, describe, sniff
from bot.core.text import ARG_CHARS, clean_intent, clean_text, echo
from bot.jobs._lock import StoreLock, StoreLocked, lock_path
from bot.jobs.store import StoreError
from bot.jobs.store_identity import StoreWatch, with_advice


def png(width: int, height: int) -> bytes:
    body = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ihdr = struct.pack(">I", len(body)) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    return b"\x89PNG\r\n\x1a\n" + ihdr


def jpeg(width: int, height: int, sof: int = 0xC0, *, pad: bytes = b"") -> bytes:
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    frame = bytes([0xFF, sof]) + b"\x00\x11\x08" + struct.pack(">HH", height, width) + b"\x03" + bytes(9)
    return b"\xff\xd8" + app0 + pad + frame


# ---- media ------------------------------------------------------------------------------------------


def test_png_gif_bmp_headers() -> None:
    assert sniff(png(640, 480)) == ImageInfo("image/png", 640, 480)
    assert sniff(b"\x89PNG\r\n\x1a\n" + bytes(16)) == ImageInfo("image/png")  # no IHDR: type only
    assert sniff(b"GIF87a" + struct.pack("<HH", 320, 200) + bytes(4)) == ImageInfo("image/gif", 320, 200)
    assert sniff(b"GIF89a\x01") == ImageInfo("image/gif")  # cut short
    bmp = b"BM" + bytes(16) + struct.pack("<ii", 800, -600) + bytes(8)
    assert sniff(bmp) == ImageInfo("image/bmp", 800, 600)  # a top-down BMP has a negative height
    assert sniff(b"BM" + bytes(10)) is None  # too short to be one
    assert sniff(b"BM" + bytes(24)) == ImageInfo("image/bmp", 0, 0)  # 26 bytes: just enough
    assert sniff(b"BM" + bytes(23)) is None
    assert sniff(png(9, 9)[:23]) == ImageInfo("image/png")  # IHDR cut short
    assert sniff(png(9, 9)[:24]) == ImageInfo("image/png", 9, 9)
    assert sniff(b"GIF89a" + struct.pack("<HH", 3, 4)) == ImageInfo("image/gif", 3, 4)  # exactly 10 bytes


def test_jpeg_frames() -> None:
    assert sniff(jpeg(1920, 1080)) == ImageInfo("image/jpeg", 1920, 1080)
    assert sniff(jpeg(100, 50, 0xC2)) == ImageInfo("image/jpeg", 100, 50)  # progressive
    assert sniff(jpeg(100, 50, 0xCF)) == ImageInfo("image/jpeg", 100, 50)
    # DHT (C4), JPG (C8) and DAC (CC) are not frames: skipped, the real frame after them counts.
    dht = b"\xff\xc4\x00\x04\x00\x00"
    assert sniff(jpeg(30, 20, pad=dht)) == ImageInfo("image/jpeg", 30, 20)
    assert sniff(jpeg(30, 20, pad=b"\xff\xff\xff\xd0")) == ImageInfo("image/jpeg", 30, 20)  # fill, RST
    assert sniff(jpeg(30, 20, pad=b"\xff\xd8\xff\x01")) == ImageInfo(
        "image/jpeg", 30, 20
    )  # SOI, TEM: no length
    assert sniff(b"\xff\xd8\xff\xe0\x00\x01" + bytes(20)) == ImageInfo("image/jpeg")  # bad length
    for cut in range(1, 19):  # a frame header cut anywhere: never an exception, sizes only when complete
        info = sniff(jpeg(30, 20)[:-cut])
        assert info is not None and info.mime == "image/jpeg" and info.width in (30, None)
    assert sniff(b"\xff\xd8\xff\xe0\x00\x10" + bytes(14) + b"\x00\x00" + bytes(20)) == ImageInfo("image/jpeg")


def test_webp_variants() -> None:
    head = b"RIFF\x00\x00\x00\x00WEBP"
    lossy = head + b"VP8 " + bytes(7) + b"\x9d\x01\x2a" + struct.pack("<HH", 0xC000 | 640, 480)
    assert sniff(lossy) == ImageInfo("image/webp", 640, 480)  # the top two bits are scaling, not size
    bits = (640 - 1) | ((480 - 1) << 14)
    lossless = head + b"VP8L" + bytes(4) + b"\x2f" + struct.pack("<I", bits)
    assert sniff(lossless) == ImageInfo("image/webp", 640, 480)
    extended = head + b"VP8X" + bytes(8) + (4999).to_bytes(3, "little") + (2999).to_bytes(3, "little")
    assert sniff(extended) == ImageInfo("image/webp", 5000, 3000)
    assert sniff(head + b"VP8 ") == ImageInfo("image/webp")
    assert sniff(lossy[:29]) == ImageInfo("image/webp") and sniff(lossy[:30]).width == 640  # type: ignore[union-attr]
    assert sniff(lossless[:24]) == ImageInfo("image/webp") and sniff(lossless[:25]).width == 640  # type: ignore[union-attr]
    assert sniff(extended[:29]) == ImageInfo("image/webp")
    assert sniff(b"RIFF\x00\x00\x00\x00AVI LIST") is None


def test_heic_avif_and_non_images() -> None:
    assert sniff(b"\x00\x00\x00\x18ftypheic" + bytes(8)) == ImageInfo("image/heic")
    assert sniff(b"\x00\x00\x00\x18ftypavif" + bytes(8)) == ImageInfo("image/avif")
    assert sniff(b"\x00\x00\x00\x18ftypisom" + bytes(8)) is None  # an mp4
    for data, name in [
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x7fELF\x02", "an ELF executable"),
        (b"MZ\x90\x00", "a Windows executable"),
        (b"%PDF-1.7", "a PDF document"),
        (b"\x1f\x8b\x08", "gzip data"),
        (b"\x00\x00\x00\x18ftypisom", "a video"),
        (b"  <html>", "HTML or XML text"),
        (b"", "empty"),
        (b"hello", "not a known image format"),
    ]:
        assert sniff(data) is None
        assert describe(data) == name


def test_check_image_limits() -> None:
    assert check_image(png(MAX_SIDE, 1), name="a").width == MAX_SIDE  # at the side limit: fine
    side = int(MAX_PIXELS**0.5)
    assert check_image(png(side, side), name="a").height == side
    with pytest.raises(AttachmentRejected) as err:
        check_image(png(MAX_SIDE + 1, 1), name="wide.png")
    assert err.value.key == "attachment_too_many_pixels"
    assert err.value.params == {"name": "wide.png", "width": MAX_SIDE + 1, "height": 1, "limit": 50}
    with pytest.raises(AttachmentRejected):
        check_image(png(1, MAX_SIDE + 1), name="tall.png")
    with pytest.raises(AttachmentRejected):
        check_image(png(side + 1, side + 1), name="big.png")  # both sides fine, the area is not
    assert check_image(png(100, 100), name="a", max_pixels=10_000).mime == "image/png"
    with pytest.raises(AttachmentRejected):
        check_image(png(100, 101), name="a", max_pixels=10_000)
    with pytest.raises(AttachmentRejected) as err:
        check_image(b"PK\x03\x04zip", name="x.png")
    assert err.value.key == "attachment_not_image" and err.value.params == {"name": "x.png"}
    assert "a ZIP archive" in str(err.value)
    assert check_image(b"\x00\x00\x00\x18ftypheic", name="h").width is None  # no cheap size: allowed


# ---- text -------------------------------------------------------------------------------------------


def test_clean_text_edges() -> None:
    assert clean_text("plain text, 中文 ok") == "plain text, 中文 ok"
    assert clean_text("a\rb") == "a\nb"
    assert clean_text("\u200c\u200d") == "\u200c\u200d"  # zero-width (non-)joiners stay
    assert clean_text("\u200b\ufeff\u2066x") == "x"  # other format characters go
    assert clean_text("\x85\x9fx") == "x"  # C1 controls
    assert clean_text("abc", limit=3) == "abc" and clean_text("abcd", limit=3) == "abc"
    assert clean_text("a\nbc", limit=3) == "a\nb"
    assert clean_text("\x00" * 10 + "x", limit=5) == ""  # work is bounded: at most limit * 2 read
    assert clean_text("\x00" * 9 + "x", limit=5) == "x"
    assert clean_text("a\r\nb\rc") == "a\nb\nc"
    assert clean_text(None) == "" and clean_text(5) == ""


def test_echo_edges() -> None:
    assert echo("short") == "short"
    assert echo("x" * 60) == "x" * 60
    assert echo("x" * 61) == "x" * 59 + "…"
    assert echo(12345) == "12345"
    assert echo("a\nb\tc") == "a b c"
    assert echo("v" * 10, limit=5) == "vvvv…"


def test_clean_intent_cleans_what_users_typed() -> None:
    origin = Origin(platform="x", chat_id="c\x00", user_id="u", message_id="m")
    gen = clean_intent(GenerationIntent(origin=origin, text="a\x00b" + "c" * 5000, event_keys=("k\ud800",)))
    assert isinstance(gen, GenerationIntent) and gen.text == "ab" + "c" * 3998 and gen.event_keys == ("k",)
    assert gen.origin == origin  # platform-assigned ids are left alone
    cmd = clean_intent(CommandIntent(origin=origin, command=Command.SETTINGS, args={"k\x00": "v" * 900}))
    assert isinstance(cmd, CommandIntent) and cmd.args == {"k": "v" * ARG_CHARS} and cmd.event_keys == ()
    act = clean_intent(
        ActionIntent(
            origin=origin, job_id="j\ud800" + "x" * 900, action=Action.RETRY, event_keys=("a", "b\x07")
        )
    )
    assert isinstance(act, ActionIntent) and act.job_id == "j" + "x" * (ARG_CHARS - 1)
    assert act.event_keys == ("a", "b") and act.action is Action.RETRY


# ---- the store lock ---------------------------------------------------------------------------------


def test_the_lock_is_exclusive_names_its_holder_and_is_released(tmp_path: Path) -> None:
    store = tmp_path / "sub" / "jobs.sqlite3"
    first = StoreLock.acquire(store)
    assert first.held and first.path == lock_path(store) == tmp_path / "sub" / "jobs.sqlite3.lock"
    assert json.loads(lock_path(store).read_text()) == {"pid": os.getpid(), "host": socket.gethostname()}
    open_fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(StoreLocked) as err:
        StoreLock.acquire(str(store))  # a str path as the config gives it
    assert len(os.listdir("/proc/self/fd")) == open_fds  # the refused attempt closed its descriptor
    assert (err.value.pid, err.value.host) == (os.getpid(), socket.gethostname())
    assert isinstance(err.value, StoreError) and str(store) in str(err.value)
    first.release()
    first.release()  # idempotent
    assert not first.held and lock_path(store).read_text() == ""
    second = StoreLock.acquire(store)  # free again
    second.release()


def test_a_holder_that_wrote_nothing_yet_is_reported_as_unknown(tmp_path: Path) -> None:
    store = tmp_path / "jobs.sqlite3"
    held = StoreLock.acquire(store)
    lock_path(store).write_text("not json")
    with pytest.raises(StoreLocked) as err:
        StoreLock.acquire(store)
    held.release()
    assert err.value.pid is None and "in use by another process (its pid is not recorded yet). " in str(
        err.value
    )


def test_a_lock_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create the store lock") as err:
        StoreLock.acquire(tmp_path / "file" / "jobs.sqlite3")  # a folder that is a file
    assert "writable" in str(err.value)


# ---- store identity ---------------------------------------------------------------------------------


def test_the_watch_notices_deletion_and_replacement_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "jobs.sqlite3"
    store.write_bytes(b"x")
    watch = StoreWatch(store)
    assert watch.check() == "" and watch.fault == ""
    other = tmp_path / "other"
    other.write_bytes(b"x")
    os.replace(other, store)
    with caplog.at_level(logging.CRITICAL, logger="imabot.store"):
        assert "replaced" in watch.check()
        assert "replaced" in watch.check()  # stays faulted, logged once
    assert len([r for r in caplog.records if "STORE LOST" in r.getMessage()]) == 1
    gone = StoreWatch(store)
    store.unlink()
    assert "deleted" in gone.check()


def test_advice_for_start_up_failures() -> None:
    assert "Restore it from a backup" in with_advice("cannot prepare x: file is not a database")
    assert "Restore" in with_advice("database disk image is malformed")
    assert "writable" in with_advice("attempt to write a readonly database")
    assert "writable" in with_advice("Permission denied")
    assert "folder that exists" in with_advice("unable to open database file")
    assert with_advice("something else") == "something else"
    assert with_advice("x: file is not a database.").count("..") == 0
