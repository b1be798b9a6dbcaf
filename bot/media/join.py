"""Several clips joined into one mp4: stream copy when every clip's streams match, re-encoded otherwise."""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import av
import av.error

from .errors import MediaError
from .frames import _open

_VIDEO_CODEC = "h264"
_AUDIO_CODEC = "aac"
_TICKS = 90_000  # the re-encoded video's clock: per second, as in MPEG


def duration_of(video: bytes) -> float:
    """The clip's duration in seconds: its first video stream's when declared (what a viewer sees; audio
    may carry a few ms of codec padding), else the container's. Raises MediaError."""
    with _open(video) as c:
        v = c.streams.video[0] if c.streams.video else None
        if v is not None and v.duration:
            return float(v.duration * v.time_base)
        return c.duration / av.time_base if c.duration is not None else 0.0


def _signature(video: bytes) -> tuple[Any, ...]:
    """What must be equal for packets of two clips to share one stream without re-encoding."""
    with _open(video) as c:
        sig: list[Any] = []
        for s in c.streams:
            cc = s.codec_context
            if s.type == "video":
                sig.append(("v", cc.name, cc.width, cc.height, cc.pix_fmt, bytes(cc.extradata or b"")))
            elif s.type == "audio":
                sig.append(("a", cc.name, cc.sample_rate, cc.layout.name, bytes(cc.extradata or b"")))
        return tuple(sig)


def streams_match(parts: Sequence[bytes]) -> bool:
    """True when every clip has the same streams with the same codec parameters (stream copy is safe)."""
    sigs = {_signature(p) for p in parts}
    return len(sigs) == 1 and any(s[0] == "v" for s in next(iter(sigs)))


def join_videos(parts: Sequence[bytes]) -> bytes:
    """One mp4 that plays `parts` one after another; its duration is the sum of theirs.

    Raises MediaError for an empty list or a clip that cannot be read.
    """
    if not parts:
        raise MediaError("shots_unreadable_video", "nothing to join")
    if len(parts) == 1:
        return bytes(parts[0])
    try:
        return _remux(parts) if streams_match(parts) else _reencode(parts)
    except av.error.FFmpegError as exc:
        raise MediaError("shots_unreadable_video", f"joining failed: {exc}") from exc


def _remux(parts: Sequence[bytes]) -> bytes:
    """Stream copy: packets of each clip shifted by the time the clips before it last."""
    out_buf = io.BytesIO()
    offset = Fraction(0)  # seconds already written
    with av.open(out_buf, mode="w", format="mp4") as out:
        targets: list[Any] = []
        next_dts: dict[int, int] = {}  # output stream index -> smallest dts the next packet may have
        for n, data in enumerate(parts):
            with _open(data) as src:
                streams = [s for s in src.streams if s.type in ("video", "audio")]
                if n == 0:
                    targets = [out.add_stream_from_template(s) for s in streams]
                by_index = {s.index: (s, t) for s, t in zip(streams, targets, strict=True)}
                for packet in src.demux(*streams):
                    if packet.dts is None:
                        continue  # the demuxer's end-of-stream marker
                    if n and packet.pts is not None and packet.pts < 0:
                        continue  # codec pre-roll the clip's edit list hides; kept, it would add time
                    s, target = by_index[packet.stream.index]
                    shift = int(offset / s.time_base)
                    pts, dts = packet.pts, packet.dts
                    # Clips may start with negative dts (codec delay): never go back in time.
                    lift = max(0, next_dts.get(target.index, 0) - (dts + shift))
                    packet.dts = dts + shift + lift
                    packet.pts = None if pts is None else pts + shift + lift
                    next_dts[target.index] = packet.dts + max(1, packet.duration or 0)
                    packet.stream = target
                    out.mux(packet)
                offset += Fraction(duration_of(data)).limit_denominator(10**6)
    return out_buf.getvalue()


def _reencode(parts: Sequence[bytes]) -> bytes:
    """Decode every clip and encode one video stream (first clip's size) plus audio when all have it."""
    with _open(parts[0]) as first:
        v0 = first.streams.video[0] if first.streams.video else None
        if v0 is None:
            raise MediaError("shots_no_video_stream", "the first clip has no video stream")
        width, height = v0.codec_context.width, v0.codec_context.height
        rate = v0.average_rate or Fraction(24)
    with_audio = all(_has_audio(p) for p in parts)
    out_buf = io.BytesIO()
    with av.open(out_buf, mode="w", format="mp4") as out:
        vout = out.add_stream(_VIDEO_CODEC, rate=rate)
        vout.width, vout.height, vout.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
        tb = vout.codec_context.time_base = Fraction(1, _TICKS)  # frames keep their own timing
        vout.codec_context.max_b_frames = 0  # no reordering: the clip starts at 0 without an edit list
        aout = out.add_stream(_AUDIO_CODEC, rate=44100, layout="stereo") if with_audio else None
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=44100) if aout else None
        offset, next_pts, apts = Fraction(0), 0, 0
        durations: deque[int] = deque()  # no B-frames: packets leave the encoder in frame order

        def encode(img: av.VideoFrame | None, duration: int = 0) -> None:
            if img is not None:
                durations.append(duration)
            for packet in vout.encode(img):
                packet.duration = durations.popleft() if durations else 0
                out.mux(packet)

        for data in parts:
            length = Fraction(duration_of(data)).limit_denominator(_TICKS)
            held: av.VideoFrame | None = None  # each frame lasts until the next one starts
            with _open(data) as src:
                for frame in src.decode(src.streams.video[0]):
                    img = frame.reformat(width=vout.width, height=vout.height, format="yuv420p")
                    at = offset + Fraction(frame.time or 0).limit_denominator(_TICKS)
                    img.pts, img.time_base = max(next_pts, round(at / tb)), tb
                    next_pts = img.pts + 1
                    if held is not None:
                        encode(held, img.pts - held.pts)
                    held = img
            if held is not None:
                encode(held, max(1, round((offset + length) / tb) - held.pts))
                next_pts = max(next_pts, round((offset + length) / tb))
            if aout is not None and resampler is not None:
                apts = max(apts, round(offset * 44100))
                with _open(data) as src:
                    for frame in src.decode(src.streams.audio[0]):
                        frame.pts = None
                        for chunk in resampler.resample(frame):
                            chunk.pts, chunk.time_base = apts, Fraction(1, 44100)
                            apts += chunk.samples
                            out.mux(aout.encode(chunk))
            offset += length
        encode(None)
        if aout is not None:
            out.mux(aout.encode(None))
    return out_buf.getvalue()


def _has_audio(video: bytes) -> bool:
    with _open(video) as c:
        return bool(c.streams.audio)
