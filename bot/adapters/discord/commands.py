"""The slash commands (/video, /video-settings, /video-jobs, /video-cancel, /video-help) and their zh/en texts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import discord
from discord import app_commands

from .convert import CHOICES, get_locale

Texts = Callable[..., str]
CommandCallback = Callable[[discord.Interaction], Awaitable[None]]


class LocaleTranslator(app_commands.Translator):
    """Fills zh-CN / zh-TW (and en-*) localizations from the `discord.*` keys of the locale files."""

    def __init__(self, texts: Texts) -> None:
        self._texts = texts

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        lang = get_locale(locale.value)
        if not key or lang != "zh":  # English is the default text itself
            return None
        return self._texts(key, lang)


def build_tree(client: discord.Client, texts: Texts, callback: CommandCallback) -> app_commands.CommandTree:
    """Returns a CommandTree with our commands; every command hands its interaction to callback.

    The callback reads the raw interaction data (convert.interaction_intent), so the typed parameters
    below only define the schema Discord shows.
    """

    def text(key: str) -> app_commands.locale_str:
        full = f"discord.{key}"
        return app_commands.locale_str(texts(full, "en"), key=full)

    def choices(kind: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=text(f"choice.{kind}.{v}"), value=v) for v in CHOICES[kind]]

    tree = app_commands.CommandTree(client)
    contexts = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
    installs = app_commands.allowed_installs(guilds=True, users=False)

    @tree.command(name="video", description=text("command.video.description"))
    @app_commands.describe(
        prompt=text("command.video.prompt"),
        model=text("command.video.model"),
        duration=text("command.video.duration"),
        aspect_ratio=text("command.video.aspect_ratio"),
        resolution=text("command.video.resolution"),
        image_role=text("command.video.image_role"),
        image=text("command.video.image"),
        last_image=text("command.video.last_image"),
    )
    @app_commands.choices(
        model=choices("model"),
        duration=choices("duration"),
        aspect_ratio=choices("aspect_ratio"),
        resolution=choices("resolution"),
        image_role=choices("image_role"),
    )
    @contexts
    @installs
    async def video(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 2000],
        image: discord.Attachment | None = None,
        last_image: discord.Attachment | None = None,
        model: str | None = None,
        duration: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        image_role: str | None = None,
    ) -> None:
        await callback(interaction)

    @tree.command(name="video-settings", description=text("command.settings.description"))
    @app_commands.describe(
        model=text("command.settings.model"),
        duration=text("command.settings.duration"),
        aspect_ratio=text("command.settings.aspect_ratio"),
        resolution=text("command.settings.resolution"),
        language=text("command.settings.language"),
    )
    @app_commands.choices(
        model=choices("model"),
        duration=choices("duration"),
        aspect_ratio=choices("aspect_ratio"),
        resolution=choices("resolution"),
        language=choices("language"),
    )
    @contexts
    @installs
    async def video_settings(
        interaction: discord.Interaction,
        model: str | None = None,
        duration: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        language: str | None = None,
    ) -> None:
        await callback(interaction)

    @tree.command(name="video-jobs", description=text("command.jobs.description"))
    @contexts
    @installs
    async def video_jobs(interaction: discord.Interaction) -> None:
        await callback(interaction)

    @tree.command(name="video-cancel", description=text("command.cancel.description"))
    @app_commands.describe(job_id=text("command.cancel.job_id"))
    @contexts
    @installs
    async def video_cancel(interaction: discord.Interaction, job_id: str | None = None) -> None:
        await callback(interaction)

    @tree.command(name="video-help", description=text("command.help.description"))
    @contexts
    @installs
    async def video_help(interaction: discord.Interaction) -> None:
        await callback(interaction)

    return tree
