"""Leases and shared caps in the database, for several replicas over one store: who works a job (owner)
until when (lease_until), and the concurrency slots every replica counts from the same rows.

A lease covers a job from admission (or adoption) until its final is delivered. Claims are single
UPDATE statements whose candidate rows are picked `FOR UPDATE SKIP LOCKED` on PostgreSQL (a row another
replica is claiming is skipped, never taken twice) and under SQLite's file write lock otherwise."""

from __future__ import annotations

from collections.abc import Callable

from ._rows import ACTIVE_SQL, HOLDING_SQL, NOT_FINISHED_SQL, load_row, undelivered_sql, work_sql
from ._schema import job_from_row
from ._sql import Backend, Conn, Row
from .model import Job, JobState

SLOTS_LOCK = "imabot:slots"  # the advisory lock every try_start takes (PostgreSQL)
_LAPSED = "(lease_until IS NULL OR lease_until < ?)"


def _jobs(rows: list[Row]) -> list[Job]:
    jobs = [job_from_row(r) for r in rows]
    jobs.sort(key=lambda j: j.created_at)  # RETURNING has no order; oldest first
    return jobs


async def _claim_active(
    conn: Conn, owner: str, until: float, now: float, *, limit: int, take_live: bool
) -> list[Job]:
    """Takes up to limit active jobs (not drafts, not finished) that nobody holds or whose lease lapsed,
    never one this owner holds already; take_live takes other owners' live leases too."""
    lapsed = "" if take_live else f" AND {_LAPSED}"
    params: tuple = (owner, until, owner) + (() if take_live else (now,)) + (limit,)
    rows = await conn.fetchall(
        f"UPDATE jobs SET owner = ?, lease_until = ? WHERE id IN (SELECT id FROM jobs WHERE {ACTIVE_SQL} "
        f"AND (owner IS NULL OR (owner != ?{lapsed})) ORDER BY created_at, rowid LIMIT ?"
        f"{conn.dialect.skip_locked}) RETURNING *",
        params,
    )
    return _jobs(rows)


async def _claim_one(conn: Conn, job_id: str, owner: str, until: float, now: float) -> Job | None:
    """Takes one unfinished job (drafts too) when nobody holds it, its lease lapsed or it is owner's."""
    row = await conn.fetchone(
        f"UPDATE jobs SET owner = ?, lease_until = ? WHERE id = ? AND {NOT_FINISHED_SQL} "
        f"AND (owner IS NULL OR owner = ? OR {_LAPSED}) RETURNING *",
        (owner, until, job_id, owner, now),
    )
    return job_from_row(row) if row is not None else None


async def _claim_finals(conn: Conn, owner: str, until: float, now: float, *, limit: int) -> list[Job]:
    """Takes up to limit finals waiting in the outbox that nobody holds, whose lease lapsed, or that
    are owner's already (its own retries)."""
    rows = await conn.fetchall(
        f"UPDATE jobs SET owner = ?, lease_until = ? WHERE id IN (SELECT id FROM jobs WHERE "
        f"{undelivered_sql(conn.dialect)} AND (owner IS NULL OR owner = ? OR {_LAPSED}) "
        f"ORDER BY created_at, rowid LIMIT ?{conn.dialect.skip_locked}) RETURNING *",
        (owner, until, owner, now, limit),
    )
    return _jobs(rows)


async def _renew(conn: Conn, owner: str, until: float) -> set[str]:
    """Extends owner's leases on its work; returns the ids it still holds."""
    rows = await conn.fetchall(
        f"UPDATE jobs SET lease_until = ? WHERE owner = ? AND {work_sql(conn.dialect)} RETURNING id",
        (until, owner),
    )
    return {r[0] for r in rows}


async def _release(conn: Conn, owner: str) -> int:
    """Gives up owner's leases on its work (a graceful stop); returns how many."""
    return await conn.execute(
        f"UPDATE jobs SET owner = NULL, lease_until = NULL WHERE owner = ? AND {work_sql(conn.dialect)}",
        (owner,),
    )


async def _try_start(
    conn: Conn, job_id: str, owner: str, now: float, *, global_limit: int, per_user_limit: int
) -> bool:
    """Gives the queued job a slot when fewer than global_limit jobs (all replicas) and fewer than
    per_user_limit of its user's hold one; True also when it holds one already. Serialised across
    replicas by one advisory lock, so two cannot both take the last slot."""
    await conn.lock(SLOTS_LOCK)
    row = await load_row(conn, job_id, owner=owner)
    state = JobState(row["state"])
    if state in (JobState.PREPARING, JobState.CREATING, JobState.RUNNING) or (
        state is JobState.QUEUED and row["slot"] is not None
    ):
        return True
    if state is not JobState.QUEUED:
        return False
    counts = await conn.fetchone(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN user_key = ? THEN 1 ELSE 0 END), 0) FROM jobs "
        f"WHERE {HOLDING_SQL}",
        (row["user_key"],),
    )
    assert counts is not None
    if counts[0] >= global_limit or counts[1] >= per_user_limit:
        return False
    await conn.execute("UPDATE jobs SET slot = ? WHERE id = ?", (now, job_id))
    return True


class StoreLeases:
    """JobStore's lease and shared-cap methods (a mixin: the store supplies _db and _clock)."""

    _db: Backend
    _clock: Callable[[], float]

    async def claim_jobs(
        self, owner: str, lease_seconds: float, *, limit: int = 100, take_live: bool = False
    ) -> list[Job]:
        """Atomically takes up to limit unfinished jobs (not drafts) nobody holds or whose lease expired
        (never owner's own: a lapse of its renewals must not run a job twice), leases them to owner and
        returns them, oldest first. take_live also takes live leases of other owners: only for a store
        no other process can use (SQLite's one-owner lock), where they are leftovers of a dead one."""
        now = self._clock()
        async with self._db.transaction() as db:
            return await _claim_active(db, owner, now + lease_seconds, now, limit=limit, take_live=take_live)

    async def claim_job(self, job_id: str, owner: str, lease_seconds: float) -> Job | None:
        """Takes one unfinished job (a draft too) when nobody holds it, its lease expired or owner holds
        it; returns it as stored (lease renewed), else None (another replica holds it, finished, unknown)."""
        now = self._clock()
        async with self._db.transaction() as db:
            return await _claim_one(db, job_id, owner, now + lease_seconds, now)

    async def claim_undelivered(self, owner: str, lease_seconds: float, *, limit: int = 100) -> list[Job]:
        """Like claim_jobs, for finished jobs whose final is undelivered (the outbox), owner's own
        included; so each final is retried by one replica at a time."""
        now = self._clock()
        async with self._db.transaction() as db:
            return await _claim_finals(db, owner, now + lease_seconds, now, limit=limit)

    async def renew_leases(self, owner: str, lease_seconds: float) -> set[str]:
        """Extends every lease owner holds on unfinished jobs and undelivered finals; returns their ids
        (a job missing from it was taken over: stop working it)."""
        async with self._db.transaction() as db:
            return await _renew(db, owner, self._clock() + lease_seconds)

    async def release_jobs(self, owner: str) -> int:
        """Gives up owner's leases on unfinished jobs and undelivered finals (a graceful stop: another
        replica adopts them at once); returns how many."""
        async with self._db.transaction() as db:
            return await _release(db, owner)

    async def owns(self, job_id: str, owner: str) -> bool:
        """True while the job's owner is owner, whether or not the lease has expired (nobody took it)."""
        rows = await self._db.fetch("SELECT 1 FROM jobs WHERE id = ? AND owner = ?", (job_id, owner))
        return bool(rows)

    async def try_start(self, job_id: str, owner: str, *, global_limit: int, per_user_limit: int) -> bool:
        """Gives owner's queued job a concurrency slot when fewer than global_limit jobs in all replicas
        and fewer than per_user_limit of its user's hold one (preparing, creating, running, or queued
        with a slot); returns whether it holds one (True again when it does already; False for a job that
        is not queued). Raises LeaseLost when owner does not hold the job, JobNotFound."""
        async with self._db.transaction() as db:
            return await _try_start(
                db, job_id, owner, self._clock(), global_limit=global_limit, per_user_limit=per_user_limit
            )

    async def release_slot(self, job_id: str) -> None:
        """Gives back a queued job's slot without moving it (the slot was taken but will not be used)."""
        async with self._db.transaction() as db:
            await db.execute("UPDATE jobs SET slot = NULL WHERE id = ? AND state = 'queued'", (job_id,))
