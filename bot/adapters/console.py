"""Terminal chat: the sandbox demo and an operator's test bench. Local image paths count as attachments."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from bot.core import (
    Action,
    Attachment,
    AttachmentRejected,
    ButtonStyle,
    IntentHandler,
    Notice,
    NoticeKind,
    Origin,
    detect_locale,
)

from .console_input import ACTIONS, PathRefusal, sniff_image, to_intent

_FINAL = frozenset({NoticeKind.SUCCESS, NoticeKind.FAILURE, NoticeKind.CANCELLED})
_REDRAW = "\r\x1b[K"  # back to the start of the line and clear it (any ANSI terminal)


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
        elif b.action is Action.GENERATE:
            hints.append(f"{b.label}: /generate {b.job_id}")
        elif b.action is Action.HELP:
            hints.append(f"{b.label}: /help")
        elif b.action is not None:  # issue 14: continue and the variations, as their typed commands
            typed = next((k for k, v in ACTIONS.items() if v is b.action), "")
            if typed:
                hints.append(f"{b.label}: {typed} {b.job_id}")
    if hints:
        out.append("      » " + "  |  ".join(hints))
    if notice.cover_url:
        out.append(f"      🖼 {notice.cover_url}")
    return "\n".join(out)


def render_line(notice: Notice) -> str:
    """An edit as one line: the title, plus the bar and elapsed time of a progress update."""
    text = f"[bot] ↻ {notice.title}"
    lines, pct = notice.lines, notice.progress
    if pct is not None and len(lines) >= 2 and f"{pct}%" in lines[0]:
        text += f"  {lines[0]} · {lines[1]}"
    return text


class ConsoleAdapter:
    """Reads lines from a stream, prints notices. With a transcript file, sends are idempotent per key
    across restarts (like Feishu's uuid), and the file records every message for tests and operators.

    A job's message is printed once; its edits are one line each, redrawn in place on a terminal. A
    job's final message is held until the edit that closes the job's message ("Finished in 16s. Result
    below."), so the result is printed below it; close() prints whatever is still held."""

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
        texts: Callable[..., str] | None = None,
        max_image_bytes: int = 20 * 2**20,
        live: bool | None = None,
    ) -> None:
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._texts = texts  # the locale texts (key, locale, **params) for the adapter's own refusals
        self._max_image_bytes = max_image_bytes
        self._tty = self._out.isatty() if live is None else live
        self._live: str | None = None  # the ref whose one-line edit is the last thing on screen (tty)
        self._job_ref: dict[str, str] = {}  # job id -> ref of its message, until its final is printed
        self._held: dict[str, str] = {}  # job id -> its rendered final, printed once its message closes
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
        if self._live is not None:
            self._out.write("\n")
            self._live = None
        self._out.write(text + "\n")
        self._out.flush()

    def _print_edit(self, ref: str, text: str) -> None:
        """One line per edit; on a terminal, a new edit of the same message redraws it in place."""
        if not self._tty:
            self._print(text)
            return
        if self._live == ref:
            self._out.write(_REDRAW + text)
        else:
            self._out.write(("\n" if self._live is not None else "") + text)
        self._live = ref
        self._out.flush()

    def _flush_held(self, job_id: str | None = None) -> None:
        for job in [job_id] if job_id else list(self._held):
            if job in self._held:
                self._print(self._held.pop(job))
            self._job_ref.pop(job or "", None)

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
        # Recorded before printed: a line on stdout means its record is in the transcript (tests wait on it).
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
        job = notice.job_id
        if notice.kind in _FINAL and job in self._job_ref:
            self._held[job] = render(notice)  # printed after the edit that closes the job's message
        else:
            self._print(render(notice))
            if job and notice.kind not in _FINAL:
                self._job_ref[job] = ref
        return ref

    async def edit(self, origin: Origin, ref: str, notice: Notice) -> str:
        self._record(op="edit", ref=ref, kind=notice.kind.value, job=notice.job_id, progress=notice.progress)
        self._print_edit(ref, render_line(notice))
        if notice.job_id and notice.job_id not in self._job_ref:
            self._job_ref[notice.job_id] = ref  # a message sent before a restart
        elif notice.job_id in self._held and self._job_ref.get(notice.job_id) == ref:
            self._flush_held(notice.job_id)
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
                self._live = None  # the user's Enter moved the terminal to a new line
                if line.strip() in ("/quit", "/exit"):
                    return
                intent = to_intent(
                    line, user=self._user, seq=next(seq), cwd=self._cwd, max_image_bytes=self._max_image_bytes
                )
                if intent is None:
                    continue
                if isinstance(intent, PathRefusal):
                    self._print(render(self._refusal(intent, detect_locale(line))))
                    continue
                reply = await handler(intent)
                if reply is not None:
                    self._print(render(reply))
        finally:
            closed.cancel()
            self._connected = False

    def _refusal(self, refusal: PathRefusal, locale: str) -> Notice:
        params: dict[str, Any] = refusal.params
        text = self._texts(refusal.key, locale, **params) if self._texts else f"{refusal.key}: {params}"
        return Notice(NoticeKind.ERROR, text, locale=locale)

    async def stop_intake(self) -> None:
        """The console reads until close(): a line typed while jobs settle is still taken in."""

    async def close(self) -> None:
        self._closed.set()
        self._flush_held()


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
    if sniff_image(data[:64]) is None:
        raise AttachmentRejected("attachment_not_image", name=name)
    return data


__all__ = ["ConsoleAdapter", "render", "to_intent"]
