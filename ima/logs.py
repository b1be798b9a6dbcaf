"""The `ima` command's log file: daily name, size rotation, 7-day retention, secrets masked in every record."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOGGER_NAME = "ima"
LOG_FORMAT = "%(asctime)s | %(levelname)-5s | %(funcName)-20s | %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_BYTES = 10 * 1024 * 1024
BACKUP_COUNT = 7
RETENTION_DAYS = 7
SHOWN_CHARS = 10

# A key-looking token: `ima_` then at least 16 key characters (file names such as `ima_create_20260318.log`
# `ima_prefs.json` stay readable), then whatever key characters follow.
_KEY_RE = re.compile(r"\bima_[A-Za-z0-9_\-]{16,}")
_BEARER_RE = re.compile(r"(\bBearer\s+)([^\s\"',;]+)", re.IGNORECASE)
# Query-string and JSON forms the upload service uses (`appUid=<key>&cmimToken=<key>`).
_PARAM_RE = re.compile(r"((?:appUid|cmimToken|api_key|apiKey)[\"']?\s*[=:]\s*[\"']?)([^\s\"'&,;}]+)")


def mask_secret(secret: str) -> str:
    """The vendor's masked form: the first 10 characters plus `...` (fewer for short secrets)."""
    shown = min(SHOWN_CHARS, len(secret) // 2)
    return secret[:shown] + "..."


def mask_known(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of the given secrets replaced by its masked form."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, mask_secret(secret))
    return text


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with known secrets, `ima_…` key-looking tokens and Bearer/query tokens masked."""
    text = mask_known(text, secrets)
    text = _KEY_RE.sub(lambda m: mask_secret(m.group(0)), text)
    text = _BEARER_RE.sub(lambda m: m.group(1) + _mask_once(m.group(2)), text)
    return _PARAM_RE.sub(lambda m: m.group(1) + _mask_once(m.group(2)), text)


def _mask_once(token: str) -> str:
    # Leave an already-masked token alone so masking is idempotent.
    return token if token.endswith("...") else mask_secret(token)


class SecretMaskFilter(logging.Filter):
    """Rewrites each record's message (and formatted traceback) with every secret masked; never drops one."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info, self.secrets)
        return True


def log_file_name(now: datetime) -> str:
    """`ima_create_YYYYMMDD.log` for the day of `now`."""
    return f"ima_create_{now:%Y%m%d}.log"


def remove_old_logs(log_dir: Path, *, now: float, days: int = RETENTION_DAYS) -> list[Path]:
    """Deletes `ima_create_*.log*` files last modified more than `days` before `now`; returns them.

    Errors (unreadable directory, a file vanishing meanwhile) are swallowed: retention must never stop a run.
    """
    cutoff = now - days * 24 * 3600
    removed = []
    try:
        candidates = list(log_dir.glob("ima_create_*.log*"))
    except OSError:
        return removed
    for path in candidates:
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


class _CreateLogHandler(RotatingFileHandler):
    """The rotating file handler `setup_logging` adds; remembers the logger level to restore."""

    restore_level: int | None = None


def setup_logging(
    log_dir: str | Path,
    *,
    now: datetime | None = None,
    secrets: Iterable[str] = (),
    name: str = LOGGER_NAME,
) -> logging.Logger:
    """The `name` logger writing INFO and above to `<log_dir>/ima_create_YYYYMMDD.log`, secrets masked.

    Creates the directory and applies the 7-day retention first. Touches no other logger (the root logger
    keeps its handlers); undo with `close_logging`. Raises OSError when the log file cannot be opened.
    """
    moment = now or datetime.now()
    directory = Path(log_dir).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    remove_old_logs(directory, now=moment.timestamp())
    handler = _CreateLogHandler(
        directory / log_file_name(moment), maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8"
    )
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, DATE_FORMAT))
    handler.addFilter(SecretMaskFilter(secrets))
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        handler.restore_level = logger.level
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger


class _QuietHandler(logging.NullHandler):
    """Stands in for the file when there is none, so Python's last-resort handler prints nothing."""

    restore_level: int | None = None


def quiet_logging(name: str = LOGGER_NAME) -> logging.Logger:
    """The `name` logger with a handler that discards everything; undo with `close_logging`."""
    logger = logging.getLogger(name)
    logger.addHandler(_QuietHandler())
    return logger


def close_logging(logger: logging.Logger) -> None:
    """Removes and closes the handlers `setup_logging`/`quiet_logging` added to `logger`, restoring its level."""
    for handler in list(logger.handlers):
        if isinstance(handler, _CreateLogHandler | _QuietHandler):
            logger.removeHandler(handler)
            handler.close()
            if handler.restore_level is not None:
                logger.setLevel(handler.restore_level)
