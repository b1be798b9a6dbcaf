"""The create log: file name, format, rotation settings, 7-day retention, secret masking, clean close."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path

import pytest

from ima.logs import (
    SecretMaskFilter,
    close_logging,
    mask_secret,
    mask_text,
    quiet_logging,
    remove_old_logs,
    setup_logging,
)

KEY = "ima_sk_live_0123456789abcdefABCDEF"
NOW = datetime(2026, 3, 18, 12, 0, 0)
DAY = 24 * 3600


@pytest.fixture
def logger_name(request: pytest.FixtureRequest) -> str:
    return f"ima_test_logs.{request.node.name}"


def _read_log(directory: Path) -> str:
    return (directory / "ima_create_20260318.log").read_text(encoding="utf-8")


def test_setup_writes_the_daily_file_in_the_vendor_format(tmp_path: Path, logger_name: str) -> None:
    log = setup_logging(tmp_path / "logs", now=NOW, name=logger_name)
    try:
        log.info("hello %s", "world")
        log.debug("not written: below INFO")
        handler = next(h for h in log.handlers if isinstance(h, RotatingFileHandler))
        assert handler.maxBytes == 10 * 1024 * 1024
        assert handler.backupCount == 7
        assert handler.encoding == "utf-8"
    finally:
        close_logging(log)
    lines = _read_log(tmp_path / "logs").splitlines()
    assert len(lines) == 1
    stamp, level, func, message = lines[0].split(" | ")
    datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S")
    assert level == "INFO "
    assert func.strip() == "test_setup_writes_the_daily_file_in_the_vendor_format"
    assert message == "hello world"


def test_close_removes_and_closes_the_handler_and_restores_the_level(
    tmp_path: Path, logger_name: str
) -> None:
    root_before = list(logging.getLogger().handlers)
    log = setup_logging(tmp_path, now=NOW, name=logger_name)
    handler = log.handlers[0]
    assert logging.getLogger().handlers == root_before  # nothing global
    close_logging(log)
    assert log.handlers == []
    assert log.level == logging.NOTSET
    assert handler.stream is None  # closed


def test_retention_deletes_only_old_create_logs(tmp_path: Path, logger_name: str) -> None:
    old_time = NOW.timestamp() - 8 * DAY
    recent_time = NOW.timestamp() - 6 * DAY
    names = {
        "ima_create_20260301.log": old_time,
        "ima_create_20260301.log.3": old_time,
        "ima_create_20260313.log": recent_time,
        "other_20260301.log": old_time,
        "ima_create_notes.txt": old_time,
    }
    for name, mtime in names.items():
        path = tmp_path / name
        path.write_text("x", encoding="utf-8")
        os.utime(path, (mtime, mtime))
    log = setup_logging(tmp_path, now=NOW, name=logger_name)
    close_logging(log)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ima_create_20260313.log",
        "ima_create_20260318.log",
        "ima_create_notes.txt",
        "other_20260301.log",
    ]


def test_retention_swallows_errors(tmp_path: Path) -> None:
    assert remove_old_logs(tmp_path / "missing", now=NOW.timestamp()) == []
    blocker = tmp_path / "ima_create_old.log"
    blocker.mkdir()  # a directory with a matching name is skipped, not fatal
    os.utime(blocker, (0, 0))
    assert remove_old_logs(tmp_path, now=NOW.timestamp()) == []
    assert blocker.exists()


def test_every_record_is_masked_in_the_file(tmp_path: Path, logger_name: str) -> None:
    log = setup_logging(tmp_path, now=NOW, name=logger_name, secrets=["s3cr3t-app-secret"])
    child = logging.getLogger(f"{logger_name}.client")  # records from child loggers go through it too
    try:
        log.info("key=%s", KEY)
        child.warning("headers {'Authorization': 'Bearer %s'}", KEY)
        child.info("upload ?appUid=%s&cmimToken=%s&appId=webAgent", KEY, KEY)
        log.info("feishu secret s3cr3t-app-secret in text")
        try:
            raise RuntimeError(f"boom with {KEY}")
        except RuntimeError:
            log.exception("failed")
        log.info("file ima_create_20260318.log and ima_prefs.json stay readable")
    finally:
        close_logging(log)
    text = _read_log(tmp_path)
    assert KEY not in text
    assert "s3cr3t-app-secret" not in text
    assert "key=ima_sk_liv..." in text
    assert "Bearer ima_sk_liv..." in text
    assert "appUid=ima_sk_liv...&cmimToken=ima_sk_liv...&appId=webAgent" in text
    assert "boom with ima_sk_liv..." in text  # the traceback too
    assert "ima_create_20260318.log and ima_prefs.json stay readable" in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"api_key={KEY}", "api_key=ima_sk_liv..."),
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer abc.def..."),
        ("bearer tokentokentoken", "bearer tokento..."),
        ('{"apiKey": "ima_shortkey"}', '{"apiKey": "ima_sh..."}'),
        (
            "no secrets here: ima_skills, ima_video_create.py",
            "no secrets here: ima_skills, ima_video_create.py",
        ),
    ],
)
def test_mask_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected
    assert mask_text(expected) == expected  # idempotent


def test_mask_secret_never_shows_most_of_a_short_secret() -> None:
    assert mask_secret(KEY) == KEY[:10] + "..."
    assert mask_secret("abcdef") == "abc..."
    assert mask_secret("") == "..."


def test_filter_keeps_records_and_drops_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "k=%s n=%d", (KEY, 3), None)
    assert SecretMaskFilter().filter(record) is True
    assert record.getMessage() == "k=ima_sk_liv... n=3"


def test_quiet_logging_installs_a_discarding_handler_and_removes_it(logger_name: str) -> None:
    # With a handler in the chain, Python's last-resort handler (which prints WARNING+ to stderr) stays unused.
    log = quiet_logging(logger_name)
    try:
        assert [type(h).__mro__[1] for h in log.handlers] == [logging.NullHandler]
        log.warning("discarded")
    finally:
        close_logging(log)
    assert log.handlers == []
