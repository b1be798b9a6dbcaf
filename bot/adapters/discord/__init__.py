"""Discord adapter: slash commands, DMs and @-mentions in, notices out (discord.py)."""

from .adapter import DiscordAdapter, DiscordSettings, DiscordStartupError

__all__ = ["DiscordAdapter", "DiscordSettings", "DiscordStartupError"]
