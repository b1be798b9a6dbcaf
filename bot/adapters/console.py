"""Terminal chat: the sandbox demo and an operator's test bench. Local image paths count as attachments."""

from __future__ import annotations

import asyncio
import itertools
import json
import mimetypes
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from bot.core import (
    Action,
    ActionIntent,
    Attachment,
    AttachmentRejected,
    ButtonStyle,
    Command,
    CommandIntent,
    GenerationIntent,
    Intent,
    IntentHandler,
    Notice,
    Origin,
)

_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM")
_ACTIONS = {"/retry": Action.RETRY, "/other": Action.OTHER_MODEL}
_COMMANDS = {
    "/jobs": Command.JOBS,
    "/settings": Command.SETTINGS,
    "/cancel": Command.CANCEL,
    "/help": Command.HELP,
}


def to_intent(line: str, *, user: str, seq: int, cwd: Path) -> Intent | None:
    """A typed line → an intent (pure but for checking which words are existing image files)."""
    text = line.strip()
    if not text:
        return None
    origin = Origin(platform="console", chat_id="console", user_id=user, message_id=f"m{seq}", is_direct=True)
    head, _, rest = text.partition(" ")
    if head in _ACTIONS and rest.strip():
        return ActionIntent(origin=origin, job_id=rest.strip(), action=_ACTIONS[head])
    if head in _COMMANDS:
        if head == "/cancel" and rest.strip():
            return CommandIntent(origin=origin, command=Command.CANCEL, args={"job_id": rest.strip()})
        args = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv) if head == "/settings" else {}
        return CommandIntent(origin=origin, command=_COMMANDS[head], args=args)
    words, attachments = [], []
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError:
        tokens = text.split()
    for token in tokens:
        path = Path(os.path.expanduser(token))
        if not path.is_absolute():
            path = cwd / path
        if path.suffix.lower() in _IMAGE_EXT and path.is_file():
            ctype = mimetypes.guess_type(path.name)[0] or "image/png"
            attachments.append(
                Attachment(handle=str(path), filename=path.name, content_type=ctype, size=path.stat().st_size)
            )
        else:
            words.append(token)
    return GenerationIntent(origin=origin, text=" ".join(words), attachments=tuple(attachments))


def render(notice: Notice, *, edited: bool = False) -> str:
    """A notice as terminal text: title, indented lines, then buttons as the commands that do the same."""
    mark = "↻ " if edited else ""
    out = [f"[bot] {mark}{notice.title}"]
    out += [f"      {line}" for line in notice.lines]
    hints = []
    for b in notice.buttons:
        if b.style is ButtonStyle.LINK or b.url:
            hints.append(f"{b.label}: {b.url}")
        elif b.action is Action.CANCEL:
            hints.append(f"{b.label}: /cancel {b.job_id}")
        elif b.action is Action.RETRY:
            hints.append(f"{b.label}: /retry {b.job_id}")
        elif b.action is Action.OTHER_MODEL:
            hints.append(f"{b.label}: /other {b.job_id}")
    if hints:
        out.append("      » " + "  |  ".join(hints))
    if notice.cover_url:
        out.append(f"      🖼 {notice.cover_url}")
    return "\n".join(out)


class ConsoleAdapter:
    """Reads lines from a stream, prints notices. With a transcript file, sends are idempotent per key
    across restarts (like Feishu's uuid), and the file records every message for tests and operators."""

    platform = "console"
    final_in_place = False

    def __init__(
        self,
        *,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        transcript: Path | None = None,
        user: str | None = None,
        cwd: Path | None = None,
        read_line: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._read_line = read_line or self._in.readline
        self._transcript = transcript
        self._clock = clock
        self._user = user or os.environ.get("USER") or "you"
        self._cwd = cwd or Path.cwd()
        self._ids = itertools.count(1)
        self._sent: dict[str, str] = {}
        self._connected = False
        self._closed = asyncio.Event()
        if transcript and transcript.exists():
            for line in transcript.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line)
                if rec.get("op") == "send":
                    self._sent[rec["key"]] = rec["ref"]
                    self._ids = itertools.count(max(int(rec["ref"][1:]) + 1, next(self._ids)))

    @property
    def connected(self) -> bool:
        return self._connected

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def _record(self, **rec: object) -> None:
        if self._transcript:
            rec["at"] = self._clock()
            with self._transcript.open("a", encoding="utf-8") as f:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())

    async def send(self, origin: Origin, notice: Notice, *, key: str) -> str:
        if key in self._sent:
            return self._sent[key]
        ref = f"c{next(self._ids)}"
        self._print(render(notice))
        self._record(
            op="send",
            key=key,
            ref=ref,
            kind=notice.kind.value,
            job=notice.job_id,
            title=notice.title,
            video=notice.video_url,
        )
        self._sent[key] = ref
        return ref

    async def edit(self, origin: Origin, ref: str, notice: Notice) -> str:
        self._print(render(notice, edited=True))
        self._record(op="edit", ref=ref, kind=notice.kind.value, job=notice.job_id, progress=notice.progress)
        return ref

    async def read_attachment(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        return await asyncio.to_thread(_read_image, attachment, max_bytes)

    def _start_reader(self) -> asyncio.Queue[str]:
        """A daemon thread reads lines, so a blocked read never holds up shutdown."""
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str] = asyncio.Queue()

        def pump() -> None:
            while True:
                try:
                    line = self._read_line()
                except (OSError, ValueError):
                    line = ""
                try:
                    loop.call_soon_threadsafe(lines.put_nowait, line)
                except RuntimeError:  # the loop is gone: the process is exiting
                    return
                if not line:
                    return

        threading.Thread(target=pump, name="console-input", daemon=True).start()
        return lines

    async def run(self, handler: IntentHandler) -> None:
        """Reads lines until end of input, /quit or close(); each line goes to handler."""
        self._connected = True
        seq = itertools.count(1)
        lines = self._start_reader()
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            while True:
                getter = asyncio.ensure_future(lines.get())
                await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    return
                line = getter.result()
                if not line:
                    return
                if line.strip() in ("/quit", "/exit"):
                    return
                intent = to_intent(line, user=self._user, seq=next(seq), cwd=self._cwd)
                if intent is None:
                    continue
                reply = await handler(intent)
                if reply is not None:
                    self._print(render(reply))
        finally:
            closed.cancel()
            self._connected = False

    async def close(self) -> None:
        self._closed.set()


def _read_image(attachment: Attachment, max_bytes: int) -> bytes:
    """A local image's bytes after the size and type checks. Raises AttachmentRejected."""
    name = attachment.filename or Path(attachment.handle).name
    path = Path(attachment.handle)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise AttachmentRejected(
                "attachment_too_large",
                name=name,
                size_mb=f"{size / 2**20:.1f}",
                limit_mb=f"{max_bytes / 2**20:.0f}",
            )
        data = path.read_bytes()
    except OSError:
        raise AttachmentRejected("attachment_download_failed", name=name) from None
    if not data.startswith(_MAGIC):
        raise AttachmentRejected("attachment_not_image", name=name)
    return data


__all__ = ["ConsoleAdapter", "render", "to_intent"]
