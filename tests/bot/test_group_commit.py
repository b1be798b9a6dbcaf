"""Group commit in the store: writers that queue up share one commit (one fsync), and still fail or
succeed exactly as if each had committed alone. Real SQLite files; a second connection checks what is
durable."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from bot.jobs._sqlite import Database
from bot.jobs.store import StoreError


async def open_db(tmp_path: Path) -> Database:
    db = await Database.open(tmp_path / "jobs.sqlite3", time.time, group_limit=32)
    async with db.transaction() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS child (k TEXT REFERENCES t(k) DEFERRABLE INITIALLY DEFERRED)"
        )
    return db


def durable(tmp_path: Path, table: str = "t") -> set[str]:
    """The keys another connection (another process) sees: only committed rows."""
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as other:
        return {r[0] for r in other.execute(f"SELECT k FROM {table}")}


async def counting(db: Database) -> list[str]:
    commits: list[str] = []
    await db._live().set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    return commits


async def insert(db: Database, key: str) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO t (k) VALUES (?)", (key,))


async def test_writers_that_queue_up_share_one_commit_and_all_are_durable(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    try:
        commits = await counting(db)
        await asyncio.gather(*(insert(db, f"k{i}") for i in range(20)))
        assert durable(tmp_path) == {f"k{i}" for i in range(20)}
        assert 1 <= len(commits) <= 2  # the first writer's own commit, then one for the 19 that queued
        await insert(db, "alone")
        assert "alone" in durable(tmp_path) and len(commits) <= 3
    finally:
        await db.close()


async def test_by_default_every_write_commits_on_its_own(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "jobs.sqlite3", time.time)
    try:
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        commits = await counting(db)
        await asyncio.gather(*(insert(db, f"k{i}") for i in range(5)))
        assert len(commits) == 5 and durable(tmp_path) == {f"k{i}" for i in range(5)}
    finally:
        await db.close()


async def test_a_member_that_raises_undoes_only_its_own_changes(tmp_path: Path) -> None:
    db = await open_db(tmp_path)

    async def broken() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t (k) VALUES ('broken')")
            raise ValueError("the block failed")

    async def duplicate() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t (k) VALUES ('a')")  # a is there already: IntegrityError

    try:
        results = await asyncio.gather(
            insert(db, "a"), broken(), insert(db, "b"), duplicate(), insert(db, "c"), return_exceptions=True
        )
        assert results[0] is None and results[2] is None and results[4] is None
        assert isinstance(results[1], ValueError) and isinstance(results[3], StoreError)
        assert durable(tmp_path) == {"a", "b", "c"}
    finally:
        await db.close()


async def test_a_failed_commit_fails_every_member_and_stores_none_of_them(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    await db._live().execute("PRAGMA foreign_keys = ON")

    async def orphan() -> None:  # checked only at COMMIT (deferred): the whole group's commit fails
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO child (k) VALUES ('nobody')")

    try:
        results = await asyncio.gather(
            insert(db, "x"), insert(db, "y"), orphan(), insert(db, "z"), return_exceptions=True
        )
        # All four queued into one group: its commit failed, so every member failed and none is stored.
        assert all(isinstance(r, StoreError) for r in results)
        assert durable(tmp_path) == set() and durable(tmp_path, "child") == set()
        assert db.write_error
        await insert(db, "after")  # the store works again at once
        assert durable(tmp_path) == {"after"} and db.write_error == ""
    finally:
        await db.close()


async def test_a_writer_that_gives_up_in_the_queue_does_not_strand_the_group(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    gate, inside = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO t (k) VALUES ('first')")
            inside.set()
            await gate.wait()

    try:
        holder = asyncio.create_task(first())
        await asyncio.wait_for(inside.wait(), 5)
        queued = asyncio.create_task(insert(db, "queued"))
        await asyncio.sleep(0)
        gate.set()  # first ends its block while a writer waits: the group stays open for it …
        await asyncio.sleep(0)
        queued.cancel()  # … and that writer gives up before joining
        async with asyncio.timeout(5):
            await holder
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert durable(tmp_path) == {"first"}
    finally:
        await db.close()


async def test_reads_see_only_committed_changes(tmp_path: Path) -> None:
    db = await open_db(tmp_path)
    try:
        writes = [asyncio.create_task(insert(db, f"r{i}")) for i in range(5)]
        rows = await db.fetch("SELECT k FROM t")
        seen = {r[0] for r in rows}
        assert seen <= durable(tmp_path)  # whatever the read saw was already durable
        await asyncio.gather(*writes)
    finally:
        await db.close()


# ---- one transaction per admission ----------------------------------------------------------------------


async def test_admission_reserves_and_records_in_one_commit_or_writes_nothing(tmp_path: Path) -> None:
    from bot.core import Origin
    from bot.jobs.model import Job, JobSpec
    from bot.jobs.store import JobNotFound, JobStore
    from ima.models import ModelId, TaskType

    store = await JobStore.open(tmp_path / "jobs.sqlite3", clock=lambda: 100.0)
    try:
        origin = Origin("console", "c", "u1", "m1")
        spec = JobSpec(task_type=TaskType.TEXT_TO_VIDEO, model_id=ModelId.FAST, prompt="p")
        for jid in ("a", "b"):
            job = Job(id=jid, user_key="console:u1", origin=origin, spec=spec, locale="en", created_at=1.0)
            assert await store.add_job(job)
        commits = await counting(store._db)
        ok, before, stored = await store.reserve_and_update(
            "a", "console:u1", 30, limit=50, since=0, credit=30, extra={"first_poll": 30.0}
        )
        assert (ok, before) == (True, 0) and stored is not None and stored.credit == 30
        assert stored.extra == {"first_poll": 30.0} and len(commits) == 1
        refused, spent, none = await store.reserve_and_update(
            "b", "console:u1", 30, limit=50, since=0, credit=30, extra={"x": 1}
        )
        assert (refused, spent, none) == (False, 30, None)
        b = await store.get_job("b")
        assert b is not None and b.credit is None and b.extra == {}  # nothing written for a refused job
        assert await store.credits_committed("console:u1", since=0) == 30
        with pytest.raises(JobNotFound):
            await store.reserve_and_update("nope", "console:u1", 1, limit=0, since=0)
        assert await store.credits_committed("console:u1", since=0) == 30  # no reservation for no job
    finally:
        await store.close()
