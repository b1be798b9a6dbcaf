"""The Discord adapter: lifecycle, events → intents → handler; send/edit/read live in _messenger."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import discord

from bot.core import Action, Attachment, Intent, IntentHandler, Notice, Origin, PlatformError, detect_locale

from . import _client
from ._messenger import ChannelMessenger
from ._transfer import REQUEST_FAILURES
from .convert import get_locale, interaction_intent, is_allowed
from .convert import message_intent as convert_message
from .modals import continue_form
from .render import Rendered, render_notice, render_text

log = logging.getLogger(__name__)

LOGIN_WAIT = 30.0  # how long send/edit wait for a login in progress (jobs resumed at start-up)
_BAD_TOKEN = (
    "Discord rejected the bot token. Copy a fresh one from the Developer Portal "
    "(Applications → your app → Bot → Reset Token) into the configuration."
)
_INTENTS = (
    "Discord closed the gateway because of the requested intents (4014: disallowed, 4013: invalid): a "
    "privileged intent is not enabled for this application. Enable it under Developer Portal → your app → Bot "
    "→ Privileged Gateway Intents."
)


def _startup_error(exc: BaseException) -> DiscordStartupError:
    """Returns the operator-facing error for a failed start (never quoting the token)."""
    if isinstance(exc, discord.LoginFailure):
        return DiscordStartupError(_BAD_TOKEN)
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return DiscordStartupError(_INTENTS)
    if isinstance(exc, discord.ConnectionClosed):
        text = {4004: _BAD_TOKEN, 4013: _INTENTS, 4014: _INTENTS}.get(exc.code or 0)
        return DiscordStartupError(text or f"Discord closed the gateway with code {exc.code}")
    if isinstance(exc, discord.HTTPException):
        return DiscordStartupError(f"Discord refused a start-up request ({exc.status})")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return DiscordStartupError(f"Could not reach Discord ({type(exc).__name__}); check the network")
    return DiscordStartupError(f"The Discord client failed to start ({type(exc).__name__})")


@dataclass(frozen=True)
class DiscordSettings:
    token: str
    guild_allowlist: frozenset[str] = frozenset()
    channel_allowlist: frozenset[str] = frozenset()
    upload_video: bool = False
    max_image_bytes: int = 20 * 1024 * 1024
    min_edit_interval: float = 10.0
    command_guild_ids: tuple[str, ...] = ()  # sync commands to these guilds (fast) else globally
    guild_ready_timeout: float = 2.0
    allow_direct_messages: bool = True  # DMs are outside any guild allowlist; this switch governs them
    shard_count: int = 0  # issue 13: gateway shards across all replicas; 0 = one unsharded connection
    shard_ids: tuple[int, ...] = ()  # issue 13: the shards this replica runs; () = all of shard_count


class DiscordStartupError(Exception):
    """The bot cannot start; the message tells the operator what to fix (it never contains the token)."""


class DiscordAdapter:
    """Implements bot.core.Adapter for Discord on discord.py; the composition root owns its lifetime."""

    platform = "discord"

    def __init__(
        self,
        settings: DiscordSettings,
        *,
        texts: Callable[..., str],
        clock: Callable[[], float] = time.monotonic,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._settings = settings
        self._texts = texts
        self._clock = clock
        self._session = session
        self._owns_session = session is None
        self._client: _client.BotClient | None = None
        self._handler: IntentHandler | None = None
        self._ready = asyncio.Event()  # gateway READY
        self._online = asyncio.Event()  # logged in: REST calls work
        self._closing = False
        self._messenger = ChannelMessenger(
            get_client=self._logged_in_client,
            texts=texts,
            clock=clock,
            http=self._http,
            upload_video=settings.upload_video,
            max_image_bytes=settings.max_image_bytes,
            min_edit_interval=settings.min_edit_interval,
        )

    # lifecycle -----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        client = self._client
        if self._messenger.token_rejected:  # fatal: /healthz must say so, not only the log
            return False
        return bool(client and client.is_ready() and not client.is_closed() and client.ws and client.ws.open)

    async def wait_ready(self) -> None:
        """Returns once the gateway session is ready (wrap in asyncio.timeout to bound the wait)."""
        await self._ready.wait()

    async def run(self, handler: IntentHandler) -> None:
        """Logs in, syncs commands and delivers intents to handler until close().

        Raises DiscordStartupError for a rejected token, missing privileged intents or another fatal
        gateway refusal; transient network failures are retried by discord.py.
        """
        if self._client is not None:
            raise RuntimeError("DiscordAdapter.run() is already running")
        self._closing = False
        self._handler = handler
        client = _client.make_client(
            self,
            texts=self._texts,
            command_guild_ids=self._settings.command_guild_ids,
            guild_ready_timeout=self._settings.guild_ready_timeout,
            shard_count=self._settings.shard_count,
            shard_ids=self._settings.shard_ids,
        )
        self._client = client
        try:
            await client.login(self._settings.token)
            if not self._closing:
                await client.connect(reconnect=True)
        except (discord.DiscordException, aiohttp.ClientError, OSError) as exc:
            if self._closing:
                return  # close() during start-up is not a failure
            raise _startup_error(exc) from None
        finally:
            self._ready.clear()
            self._online.clear()
            self._client = None
            if not client.is_closed():
                await client.close()

    async def stop_intake(self) -> None:
        """Nothing to stop before close(): Discord does not hand a missed message or interaction to
        anyone else, so the gateway stays up while the runner settles. What comes in meanwhile is
        answered and stored; its job runs on another replica, or here after the restart."""

    async def close(self) -> None:
        """Disconnects from Discord (run() then returns) and releases the download session."""
        self._closing = True
        client = self._client
        if client is not None and not client.is_closed():
            await client.close()
        if client is not None:
            # Client.close() leaves discord.py's ready-delay task behind; it would later dispatch on_ready
            # through the closed client and crash. Cancel it, as process exit would.
            ready = getattr(getattr(client, "_connection", None), "_ready_task", None)
            if ready is not None and not ready.done():
                ready.cancel()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def on_login(self) -> None:
        self._online.set()

    def on_ready(self) -> None:
        self._ready.set()

    # events --------------------------------------------------------------------------------------

    def _allowed(self, origin: Origin, parent_channel_id: str) -> bool:
        return is_allowed(
            origin,
            guild_allowlist=self._settings.guild_allowlist,
            channel_allowlist=self._settings.channel_allowlist,
            parent_channel_id=parent_channel_id,
            allow_direct=self._settings.allow_direct_messages,
        )

    async def _dispatch(self, intent: Intent) -> tuple[bool, Notice | None]:
        assert self._handler is not None
        try:
            return True, await self._handler(intent)
        except Exception:
            log.exception("Intent handler failed for %s", intent.event_keys)
            return False, None

    def _answer(self, ok: bool, notice: Notice | None, locale: str, ack_key: str = "") -> Rendered | None:
        """The direct answer: the handler's notice, an apology if it failed, else the ack (if any)."""
        if notice is not None:
            return render_notice(notice, self._texts)
        if not ok:
            return render_text(self._texts("discord.failed", locale))
        return render_text(self._texts(ack_key, locale)) if ack_key else None

    async def _accept(self, interaction: discord.Interaction) -> tuple[Intent | None, str]:
        """Returns (intent, display locale); the intent is None (and a refusal was sent) outside the allowlist."""
        locale = get_locale(interaction.locale.value) or "en"
        intent = interaction_intent(_client.interaction_payload(interaction))
        if intent is not None and not self._allowed(
            intent.origin, _client.parent_channel_id(interaction.channel)
        ):
            await interaction.response.send_message(
                self._texts("discord.not_allowed", locale), ephemeral=True
            )
            return None, locale
        return intent, locale

    async def on_app_command(self, interaction: discord.Interaction) -> None:
        intent, locale = await self._accept(interaction)
        if intent is None:
            return
        # Acknowledge before anything slow: Discord drops interactions not answered within 3 s.
        await interaction.response.defer(ephemeral=True, thinking=True)
        answer = self._answer(*await self._dispatch(intent), locale, ack_key="discord.ack")
        assert answer is not None  # with an ack key there is always an answer
        try:
            await interaction.edit_original_response(**answer.edit_kwargs())
        except REQUEST_FAILURES as exc:
            log.warning("Could not answer interaction %s: %r", interaction.id, exc)

    async def on_job_button(self, interaction: discord.Interaction, action: Action, job_id: str) -> None:
        if action is Action.CONTINUE:  # issue 14: the press asks what happens next; the submit is on_form
            await self._open_form(interaction, job_id)
            return
        await self._on_press(interaction)

    async def on_form(self, interaction: discord.Interaction) -> None:
        """A submitted modal (Continue ▶'s form): handled as the press itself, with the typed text."""
        await self._on_press(interaction)

    async def _open_form(self, interaction: discord.Interaction, job_id: str) -> None:
        intent, locale = await self._accept(interaction)
        if intent is None:
            return
        try:  # the modal must be the first answer (within 3 s): nothing else happens before it
            await interaction.response.send_modal(continue_form(job_id, self._texts, locale))
        except REQUEST_FAILURES as exc:
            log.warning("Could not open the form for button %s: %r", interaction.id, exc)

    async def _on_press(self, interaction: discord.Interaction) -> None:
        intent, locale = await self._accept(interaction)
        if intent is None:
            return
        await interaction.response.defer()  # a silent "deferred update": the message stays as it is
        answer = self._answer(*await self._dispatch(intent), locale)
        if answer is None:
            return
        try:
            await interaction.followup.send(ephemeral=True, **answer.send_kwargs())
        except REQUEST_FAILURES as exc:
            log.warning("Could not answer button %s: %r", interaction.id, exc)

    async def on_message(self, message: discord.Message) -> None:
        client = self._client
        if client is None or client.user is None or message.author.bot:
            return
        if message.guild is None and not isinstance(message.channel, discord.DMChannel):
            return  # a guild we have not seen yet: we cannot check the allowlist
        intent = convert_message(
            _client.message_payload(message),
            bot_id=str(client.user.id),
            upload_limit=_client.upload_limit(message),
            bot_role_ids=_client.bot_role_ids(message),
        )
        if intent is None or not self._allowed(intent.origin, _client.parent_channel_id(message.channel)):
            return
        answer = self._answer(*await self._dispatch(intent), detect_locale(intent.text))
        if answer is None:
            return
        try:
            await message.reply(**answer.send_kwargs())
        except REQUEST_FAILURES as exc:
            log.warning("Could not reply to message %s: %r", message.id, exc)

    # Messenger (delegated) ------------------------------------------------------------------------

    async def _logged_in_client(self) -> discord.Client:
        # Jobs resumed at start-up may talk before login finished: give it a moment, then refuse.
        try:
            await asyncio.wait_for(self._online.wait(), LOGIN_WAIT)
        except TimeoutError:
            raise PlatformError("the Discord adapter is not logged in") from None
        client = self._client
        if client is None or client.is_closed():
            raise PlatformError("the Discord adapter is closed")
        return client

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120, sock_read=30))
        return self._session

    async def send(self, origin: Origin, notice: Notice, *, key: str) -> str:
        """Posts notice for origin; returns "channel_id:message_id". See ChannelMessenger.send."""
        return await self._messenger.send(origin, notice, key=key)

    async def edit(self, origin: Origin, ref: str, notice: Notice) -> str:
        """Shows notice in message ref; returns ref. Raises MessageGone / PlatformError (ChannelMessenger.edit)."""
        return await self._messenger.edit(origin, ref, notice)

    async def read_attachment(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """Returns the image bytes; raises AttachmentRejected (ChannelMessenger.read_attachment)."""
        return await self._messenger.read_attachment(attachment, max_bytes=max_bytes)
