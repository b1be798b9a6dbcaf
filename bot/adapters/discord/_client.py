"""The discord.Client the adapter drives: minimal intents, command sync, events forwarded to the adapter."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import discord

from bot.core import Action

from ._components import JobButton
from .commands import LocaleTranslator, build_tree
from .convert import DEFAULT_UPLOAD_LIMIT

log = logging.getLogger(__name__)

# Only unprivileged intents: DMs and messages that mention the bot carry their content without the
# privileged Message Content intent, and slash commands need no intent at all.
INTENTS = discord.Intents.none()
INTENTS.guilds = True  # channel and guild cache (upload limits, thread parents)
INTENTS.guild_messages = True  # @-mentions in channels
INTENTS.dm_messages = True  # DMs

# discord.py sleeps through 429s up to this many seconds; longer waits surface as PlatformError(retry_after).
MAX_RATELIMIT_WAIT = 60.0


class Hooks(Protocol):
    async def on_app_command(self, interaction: discord.Interaction) -> None: ...
    async def on_job_button(self, interaction: discord.Interaction, action: Action, job_id: str) -> None: ...
    async def on_form(self, interaction: discord.Interaction) -> None: ...
    async def on_message(self, message: discord.Message) -> None: ...
    def on_login(self) -> None: ...
    def on_ready(self) -> None: ...


def make_client(
    hooks: Hooks, *, shard_count: int = 0, shard_ids: tuple[int, ...] = (), **options: Any
) -> BotClient:
    """The client for this replica (issue 13): one unsharded connection when shard_count is 0, else the
    gateway shards shard_ids (all when empty) of shard_count, so replicas split the gateway between them
    while each sends and edits over REST."""
    if not shard_count:
        return BotClient(hooks, **options)
    return ShardedBotClient(hooks, shard_count=shard_count, shard_ids=list(shard_ids) or None, **options)


class BotClient(discord.Client):
    """A Client that syncs our commands on login and forwards events to the adapter's hooks."""

    def __init__(
        self,
        hooks: Hooks,
        *,
        texts: Callable[..., str],
        command_guild_ids: tuple[str, ...],
        guild_ready_timeout: float,
        **shards: Any,
    ) -> None:
        super().__init__(
            **shards,
            intents=INTENTS,
            guild_ready_timeout=guild_ready_timeout,
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
        )
        self._hooks = hooks
        self._texts = texts
        self._command_guild_ids = command_guild_ids
        self.tree = build_tree(self, texts, hooks.on_app_command)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(JobButton)
        await self.tree.set_translator(LocaleTranslator(self._texts))
        await self.sync_commands()
        self._hooks.on_login()

    async def sync_commands(self) -> None:
        """Registers the commands in the configured guilds (instant) or globally; logs what fails."""
        targets = [discord.Object(id=int(g)) for g in self._command_guild_ids] or [None]
        for guild in targets:
            if guild is not None:
                self.tree.copy_global_to(guild=guild)
            where = f"guild {guild.id}" if guild else "globally"
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.Forbidden:
                log.error(
                    "Could not register slash commands %s: invite the bot with the applications.commands scope",
                    where,
                )
            except discord.HTTPException as exc:
                log.error("Could not register slash commands %s: %s %s", where, exc.status, exc.text[:200])
            else:
                log.info("Registered %d slash commands %s", len(synced), where)

    async def on_ready(self) -> None:
        log.info("Discord ready as %s in %d guild(s)", self.user, len(self.guilds))
        self._hooks.on_ready()

    async def on_resumed(self) -> None:
        log.info("Discord gateway session resumed")

    async def on_message(self, message: discord.Message) -> None:
        await self._hooks.on_message(message)

    async def on_job_button(self, interaction: discord.Interaction, action: Action, job_id: str) -> None:
        await self._hooks.on_job_button(interaction, action, job_id)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        # Modal submits are read here, not by a stored Modal, so a form opened before a restart still
        # works after it (modals.py); convert ignores modals that are not ours.
        if interaction.type is discord.InteractionType.modal_submit:
            await self._hooks.on_form(interaction)


def interaction_payload(interaction: discord.Interaction) -> dict[str, Any]:
    """Returns the INTERACTION_CREATE fields convert reads, rebuilt from discord.py's Interaction."""
    channel = interaction.channel
    payload: dict[str, Any] = {
        "id": str(interaction.id),
        "type": interaction.type.value,
        "data": interaction.data or {},
        "channel_id": str(interaction.channel_id or ""),
        "channel": {
            "id": str(interaction.channel_id or ""),
            "type": getattr(getattr(channel, "type", None), "value", None),
        },
        "user": {"id": str(interaction.user.id)},
        "locale": interaction.locale.value,
        "attachment_size_limit": interaction.filesize_limit,
    }
    if interaction.guild_id:
        payload["guild_id"] = str(interaction.guild_id)
    if interaction.message is not None:
        payload["message"] = {
            "id": str(interaction.message.id),
            "channel_id": str(interaction.message.channel.id),
        }
    return payload


def _message_fields(message: discord.Message | discord.MessageSnapshot) -> dict[str, Any]:
    return {
        "content": message.content,
        "attachments": [a.to_dict() for a in message.attachments],
    }


def message_payload(message: discord.Message) -> dict[str, Any]:
    """Returns the MESSAGE_CREATE fields convert reads, rebuilt from discord.py's Message."""
    payload: dict[str, Any] = {
        "id": str(message.id),
        "type": message.type.value,
        "channel_id": str(message.channel.id),
        "author": {"id": str(message.author.id), "bot": message.author.bot},
        "mentions": [{"id": str(u.id)} for u in message.mentions],
        "mention_roles": [str(r) for r in message.raw_role_mentions],
        **_message_fields(message),
    }
    if message.guild is not None:
        payload["guild_id"] = str(message.guild.id)
    ref = message.reference
    if ref is not None:
        payload["message_reference"] = {
            "type": ref.type.value,
            "message_id": str(ref.message_id or ""),
            "channel_id": str(ref.channel_id),
        }
        quoted = ref.resolved
        if isinstance(quoted, discord.Message):
            payload["referenced_message"] = {
                "id": str(quoted.id),
                "author": {"id": str(quoted.author.id), "bot": quoted.author.bot},
                **_message_fields(quoted),
            }
    if message.message_snapshots:
        payload["message_snapshots"] = [{"message": _message_fields(s)} for s in message.message_snapshots]
    return payload


def bot_role_ids(message: discord.Message) -> tuple[str, ...]:
    """Returns the id of the bot's managed role in message's guild (empty outside guilds or when unknown)."""
    role = message.guild.self_role if message.guild is not None else None
    return (str(role.id),) if role is not None else ()


def upload_limit(message: discord.Message) -> int:
    """Returns the per-file upload limit where message was posted (boosted guilds allow more)."""
    return message.guild.filesize_limit if message.guild is not None else DEFAULT_UPLOAD_LIMIT


def parent_channel_id(channel: object) -> str:
    """Returns a thread's parent channel id ("" for other channels), for the channel allowlist."""
    parent = getattr(channel, "parent_id", None)
    return str(parent) if parent else ""


class ShardedBotClient(BotClient, discord.AutoShardedClient):
    """BotClient over several gateway shards (issue 13: shards split across replicas)."""
