"""Test clips: the emulator's real sample.mp4, and small synthetic mp4s made with PyAV."""

from __future__ import annotations

import io
from fractions import Fraction
from importlib import resources

import av


def sample_mp4() -> bytes:
    """The mp4 the emulator serves for every finished task (h264 64x64, 12 frames, aac)."""
    return resources.files("ima.emulator").joinpath("assets/sample.mp4").read_bytes()


def make_clip(
    *,
    width: int = 48,
    height: int = 32,
    frames: int = 20,
    gop: int = 4,
    fps: int = 10,
    shade: int = 0,
    audio: bool = False,
) -> bytes:
    """An h264 mp4 whose frame i is a flat colour depending on i (every frame differs), with a silent
    aac track as long as the video when `audio`."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        sound = out.add_stream("aac", rate=44100, layout="mono") if audio else None
        stream = out.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.time_base = Fraction(1, fps)
        if sound is not None:
            for n in range(0, frames * 44100 // fps, 1024):
                chunk = av.AudioFrame(format="fltp", layout="mono", samples=1024)
                chunk.planes[0].update(b"\x00" * 4096)
                chunk.sample_rate, chunk.pts = 44100, n
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
        for i in range(frames):
            rgb = bytes([(i * 11 + shade) % 256, (i * 23) % 256, (200 - i * 7) % 256]) * (width * height)
            frame = av.VideoFrame(width, height, "rgb24")
            frame.planes[0].update(rgb)
            img = frame.reformat(format="yuv420p")
            img.pts = i
            out.mux(stream.encode(img))
        out.mux(stream.encode(None))
    return buf.getvalue()


def rgb_rows(frame: av.VideoFrame) -> bytes:
    """The frame's pixels as packed RGB rows (line padding removed)."""
    rgb = frame.reformat(format="rgb24")
    plane, row = rgb.planes[0], rgb.width * 3
    data = bytes(plane)
    return b"".join(data[y * plane.line_size : y * plane.line_size + row] for y in range(rgb.height))


def decoded_frames(video: bytes) -> list[av.VideoFrame]:
    """Every frame of the first video stream, decoded from the start, in presentation order."""
    with av.open(io.BytesIO(video)) as c:
        return sorted(c.decode(c.streams.video[0]), key=lambda f: f.pts or 0)


def png_pixels(png: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGB rows) of a PNG file, decoded by FFmpeg's PNG decoder."""
    with av.open(io.BytesIO(png)) as c:
        frame = next(iter(c.decode(video=0)))
        return frame.width, frame.height, rgb_rows(frame)
