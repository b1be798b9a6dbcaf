"""The last frame of a video, as a decoded frame or as PNG bytes."""

from __future__ import annotations

import io

import av
import av.error

from .errors import MediaError


def _open(video: bytes) -> av.container.InputContainer:
    try:
        return av.open(io.BytesIO(video), mode="r")
    except (av.error.FFmpegError, ValueError) as exc:
        raise MediaError("shots_unreadable_video", f"not a readable video: {exc}") from exc


def last_frame(video: bytes) -> av.VideoFrame:
    """The frame shown last of the first video stream.

    Seeks to the last key frame first, so only the final group of pictures is decoded; falls back to a
    full decode when the seek finds nothing. Raises MediaError for bytes that are no video.
    """
    with _open(video) as container:
        if not container.streams.video:
            raise MediaError("shots_no_video_stream", "the file has no video stream")
        stream = container.streams.video[0]
        found = _decode_tail(container, stream, seek=True) or _decode_tail(container, stream, seek=False)
    if found is None:
        raise MediaError("shots_unreadable_video", "no frame could be decoded")
    return found


def _decode_tail(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, *, seek: bool
) -> av.VideoFrame | None:
    try:
        if seek:
            # backward=True lands on the last key frame at or before the (huge) target: the final GOP.
            container.seek(2**62, stream=stream, backward=True, any_frame=False)
        else:
            container.seek(0, stream=stream, backward=True, any_frame=False)
        best: av.VideoFrame | None = None
        for frame in container.decode(stream):  # decoders hand frames out in presentation order
            best = frame
        return best
    except av.error.FFmpegError as exc:
        if seek:
            return None  # some files cannot seek; the full decode below still works
        raise MediaError("shots_unreadable_video", f"decoding failed: {exc}") from exc


def png_bytes(frame: av.VideoFrame) -> bytes:
    """One frame as a PNG file (RGB, lossless: its pixels are the frame's pixels in RGB)."""
    rgb = frame.reformat(format="rgb24")
    encoder = av.CodecContext.create("png", "w")
    encoder.width, encoder.height, encoder.pix_fmt = rgb.width, rgb.height, "rgb24"
    packets = [*encoder.encode(rgb), *encoder.encode(None)]
    return b"".join(bytes(p) for p in packets)


def last_frame_png(video: bytes) -> bytes:
    """The last frame of `video` (mp4 bytes) as PNG bytes. Raises MediaError for unreadable input."""
    return png_bytes(last_frame(video))
