"""The one place that reads Feishu answers: success, refusal, rate limit, gone."""

from __future__ import annotations

import pytest

from bot.adapters.feishu.api import error_of, is_rate_limited
from bot.core import MessageGone, PlatformError


def test_success_answers_are_not_errors() -> None:
    assert error_of("send", 200, b'{"code":0,"msg":"success","data":{}}', {}) is None
    assert error_of("resource", 200, b"\x89PNG\r\n\x1a\n", {"content-type": "image/png"}) is None


@pytest.mark.parametrize("code", [230011, 230031, 230110])
def test_cards_that_cannot_change_are_message_gone(code: int) -> None:
    err = error_of("patch", 400, b'{"code":%d,"msg":"x"}' % code, {})
    assert isinstance(err, MessageGone) and err.code == code


def test_rate_limits_carry_the_reset_header() -> None:
    err = error_of("patch", 429, b'{"code":99991400,"msg":"limit"}', {"X-Ogw-Ratelimit-Reset": "3"})
    assert err is not None and is_rate_limited(err) and err.retry_after == 3.0
    frequency = error_of("patch", 400, b'{"code":230020,"msg":"limit"}', {})
    assert frequency is not None and is_rate_limited(frequency) and frequency.retry_after is None


def test_other_refusals_are_platform_errors_with_code_and_status() -> None:
    err = error_of("send", 400, b'{"code":230002,"msg":"Bot is not in the chat"}', {})
    assert type(err) is PlatformError and (err.status, err.code) == (400, 230002)
    assert "Bot is not in the chat" in str(err)
    gateway = error_of("send", 502, b"<html>bad gateway</html>", {})
    assert gateway is not None and (gateway.status, gateway.code) == (502, None)
    business = error_of("send", 200, b'{"code":99991672,"msg":"scope missing"}', {})
    assert business is not None and business.code == 99991672
