"""The ports an adapter implements: a Messenger to talk, plus run/stop_intake/close to live."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from .intent import Attachment, Intent, Origin
from .notice import Notice

# The pipeline's entry point. It returns quickly (it records, it does not run the job); a Notice it
# returns is the direct answer to show (command results, refusals), None when replies come later.
IntentHandler = Callable[[Intent], Awaitable[Notice | None]]


@runtime_checkable
class Messenger(Protocol):
    platform: str

    async def send(self, origin: Origin, notice: Notice, *, key: str) -> str:
        """Posts notice as a new message for origin; returns its reference.

        key is stable per job and stage, so a retried send must not post twice (Feishu `uuid`).
        Raises PlatformError when the platform refuses.
        """
        ...

    async def edit(self, origin: Origin, ref: str, notice: Notice) -> str:
        """Replaces the message ref with notice; returns the reference now showing it.

        Raises MessageGone when the message no longer exists (the caller sends a new one),
        PlatformError for other refusals.
        """
        ...

    async def read_attachment(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """Downloads an attachment after checking its declared type and size.

        Raises AttachmentRejected (not an image, too large, download failed).
        """
        ...


@runtime_checkable
class Adapter(Messenger, Protocol):
    async def run(self, handler: IntentHandler) -> None:
        """Connects and delivers intents to handler until close(); raises on a fatal start-up error."""
        ...

    async def stop_intake(self) -> None:
        """Stops taking new events, and returns once every event already acknowledged reached the handler.
        Sends and edits go on working until close(): a graceful stop lets the jobs in flight settle (a
        create come back, a final land) between the two."""
        ...

    async def close(self) -> None: ...

    @property
    def connected(self) -> bool: ...
