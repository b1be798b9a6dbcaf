"""The job buttons: a DynamicItem whose custom_id carries the action and job id, so clicks survive restarts."""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

import discord

from bot.core import Action

from .convert import CUSTOM_ID_TEMPLATE, custom_id


@runtime_checkable
class ButtonSink(Protocol):
    """What the client that received a click must offer (the adapter's client does)."""

    async def on_job_button(self, interaction: discord.Interaction, action: Action, job_id: str) -> None: ...


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID_TEMPLATE):
    """A Retry / other-model / Cancel button; discord.py matches its custom_id against the template."""

    def __init__(
        self,
        action: Action,
        job_id: str,
        *,
        label: str = "",
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
    ) -> None:
        super().__init__(
            discord.ui.Button(label=label or None, style=style, custom_id=custom_id(action, job_id))
        )
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> JobButton:
        return cls(Action(match["action"]), match["job_id"], label=item.label or "", style=item.style)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, ButtonSink):
            await client.on_job_button(interaction, self.action, self.job_id)
