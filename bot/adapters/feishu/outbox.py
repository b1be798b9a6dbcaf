"""Outgoing messages: one reply card per job, paced patches, cover upload, video message, final ping."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.core import MessageGone, Notice, NoticeKind, Origin, PlatformError

from . import render
from .api import FeishuApi
from .convert import sniff_image
from .pacing import PatchGates
from .settings import FeishuSettings

log = logging.getLogger(__name__)

FINAL = frozenset({NoticeKind.SUCCESS, NoticeKind.FAILURE, NoticeKind.CANCELLED})
MAX_COVER_BYTES = 10 * 1024 * 1024  # im/v1/images limit
MAX_VIDEO_BYTES = 30 * 1024 * 1024  # im/v1/files limit


class Outbox:
    """Sends and edits cards for the adapter once attach() gave it the API and an HTTP session."""

    def __init__(
        self, settings: FeishuSettings, texts: Callable[..., str], clock: Callable[[], float]
    ) -> None:
        self._settings, self._texts = settings, texts
        self._gates = PatchGates(clock, min_interval=settings.min_patch_interval, floor=settings.patch_floor)
        self._covers: OrderedDict[str, str] = OrderedDict()
        self._labels: dict[str, dict[str, str]] = {}
        self._api: FeishuApi | None = None
        self._session: aiohttp.ClientSession | None = None

    def attach(self, api: FeishuApi | None, session: aiohttp.ClientSession | None) -> None:
        self._api, self._session = api, session

    def api(self) -> FeishuApi:
        """Returns the API; raises PlatformError while the adapter is not running."""
        if self._api is None:
            raise PlatformError("feishu adapter is not running")
        return self._api

    async def send(self, origin: Origin, notice: Notice, *, key: str) -> str:
        content = render.content_of(await self._card(notice))
        ref = await self._post(origin, "interactive", content, uuid=render.uuid_for(key))
        self._gates.shown(ref, render.digest(content))
        if notice.kind in FINAL:
            await self._finish(origin, ref, notice, ping=False)
        return ref

    async def send_card(self, origin: Origin, card: dict[str, Any], *, key: str) -> str:
        """Posts a card that is no notice (Continue ▶'s form) like send; returns its message id."""
        return await self._post(origin, "interactive", render.content_of(card), uuid=render.uuid_for(key))

    async def edit(self, origin: Origin, ref: str, notice: Notice) -> str:
        content = render.content_of(await self._card(notice))
        digest = render.digest(content)
        state = self._gates.state(ref)
        async with state.lock:
            wait = self._gates.plan(state, digest, droppable=notice.kind is NoticeKind.PROGRESS)
            if wait is None:
                return ref
            if wait:
                await asyncio.sleep(wait)
            # A refused patch raises (MessageGone when the card can no longer change): the caller decides
            # whether the notice goes out as a new card, and records that first (bot/jobs/delivery.py).
            await self.api().patch(ref, content)
            self._gates.shown(ref, digest)
        if notice.kind in FINAL:
            await self._finish(origin, ref, notice, ping=True)
        return ref

    def _labels_for(self, locale: str) -> dict[str, str]:
        if locale not in self._labels:
            self._labels[locale] = {k: self._texts(f"feishu.{k}", locale) for k in render.LABEL_KEYS}
        return self._labels[locale]

    async def _card(self, notice: Notice) -> dict[str, Any]:
        image_key = await self._cover_key(notice.cover_url) if notice.cover_url else ""
        return render.render_card(notice, self._labels_for(notice.locale), image_key=image_key)

    async def _post(self, origin: Origin, msg_type: str, content: str, *, uuid: str) -> str:
        api = self.api()
        if origin.message_id:
            in_thread = bool(origin.extra.get("thread_id"))
            try:
                return await api.reply(origin.message_id, msg_type, content, uuid=uuid, in_thread=in_thread)
            except MessageGone:
                log.info("feishu reply target %s is gone; posting in the chat", origin.message_id)
        return await api.create(origin.chat_id, msg_type, content, uuid=uuid)

    async def _finish(self, origin: Origin, ref: str, notice: Notice, *, ping: bool) -> None:
        """Follow-ups once a card turns final: the video message, else a ping (a patch notifies nobody)."""
        state = self._gates.state(ref)
        if state.finished:
            return
        state.finished = True
        stem = notice.job_id or ref
        try:
            sent_video = notice.kind is NoticeKind.SUCCESS and await self._send_video(origin, notice, stem)
            wanted = ping and self._settings.notify_on_finish and notice.kind is not NoticeKind.CANCELLED
            if wanted and not sent_video:
                text = self._texts(f"feishu.ping.{notice.kind.value}", notice.locale)
                who = "" if origin.is_direct else notice.mention_user_id or origin.user_id
                content = render.text_content(text, who)
                await self._post(origin, "text", content, uuid=render.uuid_for(f"{stem}:ping"))
        except PlatformError as exc:
            log.warning("feishu follow-up for %s not delivered: %s", stem, exc)

    async def _send_video(self, origin: Origin, notice: Notice, stem: str) -> bool:
        if not (self._settings.send_video_file and notice.video_url):
            return False
        data = await self._download(notice.video_url, MAX_VIDEO_BYTES)
        if data is None:
            return False
        file_key = await self.api().upload_video(data)
        image_key = await self._cover_key(notice.cover_url) if notice.cover_url else ""
        content = render.media_content(file_key, image_key)
        await self._post(origin, "media", content, uuid=render.uuid_for(f"{stem}:media"))
        return True

    async def _cover_key(self, url: str) -> str:
        """Returns the image_key of an uploaded cover ("" when it cannot be had: the card omits it)."""
        if url in self._covers:
            return self._covers[url]
        data = await self._download(url, MAX_COVER_BYTES)
        key = ""
        if data is not None and sniff_image(data):
            try:
                key = await self.api().upload_image(data)
            except PlatformError as exc:
                log.warning("feishu cover upload failed: %s", exc)
        self._covers[url] = key
        while len(self._covers) > 256:
            self._covers.popitem(last=False)
        return key

    async def _download(self, url: str, cap: int) -> bytes | None:
        """Returns the bytes at url, or None when it fails or exceeds cap bytes."""
        if self._session is None:
            return None
        try:
            async with self._session.get(url) as resp:
                if resp.status != 200 or (resp.content_length or 0) > cap:
                    return None
                data = bytearray()
                async for chunk in resp.content.iter_chunked(1 << 16):
                    data += chunk
                    if len(data) > cap:
                        return None
                return bytes(data)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("feishu download of a result file failed: %s", type(exc).__name__)
            return None
