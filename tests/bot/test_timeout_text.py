"""A task that never ends says so plainly: the timeout text, not the "status unknown" one, when IMA
answered every status check. Real pipeline (emulator over HTTP, SQLite, console, virtual clock)."""

from __future__ import annotations

from pathlib import Path

from bot.jobs.model import JobState
from bot.jobs.texts import Texts

from .harness import pipeline

TEXTS = Texts.load()


async def test_a_task_that_never_ends_gets_the_timeout_text_not_status_unknown(tmp_path: Path) -> None:
    async with pipeline(tmp_path) as p:
        p.emulator.faults.add("media_never")
        job = await p.submit(p.job())
        done = await p.wait_finished(job.id, within=60)
        out = "".join(p.console._out.text)
    assert done.state is JobState.TIMED_OUT and done.error_key != "status_unknown"
    assert "status_error" not in done.extra  # IMA answered every check
    assert TEXTS("timeout.body", "en") in out
    assert TEXTS("delivery.status_unknown", "en", code="?") not in out
