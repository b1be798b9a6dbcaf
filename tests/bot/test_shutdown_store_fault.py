"""A shutdown while the store refuses writes: the bot stops after one failed write, not after the grace.

Real pipeline (emulator over HTTP, SQLite store, console adapter, virtual clock). The fault is real:
another connection holds the store's write lock, so each write of the bot fails after SQLite's busy
timeout. At shutdown a job's task stops retrying store writes (the store keeps the job where it stood,
and the next start picks it up); only while running does it wait for the store to heal.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bot.jobs.model import JobState
from bot.jobs.runner import RunnerSettings
from bot.jobs.store import JobStore

from .harness import pipeline

GRACE = 60.0  # what a create on the wire may take at shutdown; the test must end far sooner


async def in_state(store: JobStore, job_id: str, state: JobState) -> bool:
    stored = await store.get_job(job_id)
    return stored is not None and stored.state is state


async def test_a_shutdown_during_a_store_fault_does_not_wait_out_the_grace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = replace(RunnerSettings(), shutdown_grace=GRACE)
    async with pipeline(tmp_path, settings=settings) as p:
        p.emulator.faults.add("create_delay", seconds=0.5)
        job = await p.submit(p.job("created while the store fails"))

        await p.wait_for(lambda: in_state(p.store, job.id, JobState.CREATING))
        holder = sqlite3.connect(tmp_path / "jobs.sqlite3", isolation_level=None, timeout=0)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # the create answers into a store that refuses the write
            started = time.monotonic()
            with caplog.at_level(logging.ERROR, logger="imabot.runner"):
                await asyncio.wait_for(p.runner.close(), GRACE)
            took = time.monotonic() - started
        finally:
            holder.rollback()
            holder.close()
        stored = await p.store.get_job(job.id)
    # One write attempt (SQLite's 5 s busy timeout), then the job is left for the next start.
    assert took < GRACE / 2
    assert stored is not None and stored.state is JobState.CREATING  # the next start reports it uncertain
    assert len(p.emulator.tasks) == 1
    # The operator's log says which job's task stopped on the store, and why.
    (crash,) = [r for r in caplog.records if f"run:{job.id}" in r.getMessage()]
    assert crash.name == "imabot.runner" and crash.exc_info and "locked" in str(crash.exc_info[1])


async def test_a_create_that_never_answers_holds_the_stop_for_the_grace_only(tmp_path: Path) -> None:
    # IMA answers this create long after the grace: the stop goes ahead without it (bot/jobs/inflight.py).
    settings = replace(RunnerSettings(), shutdown_grace=0.5)
    async with pipeline(tmp_path, settings=settings) as p:
        p.emulator.faults.add("create_delay", seconds=10.0)
        job = await p.submit(p.job("created too slowly for the stop"))

        await p.wait_for(lambda: in_state(p.store, job.id, JobState.CREATING))
        await asyncio.wait_for(p.runner.close(), 8.0)  # a hang guard: waiting for the answer fails it
        stored = await p.store.get_job(job.id)
        # Closed before IMA answered: the job stays CREATING (the next start reports it uncertain).
        assert stored is not None and stored.state is JobState.CREATING and not p.emulator.tasks
