"""Async wrappers: decoding and encoding run in a worker thread so the event loop keeps serving chats."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from .frames import last_frame_png
from .join import join_videos


async def last_frame_png_async(video: bytes) -> bytes:
    """`last_frame_png` off the event loop."""
    return await asyncio.to_thread(last_frame_png, video)


async def join_videos_async(parts: Sequence[bytes]) -> bytes:
    """`join_videos` off the event loop."""
    return await asyncio.to_thread(join_videos, list(parts))
