"""Pure image sniffing: which image format a file's first bytes announce (the IMA input formats)."""

from __future__ import annotations

# IMA accepts jpeg, png, webp, bmp, tiff and gif inputs (contract §9); the first bytes say which.
_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
FORMATS = "jpeg, png, webp, gif, bmp, tiff"


def image_type(data: bytes) -> str | None:
    """The MIME type of an image in one of IMA's input formats, else None (not an image we can send)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((ctype for magic, ctype in _MAGIC if data.startswith(magic)), None)
