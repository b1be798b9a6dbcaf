"""Logging set-up: secrets redacted from every record, optional JSON lines, daily files kept 7 days."""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from pathlib import Path

# Token shapes that must never reach a log even when the config does not list them.
_SHAPES = re.compile(r"(ima_[A-Za-z0-9_\-]{6,}|Bearer\s+[A-Za-z0-9._\-]{6,}|Bot\s+[A-Za-z0-9._\-]{20,}|t-[A-Za-z0-9]{20,})")
_JOB = re.compile(r"\bjob=([0-9a-f]{6,})")


class Redactor(logging.Filter):
    """Replaces every configured secret and every key-shaped token in a record with `***`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "***")
        return _SHAPES.sub(lambda m: m.group(0)[:4] + "***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self.redact(message)
        record.args = ()
        if not hasattr(record, "trace_id"):
            m = _JOB.search(record.msg)
            record.trace_id = m.group(1) if m else "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "trace_id": getattr(record, "trace_id", "-"),
            "message": record.getMessage(),
        }, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)-5s %(name)s [%(trace_id)s] %(message)s"


def setup_logging(*, level: str = "INFO", json_lines: bool = False, file: str = "",
                  secrets: Iterable[str] = (), stream=None) -> list[logging.Handler]:
    """Installs handlers on the root logger and returns them (so the caller can remove them)."""
    redactor = Redactor(secrets)
    formatter: logging.Formatter = JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    if file:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.TimedRotatingFileHandler(file, when="midnight", backupCount=7,
                                                                  encoding="utf-8"))
    root = logging.getLogger()
    root.setLevel(level.upper())
    for h in handlers:
        h.addFilter(redactor)
        h.setFormatter(formatter)
        root.addHandler(h)
    for noisy in ("discord", "aiohttp.access", "Lark"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))
    return handlers
