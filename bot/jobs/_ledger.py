"""The credit ledger's rules: a row per job, reserved at admission, charged on success, released when
nothing reached IMA. One row per job (job_id is the key), so a job never counts twice."""

from __future__ import annotations

import aiosqlite

from .model import Job, JobState


async def committed(db: aiosqlite.Connection, user_key: str, since: float, *, excluding: str = "") -> int:
    """Credits counting against the user's budget since `since`: charges and reservations."""
    rows = list(
        await db.execute_fetchall(
            "SELECT COALESCE(SUM(credits), 0) FROM credit_ledger WHERE user_key = ? AND recorded_at >= ? "
            "AND job_id != ?",
            (user_key, since, excluding),
        )
    )
    return int(rows[0][0])


async def settle(db: aiosqlite.Connection, job: Job, now: float, *, resized: bool) -> None:
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
