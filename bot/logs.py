"""Logging set-up: secrets redacted from every record, a job trace id on every line, optional JSON lines,
daily files kept 7 days."""

from __future__ import annotations

import asyncio
import json
import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO

# Token shapes that must never reach a log even when the config does not list them.
_SHAPES = re.compile(
    r"ima_[A-Za-z0-9_\-]{16,}"  # IMA API keys (short words such as ima_pro_fast are left alone)
    r"|Bearer\s+[A-Za-z0-9._~+/\-]{6,}=*"  # Authorization headers
    r"|Bot\s+[A-Za-z0-9._\-]{20,}"  # Discord Authorization headers
    r"|[MNO][A-Za-z0-9_\-]{23,27}\.[A-Za-z0-9_\-]{6}\.[A-Za-z0-9_\-]{27,}"  # Discord bot tokens
    r"|\b[tu]-[A-Za-z0-9_\-]{20,}"  # Feishu tenant/user access tokens
)
# Credentials in query strings and key=value text (the upload-token URL carries the IMA key twice).
_PARAMS = re.compile(
    r"(?i)\b(appUid|cmimToken|access_key|ticket|token|app_secret|secret|api_key|password)=([^&\s\"',;]+)"
)
_JOB = re.compile(r"\bjob=([0-9a-f]{6,})")
# The runner names each job's task "<stage>:<job id>", so every line a job's task logs carries its id.
_JOB_TASK = re.compile(r"^(?:run|admit):([0-9a-f]{6,})$")
MASK = "***"
BACKUP_DAYS = 6  # plus today's file: 7 days of logs
_OURS = "_imabot_handler"


class Redactor(logging.Filter):
    """Replaces every configured secret and every key-shaped token in a record with `***`, and gives the
    record a `trace_id` (the job it is about, "-" when none)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Returns text with secrets and secret-shaped tokens masked."""
        for s in self._secrets:
            text = text.replace(s, MASK)
        text = _PARAMS.sub(lambda m: f"{m.group(1)}={MASK}", text)
        return _SHAPES.sub(lambda m: m.group(0)[:4] + MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_imabot_redacted", False):  # a second handler of ours sees the same record
            return True
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
        elif record.exc_text:
            message += "\n" + record.exc_text
        if record.stack_info:
            message += "\n" + record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        record.msg = self.redact(message)
        record.args = ()
        if not getattr(record, "trace_id", None):
            record.trace_id = trace_id_for(record.msg)
        record._imabot_redacted = True
        return True


def trace_id_for(message: str) -> str:
    """Returns the job id a log line is about: `job=<id>` in the message, else the job whose task is
    logging, else "-"."""
    m = _JOB.search(message)
    if m:
        return m.group(1)
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop in this thread (aiosqlite's worker, the console reader)
        task = None
    if task is not None:
        m = _JOB_TASK.match(task.get_name())
        if m:
            return m.group(1)
    return "-"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, trace_id, message (exceptions folded into message)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
                "level": record.levelname,
                "logger": record.name,
                "trace_id": getattr(record, "trace_id", "-"),
                "message": record.getMessage(),
            },
            ensure_ascii=False,
        )


TEXT_FORMAT = "%(asctime)s %(levelname)-5s %(name)s [%(trace_id)s] %(message)s"


def setup_logging(
    *,
    level: str = "INFO",
    json_lines: bool = False,
    file: str = "",
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> list[logging.Handler]:
    """Installs handlers on the root logger (replacing any an earlier call installed) and returns them.

    With file, logs also go to that path, rotated at midnight, keeping today's file plus BACKUP_DAYS.
    """
    redactor = Redactor(secrets)
    formatter: logging.Formatter = JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    if file:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.TimedRotatingFileHandler(
                file, when="midnight", backupCount=BACKUP_DAYS, encoding="utf-8"
            )
        )
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    root.setLevel(level.upper())
    for h in handlers:
        h.addFilter(redactor)
        h.setFormatter(formatter)
        setattr(h, _OURS, True)
        root.addHandler(h)
    # Third-party DEBUG output is noise at best (aiosqlite logs every statement with its parameters,
    # user prompts included): they log from INFO up whatever the level.
    for noisy in ("discord", "aiohttp.access", "websockets", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    for chatty in ("httpx", "httpcore"):  # lark-oapi's HTTP client: a line per request at INFO
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    # lark-oapi prints to stdout through a handler of its own (unredacted, and stdout is the console
    # chat): route it through ours instead, and keep it at WARNING (its INFO lines show ws URLs).
    lark = logging.getLogger("Lark")
    for h in list(lark.handlers):
        lark.removeHandler(h)
    lark.setLevel(max(logging.WARNING, root.level))
    lark.propagate = True
    return handlers
