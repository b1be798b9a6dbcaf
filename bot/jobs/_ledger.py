"""The credit ledger's rules: a row per job, reserved at admission, charged on success, released when
nothing reached IMA. One row per job (job_id is the key), so a job never counts twice. A reservation
checks the budget and inserts under a lock on the user, so replicas sharing a database cannot pass it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._rows import load_row, write_fields
from ._schema import check_fields, job_from_row
from ._sql import Backend, Conn
from .model import Job, JobState


async def committed(db: Conn, user_key: str, since: float, *, excluding: str = "") -> int:
    """Credits counting against the user's budget since `since`: charges and reservations."""
    row = await db.fetchone(
        "SELECT COALESCE(SUM(credits), 0) FROM credit_ledger WHERE user_key = ? AND recorded_at >= ? "
        "AND job_id != ?",
        (user_key, since, excluding),
    )
    return int(row[0]) if row is not None else 0


async def reserve(
    db: Conn, job_id: str, user_key: str, credits: int, now: float, *, limit: int, since: float
) -> tuple[bool, int]:
    """Reserves credits for job_id unless that passes limit (0: no limit); returns (reserved, committed
    before this job). A job that holds a row already is not reserved twice."""
    await db.lock(f"credit:{user_key}")  # check and insert as one step across replicas
    if await db.fetchone("SELECT 1 FROM credit_ledger WHERE job_id = ?", (job_id,)) is not None:
        return True, await committed(db, user_key, since, excluding=job_id)
    before = await committed(db, user_key, since)
    if limit and before + credits > limit:
        return False, before
    await db.execute(
        "INSERT INTO credit_ledger (job_id, user_key, credits, recorded_at, status) "
        "VALUES (?, ?, ?, ?, 'reserved')",
        (job_id, user_key, credits, now),
    )
    return True, before


async def settle(db: Conn, job: Job, now: float, *, resized: bool) -> None:
    """The ledger side of a transition (see JobStore.transition), in its transaction."""
    if job.state is JobState.SUCCEEDED and job.credit is not None:
        await db.execute(
            "INSERT INTO credit_ledger (job_id, user_key, credits, recorded_at, status) "
            "VALUES (?, ?, ?, ?, 'charged') ON CONFLICT (job_id) DO UPDATE SET "
            "credits = excluded.credits, recorded_at = excluded.recorded_at, status = 'charged' "
            "WHERE credit_ledger.status != 'charged'",
            (job.id, job.user_key, job.credit, now),
        )
    elif job.state in (JobState.FAILED, JobState.CANCELLED) and not job.task_id:
        await db.execute("DELETE FROM credit_ledger WHERE job_id = ? AND status = 'reserved'", (job.id,))
    elif resized and job.credit is not None:
        await db.execute(
            "UPDATE credit_ledger SET credits = ? WHERE job_id = ? AND status = 'reserved'",
            (job.credit, job.id),
        )


class StoreCredits:
    """JobStore's credit methods (a mixin: the store supplies _db and _clock)."""

    _db: Backend
    _clock: Callable[[], float]

    async def record_credit(self, job_id: str, user_key: str, credits: int) -> None:
        """Charges a job once: a second call for the same job changes nothing (a reservation stays one).
        Raises ValueError for a negative or non-int amount."""
        _check_credits(credits)
        async with self._db.transaction() as db:
            await db.execute(
                "INSERT INTO credit_ledger (job_id, user_key, credits, recorded_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (job_id) DO NOTHING",
                (job_id, user_key, credits, self._clock()),
            )

    async def credits_spent(self, user_key: str, *, since: float) -> int:
        """Returns the credits charged (successful jobs) to the user at or after since (epoch seconds)."""
        rows = await self._db.fetch(
            "SELECT COALESCE(SUM(credits), 0) FROM credit_ledger WHERE user_key = ? AND recorded_at >= ? "
            "AND status = 'charged'",
            (user_key, since),
        )
        return int(rows[0][0])

    async def credits_committed(self, user_key: str, *, since: float) -> int:
        """Returns what counts against the user's budget since `since`: charges plus reservations of
        jobs still running or whose IMA task may have been billed."""
        async with self._db.read() as db:
            return await committed(db, user_key, since)

    async def reserve_credit(
        self, job_id: str, user_key: str, credits: int, *, limit: int, since: float
    ) -> tuple[bool, int]:
        """Reserves credits for a job against the user's budget in one transaction (so a burst of jobs,
        on any replica, cannot pass it); returns (reserved, committed before this job). With limit 0 there
        is no budget and the reservation is always made. A job that holds a row already is not reserved
        twice. Raises ValueError for a negative or non-int amount, StoreError when the database fails."""
        _check_credits(credits)
        async with self._db.transaction() as db:
            return await reserve(db, job_id, user_key, credits, self._clock(), limit=limit, since=since)

    async def reserve_and_update(
        self, job_id: str, user_key: str, credits: int, *, limit: int, since: float, **fields: Any
    ) -> tuple[bool, int, Job | None]:
        """reserve_credit and, only when the reservation is made, update_job(job_id, **fields), in one
        transaction: an admission costs one commit. Returns (reserved, committed before this job, the job
        as stored now or None when not reserved). Raises as those two do."""
        _check_credits(credits)
        check_fields(fields)
        async with self._db.transaction() as db:
            stored = await load_row(db, job_id)  # JobNotFound before anything is reserved
            now = self._clock()
            reserved, before = await reserve(db, job_id, user_key, credits, now, limit=limit, since=since)
            if not reserved:
                return False, before, None
            row = await write_fields(db, job_id, dict(fields), now) if fields else stored
            return True, before, job_from_row(row)

    async def release_credit(self, job_id: str) -> bool:
        """Drops the job's reservation (IMA said the task was not billed); a charge stays. Returns
        whether a reservation was dropped."""
        async with self._db.transaction() as db:
            dropped = await db.execute(
                "DELETE FROM credit_ledger WHERE job_id = ? AND status = 'reserved'", (job_id,)
            )
            return dropped > 0


def _check_credits(credits: Any) -> None:
    if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
        raise ValueError(f"credits must be a non-negative int, not {credits!r}")
