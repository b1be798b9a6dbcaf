"""What a user's file really is: magic numbers plus a cheap header read of the dimensions. Pure, no I/O.

A platform's declared type is whatever the sender says (ZIP and ELF bytes labelled image/png reached IMA),
so the bytes decide. Dimensions come from the header alone, so a decompression bomb (a small PNG that
inflates to 100 000 × 100 000 pixels) is refused without decoding a single pixel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .errors import AttachmentRejected

MAX_PIXELS = 50_000_000  # 50 MP: above any camera photo; far below what a bomb inflates to
MAX_SIDE = 20_000


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    # None when the header does not say cheaply (HEIC, AVIF) or is malformed (then IMA's decoder refuses
    # it; it cannot be a bomb either, since a decoder needs a valid header to inflate anything).
    width: int | None = None
    height: int | None = None


def sniff(data: bytes) -> ImageInfo | None:
    """Returns the image the bytes are (type and, when the header says, width and height), or None when
    the magic numbers are not those of an image kind IMA takes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        if data[12:16] != b"IHDR" or len(data) < 24:
            return ImageInfo("image/png")
        w, h = struct.unpack(">II", data[16:24])
        return ImageInfo("image/png", w, h)
    if data.startswith((b"GIF87a", b"GIF89a")):
        if len(data) < 10:
            return ImageInfo("image/gif")
        w, h = struct.unpack("<HH", data[6:10])
        return ImageInfo("image/gif", w, h)
    if data.startswith(b"\xff\xd8\xff"):
        return ImageInfo("image/jpeg", *(_jpeg_size(data) or (None, None)))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageInfo("image/webp", *(_webp_size(data) or (None, None)))
    if data.startswith(b"BM") and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return ImageInfo("image/bmp", w, abs(h))
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"avif"):
        return ImageInfo("image/avif" if data[8:12] == b"avif" else "image/heic")
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walks the JPEG segments to the first start-of-frame marker; (width, height) or None."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        if length < 2:
            return None
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a" and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and data[20:21] == b"\x2f" and len(data) >= 25:
        (bits,) = struct.unpack("<I", data[21:25])
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def describe(data: bytes) -> str:
    """A short name for what non-image bytes look like (for logs and error details, never trusted)."""
    for magic, name in (
        (b"PK\x03\x04", "a ZIP archive"),
        (b"\x7fELF", "an ELF executable"),
        (b"MZ", "a Windows executable"),
        (b"%PDF", "a PDF document"),
        (b"\x1f\x8b", "gzip data"),
    ):
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return "a video"
    if data.lstrip()[:1] == b"<":
        return "HTML or XML text"
    return "empty" if not data else "not a known image format"


def check_image(data: bytes, *, name: str, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Returns what the image is; raises AttachmentRejected ("attachment_not_image", or
    "attachment_too_many_pixels" for a bomb or an absurd size) when it must not go to IMA."""
    info = sniff(data)
    if info is None:
        raise AttachmentRejected("attachment_not_image", f"{name} is {describe(data)}", name=name)
    w, h = info.width, info.height
    if w is not None and h is not None:
        if w > MAX_SIDE or h > MAX_SIDE or w * h > max_pixels:
            raise AttachmentRejected(
                "attachment_too_many_pixels",
                f"{name} claims {w}x{h} pixels",
                name=name,
                width=w,
                height=h,
                limit=max_pixels // 1_000_000,
            )
    return info
