"""The durable job store: jobs, event-key dedup, preferences and the credit ledger in one SQLite file."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from ima.models import ModelId

from ._ledger import committed as _committed
from ._ledger import settle as _settle_credit
from ._migrations import LATEST_VERSION, schema_version
from ._schema import (
    DuplicateJob,
    InvalidTransition,
    JobNotFound,
    ResolvedPrefs,
    SchemaTooNew,
    StoreError,
    UserPrefs,
    check_fields,
    encode_field,
    job_from_row,
    job_to_row,
    prefs_from_row,
    prefs_to_row,
    resolve_preferences,
)
from ._sqlite import Database
from .model import FINISHED_STATES, TRANSITIONS, Job, JobState

__all__ = [
    "LATEST_VERSION",
    "DuplicateJob",
    "InvalidTransition",
    "JobNotFound",
    "JobStore",
    "ResolvedPrefs",
    "SchemaTooNew",
    "StoreError",
    "UserPrefs",
    "resolve_preferences",
]

EVENT_TTL_S = 8 * 3600.0
_FINISHED = tuple(sorted(s.value for s in FINISHED_STATES))
_NOT_FINISHED_SQL = f"state NOT IN ({', '.join('?' * len(_FINISHED))})"


class JobStore:
    """Jobs, dedup keys, preferences and credits in one SQLite file. Every method is safe to call from
    concurrent tasks, and every write is one transaction (see _sqlite.Database)."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    @classmethod
    async def open(cls, path: str | Path, *, clock: Callable[[], float] = time.time) -> JobStore:
        """Opens (creating the file and its folder if needed) and migrates to the latest schema; returns
        the store. Raises SchemaTooNew for a file from a newer release, StoreError when SQLite fails."""
        return cls(await Database.open(Path(path), clock), clock)

    async def close(self) -> None:
        """Closes the connection; later calls raise StoreError. Idempotent."""
        await self._db.close()

    async def ping(self) -> bool:
        """Returns True when the database answers a query (for /healthz); never raises."""
        try:
            rows = await self._db.fetch("SELECT 1")
        except StoreError:
            return False
        return rows[0][0] == 1

    @property
    def write_error(self) -> str:
        """Why the last write failed, "" when the last write committed (for /healthz)."""
        return self._db.write_error

    async def schema_version(self) -> int:
        """Returns the file's schema version."""
        async with self._db.read() as conn:
            return await schema_version(conn)

    # ---- event keys and jobs -------------------------------------------------------------------------

    async def _claim(
        self, db: aiosqlite.Connection, keys: Sequence[str], ttl: float, job_id: str | None
    ) -> bool:
        if ttl <= 0:
            raise ValueError(f"ttl must be positive, not {ttl!r}")
        unique = list(dict.fromkeys(keys))
        if not unique:
            return True
        now = self._clock()
        marks = ", ".join("?" * len(unique))
        seen = await db.execute_fetchall(
            f"SELECT 1 FROM processed_events WHERE key IN ({marks}) AND expires_at > ? LIMIT 1",
            (*unique, now),
        )
        if list(seen):
            return False
        # An expired key is replaced: the platform stopped redelivering long ago.
        await db.executemany(
            "INSERT OR REPLACE INTO processed_events (key, expires_at, job_id) VALUES (?, ?, ?)",
            [(k, now + ttl, job_id) for k in unique],
        )
        return True

    async def add_job(self, job: Job, *, event_keys: Sequence[str] = (), ttl: float = EVENT_TTL_S) -> bool:
        """Records the event keys and inserts job in one transaction; returns True. Returns False, writing
        nothing, when any key was seen within its TTL (a redelivery). Raises DuplicateJob when job.id is
        stored already, ValueError for ttl <= 0, StoreError when SQLite fails."""
        row = job_to_row(job)
        cols = ", ".join(row)
        marks = ", ".join("?" * len(row))
        async with self._db.transaction() as db:
            if not await self._claim(db, event_keys, ttl, job.id):
                return False
            if list(await db.execute_fetchall("SELECT 1 FROM jobs WHERE id = ?", (job.id,))):
                raise DuplicateJob(job.id)  # rolls the keys back too
            await db.execute(
                f"INSERT INTO jobs ({cols}, updated_at) VALUES ({marks}, ?)", (*row.values(), self._clock())
            )
        return True

    async def claim_events(self, keys: Sequence[str], *, ttl: float = EVENT_TTL_S) -> bool:
        """Returns True and records keys when none was seen within its TTL, else False (nothing written).
        Raises ValueError for ttl <= 0, StoreError when SQLite fails."""
        async with self._db.transaction() as db:
            return await self._claim(db, keys, ttl, None)

    async def purge_events(self) -> int:
        """Deletes expired event keys; returns how many."""
        async with self._db.transaction() as db:
            cur = await db.execute("DELETE FROM processed_events WHERE expires_at <= ?", (self._clock(),))
            return cur.rowcount

    async def get_job(self, job_id: str) -> Job | None:
        """Returns the stored job, or None."""
        rows = await self._db.fetch("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return job_from_row(rows[0]) if rows else None

    async def _write_fields(self, db: aiosqlite.Connection, job_id: str, changes: dict[str, Any]) -> None:
        changes["updated_at"] = self._clock()
        assigns = ", ".join(f"{name} = ?" for name in changes)
        values = [encode_field(name, value) for name, value in changes.items()]
        await db.execute(f"UPDATE jobs SET {assigns} WHERE id = ?", (*values, job_id))

    async def _load(self, db: aiosqlite.Connection, job_id: str) -> Job:
        rows = list(await db.execute_fetchall("SELECT * FROM jobs WHERE id = ?", (job_id,)))
        if not rows:
            raise JobNotFound(job_id)
        return job_from_row(rows[0])

    async def transition(self, job_id: str, state: JobState, **fields: Any) -> Job:
        """Moves the job from its stored state to state and writes fields, atomically; returns the new Job.

        Entering RUNNING stamps started_at and entering a finished state stamps finished_at (store clock)
        unless given or already set. The credit ledger changes in the same transaction: a new `credit`
        resizes the job's reservation; SUCCEEDED turns it into a charge (or records one); FAILED or
        CANCELLED without a task id releases it (nothing reached IMA). Raises InvalidTransition when TRANSITIONS forbids the move from the
        stored state, JobNotFound, TypeError for a field that cannot be set, StoreError when SQLite fails.
        """
        target = JobState(state)
        check_fields(fields)
        async with self._db.transaction() as db:
            job = await self._load(db, job_id)
            if target not in TRANSITIONS[job.state]:
                raise InvalidTransition(job_id, job.state, target)
            changes: dict[str, Any] = {"state": target, **fields}
            now = self._clock()
            if target is JobState.RUNNING and "started_at" not in fields and job.started_at is None:
                changes["started_at"] = now
            if target.finished and "finished_at" not in fields and job.finished_at is None:
                changes["finished_at"] = now
            await self._write_fields(db, job_id, changes)
            new = await self._load(db, job_id)
            await _settle_credit(db, new, now, resized="credit" in fields)
        return new

    async def update_job(self, job_id: str, **fields: Any) -> Job:
        """Writes non-state fields (notice_ref, extra — replaced whole —, …); returns the new Job.
        Raises JobNotFound, TypeError for state/id or an unknown field, StoreError when SQLite fails."""
        check_fields(fields)
        async with self._db.transaction() as db:
            await self._load(db, job_id)
            if fields:
                await self._write_fields(db, job_id, dict(fields))
            return await self._load(db, job_id)

    async def unfinished_jobs(self) -> list[Job]:
        """Returns every job not in a finished state but drafts, oldest first (what a restart resumes)."""
        rows = await self._db.fetch(
            f"SELECT * FROM jobs WHERE {_NOT_FINISHED_SQL} AND state != 'draft' ORDER BY created_at, rowid",
            _FINISHED,  # a draft waits for its Generate press, it is not resumed
        )
        return [job_from_row(r) for r in rows]

    async def draft_jobs(self) -> list[Job]:
        """Returns every draft, oldest first (issue 14: storyboard shots waiting for the shot before)."""
        rows = await self._db.fetch("SELECT * FROM jobs WHERE state = 'draft' ORDER BY created_at, rowid", ())
        return [job_from_row(r) for r in rows]

    async def undelivered_jobs(self) -> list[Job]:
        """Returns finished jobs whose final message no platform confirmed yet (result_ref empty), oldest
        first: the outbox, since a job's final state is stored before its message is sent. Finals given up
        on as undeliverable (extra.outbox.undeliverable) are left out."""
        rows = await self._db.fetch(
            f"SELECT * FROM jobs WHERE NOT ({_NOT_FINISHED_SQL}) AND result_ref = '' "
            "AND json_extract(extra, '$.outbox.undeliverable') IS NULL ORDER BY created_at, rowid",
            _FINISHED,
        )
        return [job_from_row(r) for r in rows]

    async def recent_jobs(self, user_key: str, *, limit: int = 10) -> list[Job]:
        """Returns the user's newest jobs, newest first."""
        rows = await self._db.fetch(
            "SELECT * FROM jobs WHERE user_key = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (user_key, limit),
        )
        return [job_from_row(r) for r in rows]

    async def job_for_message(self, platform: str, ref: str) -> Job | None:
        """Returns the newest job on platform whose pre-notice/progress or final message is ref (a ref as
        the adapter's send() returned it), or None: how a reply to the bot's message finds its job."""
        if not ref:
            return None
        rows = await self._db.fetch(
            "SELECT * FROM jobs WHERE (notice_ref = ? OR result_ref = ?) "
            "AND json_extract(origin, '$.platform') = ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (ref, ref, platform),
        )
        return job_from_row(rows[0]) if rows else None

    async def latest_unfinished(self, user_key: str) -> Job | None:
        """Returns the user's newest unfinished job that is not a draft, or None."""
        rows = await self._db.fetch(
            f"SELECT * FROM jobs WHERE user_key = ? AND {_NOT_FINISHED_SQL} AND state != 'draft' "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (user_key, *_FINISHED),
        )
        return job_from_row(rows[0]) if rows else None

    async def finished_durations(
        self, model_id: ModelId, duration: int | None, resolution: str | None, *, limit: int = 50
    ) -> list[float]:
        """Returns run times (finished_at - started_at, seconds) of SUCCEEDED jobs whose spec has exactly
        this model, duration and resolution (None matches None), newest first."""
        rows = await self._db.fetch(
            "SELECT finished_at - started_at FROM jobs WHERE state = ? "
            "AND json_extract(spec, '$.model_id') = ? AND json_extract(spec, '$.duration') IS ? "
            "AND json_extract(spec, '$.resolution') IS ? AND started_at IS NOT NULL "
            "AND finished_at >= started_at ORDER BY finished_at DESC, rowid DESC LIMIT ?",
            (JobState.SUCCEEDED.value, ModelId(model_id).value, duration, resolution, limit),
        )
        return [float(r[0]) for r in rows]

    # ---- preferences --------------------------------------------------------------------------------

    async def _get_prefs(self, scope: str, owner: str) -> UserPrefs:
        rows = await self._db.fetch("SELECT * FROM preferences WHERE scope = ? AND owner = ?", (scope, owner))
        return prefs_from_row(rows[0] if rows else None)

    async def _set_prefs(self, scope: str, owner: str, changes: dict[str, Any]) -> UserPrefs:
        async with self._db.transaction() as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT * FROM preferences WHERE scope = ? AND owner = ?", (scope, owner)
                )
            )
            new = prefs_from_row(rows[0] if rows else None).merged(**changes)
            row = prefs_to_row(new)
            await db.execute(
                f"INSERT OR REPLACE INTO preferences (scope, owner, updated_at, {', '.join(row)}) "
                f"VALUES (?, ?, ?, {', '.join('?' * len(row))})",
                (scope, owner, self._clock(), *row.values()),
            )
        return new

    async def get_prefs(self, user_key: str) -> UserPrefs:
        """Returns the user's preferences (empty UserPrefs when none are stored)."""
        return await self._get_prefs("user", user_key)

    async def set_prefs(self, user_key: str, **changes: Any) -> UserPrefs:
        """Applies changes (see UserPrefs.merged) and returns the stored result. Raises TypeError for an
        unknown field, ValueError for a bad value."""
        return await self._set_prefs("user", user_key, changes)

    async def get_chat_defaults(self, platform: str, chat_id: str) -> UserPrefs:
        """Returns the chat's defaults (empty when none are stored)."""
        return await self._get_prefs("chat", f"{platform}:{chat_id}")

    async def set_chat_defaults(self, platform: str, chat_id: str, **changes: Any) -> UserPrefs:
        """Like set_prefs, for a chat."""
        return await self._set_prefs("chat", f"{platform}:{chat_id}", changes)

    # ---- credits ------------------------------------------------------------------------------------

    async def record_credit(self, job_id: str, user_key: str, credits: int) -> None:
        """Charges a job once: a second call for the same job changes nothing (a reservation stays one).
        Raises ValueError for a negative or non-int amount."""
        if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
            raise ValueError(f"credits must be a non-negative int, not {credits!r}")
        async with self._db.transaction() as db:
            await db.execute(
                "INSERT OR IGNORE INTO credit_ledger (job_id, user_key, credits, recorded_at) VALUES (?, ?, ?, ?)",
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
            return await _committed(db, user_key, since)

    async def reserve_credit(
        self, job_id: str, user_key: str, credits: int, *, limit: int, since: float
    ) -> tuple[bool, int]:
        """Reserves credits for a job against the user's budget in one transaction (so a burst of jobs
        cannot pass it); returns (reserved, committed before this job). With limit 0 there is no budget
        and the reservation is always made. A job that holds a row already is not reserved twice.
        Raises ValueError for a negative or non-int amount, StoreError when SQLite fails."""
        _check_credits(credits)
        async with self._db.transaction() as db:
            return await self._reserve(db, job_id, user_key, credits, limit=limit, since=since)

    async def reserve_and_update(
        self, job_id: str, user_key: str, credits: int, *, limit: int, since: float, **fields: Any
    ) -> tuple[bool, int, Job | None]:
        """reserve_credit and, only when the reservation is made, update_job(job_id, **fields), in one
        transaction: an admission costs one commit. Returns (reserved, committed before this job, the job
        as stored now or None when not reserved). Raises as those two do."""
        _check_credits(credits)
        check_fields(fields)
        async with self._db.transaction() as db:
            await self._load(db, job_id)  # JobNotFound before anything is reserved
            reserved, committed = await self._reserve(db, job_id, user_key, credits, limit=limit, since=since)
            if not reserved:
                return False, committed, None
            if fields:
                await self._write_fields(db, job_id, dict(fields))
            return True, committed, await self._load(db, job_id)

    async def _reserve(
        self, db: aiosqlite.Connection, job_id: str, user_key: str, credits: int, *, limit: int, since: float
    ) -> tuple[bool, int]:
        if list(await db.execute_fetchall("SELECT 1 FROM credit_ledger WHERE job_id = ?", (job_id,))):
            return True, await _committed(db, user_key, since, excluding=job_id)
        committed = await _committed(db, user_key, since)
        if limit and committed + credits > limit:
            return False, committed
        await db.execute(
            "INSERT INTO credit_ledger (job_id, user_key, credits, recorded_at, status) "
            "VALUES (?, ?, ?, ?, 'reserved')",
            (job_id, user_key, credits, self._clock()),
        )
        return True, committed

    async def release_credit(self, job_id: str) -> bool:
        """Drops the job's reservation (IMA said the task was not billed); a charge stays. Returns
        whether a reservation was dropped."""
        async with self._db.transaction() as db:
            cur = await db.execute(
                "DELETE FROM credit_ledger WHERE job_id = ? AND status = 'reserved'", (job_id,)
            )
            return cur.rowcount > 0


def _check_credits(credits: Any) -> None:
    if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
        raise ValueError(f"credits must be a non-negative int, not {credits!r}")
