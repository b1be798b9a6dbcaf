"""Posting and editing notices with the bot token (never the expiring interaction token), and reading images."""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

import aiohttp
import discord

from bot.core import Attachment, AttachmentRejected, Notice, NoticeKind, Origin, PlatformError
from bot.core.media import check_image

from ._transfer import (
    REQUEST_FAILURES,
    DownloadFailed,
    DownloadRefused,
    DownloadTooLarge,
    download_capped,
    platform_error,
)
from .convert import DEFAULT_UPLOAD_LIMIT, get_content_type
from .render import Rendered, render_notice

log = logging.getLogger(__name__)

MiB = 1024 * 1024
REFUSAL_COOLDOWN = 300.0  # after a 401/403 the message/channel is left alone this long: no retry storms
_MEMORY = 2048  # refs and send keys remembered (edit de-duplication, idempotent sends)


@dataclass
class _Shown:
    fingerprint: str  # everything the user sees
    stage: str  # kind, title, buttons: a change here is a state change, shown at once
    at: float


def _mb(size: int) -> str:
    """Returns size in MiB with 3 significant digits: "20", "3.5", "0.25"."""
    return f"{size / MiB:.3g}"


def send_nonce(key: str) -> str:
    """A send key as a Discord nonce (at most 25 characters, stable across restarts)."""
    return hashlib.sha256(key.encode()).hexdigest()[:25]


def split_ref(ref: str) -> tuple[int, int]:
    """Returns (channel_id, message_id) of a "channel_id:message_id" ref; raises PlatformError if malformed."""
    channel_id, _, message_id = ref.partition(":")
    if not (channel_id.isdigit() and message_id.isdigit()):
        raise PlatformError(f"not a Discord message reference: {ref!r}")
    return int(channel_id), int(message_id)


class ChannelMessenger:
    """The Messenger half of the adapter: send, edit, read_attachment."""

    def __init__(
        self,
        *,
        get_client: Callable[[], Awaitable[discord.Client]],
        texts: Callable[..., str],
        clock: Callable[[], float],
        http: Callable[[], aiohttp.ClientSession],
        upload_video: bool,
        max_image_bytes: int,
        min_edit_interval: float,
    ) -> None:
        self._get_client = get_client
        self._texts = texts
        self._clock = clock
        self._http = http
        self._upload_video = upload_video
        self._max_image_bytes = max_image_bytes
        self._min_edit_interval = min_edit_interval
        self._shown: OrderedDict[str, _Shown] = OrderedDict()  # ref -> what it shows now
        self._keys: OrderedDict[str, str] = OrderedDict()  # send key -> ref
        self._refused: dict[str, tuple[float, int]] = {}  # ref / "channel:<id>" / "*" -> (until, status)
        self.token_rejected = False  # Discord refused the token itself: nothing works until it is replaced

    # memory of refusals and of what each message shows ------------------------------------------

    def _check_refused(self, *keys: str) -> None:
        now = self._clock()
        for key in ("*", *keys):
            until, status = self._refused.get(key, (0.0, 0))
            if now < until:
                raise PlatformError(
                    f"Discord refused {key} ({status}) recently; not retrying yet", status=status
                )

    async def _refuse(self, client: discord.Client, exc: discord.HTTPException, key: str) -> None:
        """Leaves a target that refused us (401/403) alone for a while: no retry storms. Only that
        target: a 401 blocks everything only when the token itself is rejected (checked once, here),
        which is fatal and loud (`token_rejected`, the log, /healthz through the adapter)."""
        if exc.status not in (401, 403):
            return
        if exc.status == 401 and await self._token_is_rejected(client):
            self.token_rejected = True
            self._refused["*"] = (math.inf, 401)
            log.error(
                "Discord rejects the bot token (401 on %s and on /users/@me): replace it and restart", key
            )
            return
        self._refused[key] = (self._clock() + REFUSAL_COOLDOWN, exc.status)

    @staticmethod
    async def _token_is_rejected(client: discord.Client) -> bool:
        try:
            await client.http.request(discord.http.Route("GET", "/users/@me"))
        except discord.HTTPException as exc:
            return exc.status == 401
        except REQUEST_FAILURES:
            return False  # cannot tell: treat it as that target's refusal
        return False

    def _remember(self, ref: str, rendered: Rendered) -> None:
        self._shown[ref] = _Shown(rendered.fingerprint(), rendered.stage, self._clock())
        self._shown.move_to_end(ref)
        while len(self._shown) > _MEMORY:
            self._shown.popitem(last=False)

    def _forget(self, ref: str) -> None:
        """A deleted message: a later send with the key that made it must post a new one."""
        self._shown.pop(ref, None)
        for key in [k for k, r in self._keys.items() if r == ref]:
            del self._keys[key]

    # the video file ------------------------------------------------------------------------------

    def _wants_upload(self, notice: Notice) -> bool:
        return self._upload_video and bool(notice.video_url) and notice.kind is NoticeKind.SUCCESS

    async def _video_file(self, origin: Origin, notice: Notice) -> discord.File | None:
        if not self._wants_upload(notice):
            return None
        limit = int(origin.extra.get("upload_limit") or DEFAULT_UPLOAD_LIMIT)
        try:
            data, _ = await download_capped(self._http(), notice.video_url, limit, trusted=True)  # IMA's URL
        except DownloadTooLarge:
            log.info(
                "Video of job %s exceeds the %s MiB upload limit; posting the link", notice.job_id, _mb(limit)
            )
            return None
        except DownloadFailed as exc:
            log.warning("Could not download the video of job %s (%s); posting the link", notice.job_id, exc)
            return None
        name = PurePosixPath(urlparse(notice.video_url).path).name
        return discord.File(io.BytesIO(data), filename=name if name.endswith(".mp4") else "video.mp4")

    # Messenger -----------------------------------------------------------------------------------

    async def send(self, origin: Origin, notice: Notice, *, key: str) -> str:
        """Posts notice in origin's channel (a reply to the user's message when there is one); returns
        "channel_id:message_id". A key already sent returns its ref without posting again.

        Falls back to a DM when the channel refuses the bot (403). Raises PlatformError.
        """
        if key in self._keys:
            return self._keys[key]
        client = await self._get_client()
        self._check_refused()
        file = await self._video_file(origin, notice)
        rendered = render_notice(notice, self._texts, upload=file is not None)
        kwargs: dict[str, Any] = rendered.send_kwargs()
        # The key as an enforced nonce: Discord answers a repeat (a retry whose first answer was lost, a
        # restart that forgot _keys) with the message the first send made, so a final never shows twice.
        kwargs["nonce"] = send_nonce(key)
        if file is not None:
            kwargs["file"] = file
        channel_key = f"channel:{origin.chat_id}"
        try:
            self._check_refused(channel_key)
            reply = {}
            if origin.message_id.isdigit():
                reply["reference"] = discord.MessageReference(
                    message_id=int(origin.message_id),
                    channel_id=int(origin.chat_id),
                    fail_if_not_exists=False,
                )
            message = await client.get_partial_messageable(int(origin.chat_id)).send(**kwargs, **reply)
        except (PlatformError, *REQUEST_FAILURES) as exc:
            if isinstance(exc, discord.HTTPException):
                await self._refuse(client, exc, channel_key)
            error = exc if isinstance(exc, PlatformError) else platform_error(exc)
            if error.status != 403 or origin.is_direct or not origin.user_id.isdigit():
                raise error from None
            message = await self._send_dm(client, origin, kwargs, file)
        ref = f"{message.channel.id}:{message.id}"
        self._remember(ref, rendered)
        self._keys[key] = ref
        while len(self._keys) > _MEMORY:
            self._keys.popitem(last=False)
        return ref

    async def _send_dm(
        self, client: discord.Client, origin: Origin, kwargs: dict[str, Any], file: discord.File | None
    ) -> discord.Message:
        log.info("Channel %s refuses the bot; sending to user %s by DM", origin.chat_id, origin.user_id)
        if file is not None:
            file.reset()
        try:
            channel = await client.create_dm(discord.Object(id=int(origin.user_id)))
            return await channel.send(**kwargs)
        except REQUEST_FAILURES as exc:
            raise platform_error(exc) from None

    async def edit(self, origin: Origin, ref: str, notice: Notice) -> str:
        """Replaces message ref with notice; returns ref.

        Skips the request when the rendered message equals what ref shows, and paces updates within one
        state (same kind, title and buttons: progress ticks) to one per min_edit_interval; a state change
        is shown at once. Raises MessageGone when the message was deleted, PlatformError for other
        refusals (after a 401/403 the message is left alone for a while: no retry storms).
        """
        channel_id, message_id = split_ref(ref)
        client = await self._get_client()
        self._check_refused(ref)
        rendered = render_notice(notice, self._texts, upload=self._wants_upload(notice))
        last = self._shown.get(ref)
        if last is not None:
            if last.fingerprint == rendered.fingerprint():
                return ref
            if last.stage == rendered.stage and self._clock() - last.at < self._min_edit_interval:
                return ref
        file = await self._video_file(origin, notice)
        kwargs = rendered.edit_kwargs()
        if file is not None:
            kwargs["attachments"] = [file]
        elif self._wants_upload(notice):
            rendered = render_notice(notice, self._texts)  # the download failed: show the link instead
            kwargs = rendered.edit_kwargs()
        message = client.get_partial_messageable(channel_id).get_partial_message(message_id)
        try:
            await message.edit(**kwargs)
        except REQUEST_FAILURES as exc:
            if isinstance(exc, discord.HTTPException):
                await self._refuse(client, exc, ref)
                if exc.status == 404:
                    self._forget(ref)
            raise platform_error(exc, editing=True) from None
        self._remember(ref, rendered)
        return ref

    async def read_attachment(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """Returns the image bytes after checking the declared type and size (nothing is fetched for a
        non-image or an oversized attachment). Raises AttachmentRejected with key attachment_not_image,
        attachment_too_large or attachment_download_failed (params: name, size_mb, limit_mb)."""
        limit = min(max_bytes, self._max_image_bytes)
        name = attachment.filename or "attachment"
        content_type = get_content_type(attachment.content_type, attachment.filename)
        # No declared type and no telling extension: the bytes decide, after the capped download.
        if content_type and not content_type.startswith("image/"):
            raise AttachmentRejected("attachment_not_image", name=name, content_type=content_type or "?")
        if attachment.size is not None and attachment.size > limit:
            raise AttachmentRejected(
                "attachment_too_large", name=name, size_mb=_mb(attachment.size), limit_mb=_mb(limit)
            )
        try:
            data, served_type = await download_capped(self._http(), attachment.handle, limit)
        except DownloadTooLarge as exc:
            size = _mb(exc.size) if exc.size else f">{_mb(limit)}"
            raise AttachmentRejected(
                "attachment_too_large", name=name, size_mb=size, limit_mb=_mb(limit)
            ) from None
        except DownloadRefused as exc:
            log.warning("attachment %r refused: %s", name[:80], exc)
            raise AttachmentRejected("attachment_bad_host", str(exc), name=name) from None
        except DownloadFailed as exc:
            raise AttachmentRejected("attachment_download_failed", name=name, reason=str(exc)) from None
        served = get_content_type(served_type, "")
        if served and not served.startswith("image/") and served != "application/octet-stream":
            raise AttachmentRejected("attachment_not_image", name=name, content_type=served)
        check_image(data, name=name)  # the bytes decide, whatever was declared (ZIP/ELF labelled image/png)
        return data
