"""bot.media: the last frame of a clip as PNG, and clips joined (stream copy or re-encode)."""

from __future__ import annotations

import asyncio
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import av
import pytest

from bot.media import (
    MediaError,
    duration_of,
    join_videos,
    join_videos_async,
    last_frame_png,
    last_frame_png_async,
    streams_match,
)
from tests.bot.media_clips import decoded_frames, make_clip, png_pixels, rgb_rows, sample_mp4


def test_the_png_holds_the_last_frame_of_the_emulators_video() -> None:
    video = sample_mp4()
    frames = decoded_frames(video)
    png = last_frame_png(video)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height, pixels = png_pixels(png)
    assert (width, height) == (frames[-1].width, frames[-1].height)
    assert pixels == rgb_rows(frames[-1])
    assert pixels != rgb_rows(frames[-2])  # the frames differ, so the check above can tell them apart


def test_the_last_frame_is_found_after_several_key_frames() -> None:
    # gop 4: the seek lands on the last key frame and decodes only the final group.
    video = make_clip(frames=19, gop=4)
    frames = decoded_frames(video)
    assert sum(f.key_frame for f in frames) > 1
    assert png_pixels(last_frame_png(video))[2] == rgb_rows(frames[-1])


@pytest.mark.parametrize("junk", [b"", b"not a video at all", b"\x00" * 4096])
def test_bytes_that_are_no_video_raise_a_media_error(junk: bytes) -> None:
    with pytest.raises(MediaError) as info:
        last_frame_png(junk)
    assert info.value.key in ("shots_unreadable_video", "shots_no_video_stream")


def test_a_file_without_a_video_stream_is_refused() -> None:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100, layout="mono")
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        frame.planes[0].update(b"\x00" * 4096)
        frame.sample_rate, frame.pts = 44100, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(MediaError) as info:
        last_frame_png(buf.getvalue())
    assert info.value.key == "shots_no_video_stream"


def test_matching_clips_are_joined_by_stream_copy_and_last_the_sum() -> None:
    clip = sample_mp4()
    assert streams_match([clip, clip, clip])
    joined = join_videos([clip, clip, clip])
    assert duration_of(joined) == pytest.approx(3 * duration_of(clip), abs=1e-3)
    frames = decoded_frames(joined)
    assert len(frames) == 3 * len(decoded_frames(clip))
    # Stream copy: the packets are the clip's own, so the joined video's last frame is the clip's.
    assert rgb_rows(frames[-1]) == rgb_rows(decoded_frames(clip)[-1])
    with av.open(io.BytesIO(joined)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert sum(1 for _ in c.decode(audio=0)) > 0


def test_clips_that_differ_are_re_encoded_to_the_first_clips_size() -> None:
    big, small = sample_mp4(), make_clip(width=32, height=24, frames=10, fps=10)
    assert not streams_match([big, small])
    joined = join_videos([big, small])
    assert duration_of(joined) == pytest.approx(duration_of(big) + duration_of(small), abs=0.05)
    frames = decoded_frames(joined)
    assert len(frames) == len(decoded_frames(big)) + len(decoded_frames(small))
    assert {(f.width, f.height) for f in frames} == {(64, 64)}
    with av.open(io.BytesIO(joined)) as c:
        assert [s.type for s in c.streams] == ["video"]  # the second clip has no audio


def test_re_encoded_clips_keep_audio_when_every_clip_has_it() -> None:
    a = sample_mp4()
    other = make_clip(width=32, height=32, frames=15, fps=10, audio=True)
    assert not streams_match([a, other])
    joined = join_videos([a, other])
    with av.open(io.BytesIO(joined)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]
        assert sum(1 for _ in c.decode(audio=0)) > 0
    assert duration_of(joined) == pytest.approx(2.5, abs=1e-3)


def test_one_clip_is_returned_as_it_is_and_none_is_an_error() -> None:
    clip = sample_mp4()
    assert join_videos([clip]) == clip
    with pytest.raises(MediaError):
        join_videos([])
    with pytest.raises(MediaError):
        join_videos([clip, b"garbage"])


async def test_the_async_wrappers_decode_off_the_event_loop() -> None:
    # asyncio.to_thread runs on the loop's default executor: count what reaches it.
    loop = asyncio.get_running_loop()
    pool = _CountingPool()
    loop.set_default_executor(pool)
    png = await last_frame_png_async(sample_mp4())
    joined = await asyncio.wait_for(join_videos_async([sample_mp4(), sample_mp4()]), 10)
    assert pool.threads and threading.get_ident() not in pool.threads
    assert len(pool.threads) >= 1 and pool.calls == 2
    assert png == last_frame_png(sample_mp4())
    assert duration_of(joined) == pytest.approx(2.0, abs=1e-3)


class _CountingPool(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls = 0
        self.threads: set[int] = set()

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1

        def tracked():  # type: ignore[no-untyped-def]
            self.threads.add(threading.get_ident())
            return fn(*args, **kwargs)

        return super().submit(tracked)


def test_a_video_stream_without_frames_is_refused() -> None:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("h264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        out.mux(stream.encode(None))  # the header names a video stream; no frame follows
    with pytest.raises(MediaError) as info:
        last_frame_png(buf.getvalue())
    assert info.value.key == "shots_unreadable_video"
