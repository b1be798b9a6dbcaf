"""Video building blocks on PyAV (never a shelled-out binary): the last frame of a clip, clips joined.

Every function here is synchronous and CPU-bound; callers on the event loop use the `fetch_*`-free async
wrappers in `bot.media.run` (they hand the work to a thread).
"""

from .errors import MediaError
from .frames import last_frame, last_frame_png
from .join import duration_of, join_videos, streams_match
from .run import join_videos_async, last_frame_png_async

__all__ = [
    "MediaError",
    "duration_of",
    "join_videos",
    "join_videos_async",
    "last_frame",
    "last_frame_png",
    "last_frame_png_async",
    "streams_match",
]
