"""Discord object shapes (users, guild, channels, messages, interactions) as the fake Discord serves them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# Privileged gateway intents: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT.
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)
ALL_PERMISSIONS = str((1 << 51) - 1)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def user(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "global_name": name.title(),
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
    }


def member(user_obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "user": user_obj,
        "nick": None,
        "avatar": None,
        "roles": [],
        "joined_at": "2025-01-01T00:00:00+00:00",
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "permissions": ALL_PERMISSIONS,
    }


def text_channel(channel_id: str, guild_id: str, name: str, position: int = 0) -> dict[str, Any]:
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "parent_id": None,
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def dm_channel(channel_id: str, recipient: dict[str, Any]) -> dict[str, Any]:
    return {"id": channel_id, "type": 1, "recipients": [recipient], "last_message_id": None, "flags": 0}


def bot_role(role_id: str, bot_id: str, name: str) -> dict[str, Any]:
    """The role Discord creates for a bot when it joins a guild (managed, tagged with the bot's id)."""
    return {
        "id": role_id,
        "name": name,
        "permissions": ALL_PERMISSIONS,
        "position": 1,
        "color": 0,
        "hoist": False,
        "managed": True,
        "mentionable": True,
        "flags": 0,
        "tags": {"bot_id": bot_id},
    }


def guild(
    guild_id: str,
    name: str,
    channels: list[dict[str, Any]],
    members: list[dict[str, Any]],
    owner_id: str,
    roles: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    everyone = {
        "id": guild_id,
        "name": "@everyone",
        "permissions": ALL_PERMISSIONS,
        "position": 0,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }
    return {
        "id": guild_id,
        "name": name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "banner": None,
        "description": None,
        "owner_id": owner_id,
        "region": None,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "public_updates_channel_id": None,
        "vanity_url_code": None,
        "application_id": None,
        "features": [],
        "roles": [everyone, *roles],
        "emojis": [],
        "stickers": [],
        "channels": [{k: v for k, v in c.items() if k != "guild_id"} for c in channels],
        "members": members,
        "member_count": len(members),
        "threads": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "voice_states": [],
        "presences": [],
        "large": False,
        "unavailable": False,
        "joined_at": "2025-01-01T00:00:00+00:00",
        "max_members": 500000,
    }


def attachment(att_id: str, filename: str, size: int, url: str, content_type: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": att_id, "filename": filename, "size": size, "url": url, "proxy_url": url}
    if content_type:
        out["content_type"] = content_type
    return out


def message(
    message_id: str,
    channel_id: str,
    author: dict[str, Any],
    *,
    content: str = "",
    attachments: list[dict[str, Any]] | None = None,
    embeds: list[dict[str, Any]] | None = None,
    components: list[dict[str, Any]] | None = None,
    mentions: list[dict[str, Any]] | None = None,
    flags: int = 0,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": message_id,
        "channel_id": channel_id,
        "type": 19 if reference else 0,
        "content": content,
        "author": author,
        "attachments": attachments or [],
        "embeds": embeds or [],
        "components": components or [],
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": mentions or [],
        "mention_roles": [],
        "pinned": False,
        "flags": flags,
    }
    if reference:
        out["message_reference"] = reference
    return out


def interaction(
    interaction_id: str,
    *,
    app_id: str,
    kind: int,
    token: str,
    channel: dict[str, Any],
    invoker: dict[str, Any],
    guild_id: str | None,
    locale: str,
    size_limit: int,
    data: dict[str, Any],
    message_obj: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": interaction_id,
        "application_id": app_id,
        "type": kind,
        "token": token,
        "version": 1,
        "channel_id": channel["id"],
        "channel": channel,
        "app_permissions": ALL_PERMISSIONS,
        "locale": locale,
        "attachment_size_limit": size_limit,
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild_id} if guild_id else {"1": invoker["id"]},
        "context": 0 if guild_id else 1,
        "data": data,
    }
    if guild_id:
        out["guild_id"] = guild_id
        out["guild_locale"] = "en-US"
        out["member"] = member(invoker)
    else:
        out["user"] = invoker
    if message_obj is not None:
        out["message"] = message_obj
    return out
