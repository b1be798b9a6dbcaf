"""The durable job store: jobs, event-key dedup, preferences, the credit ledger and the leases of
replicas, in one SQLite file (the default) or one PostgreSQL database (`store.url`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ima.models import ModelId

from ._leases import StoreLeases
from ._ledger import StoreCredits
from ._ledger import settle as _settle_credit
from ._migrations import LATEST_VERSION, schema_version
from ._prefs import merge_prefs, read_prefs
from ._rows import ACTIVE_SQL, claim_keys, load_row, undelivered_sql, write_fields
from ._schema import (
    DuplicateJob,
    InvalidTransition,
    JobNotFound,
    LeaseLost,
    ResolvedPrefs,
    SchemaTooNew,
    StoreError,
    UserPrefs,
    check_fields,
    job_from_row,
    job_to_row,
    resolve_preferences,
)
from ._sql import Backend, is_postgres_url
from ._sqlite import Database
from .model import TRANSITIONS, Job, JobState

__all__ = [
    "LATEST_VERSION",
    "DuplicateJob",
    "InvalidTransition",
    "JobNotFound",
    "JobStore",
    "LeaseLost",
    "ResolvedPrefs",
    "SchemaTooNew",
    "StoreError",
    "UserPrefs",
    "resolve_preferences",
]

EVENT_TTL_S = 8 * 3600.0
DEFAULT_LEASE_S = 30.0  # add_job's lease when an owner is given without one


class _Seen(Exception):
    """An event key was live: the claim's transaction must roll back."""


class JobStore(StoreCredits, StoreLeases):
    """Jobs, dedup keys, preferences, credits (bot/jobs/_ledger.py) and leases (bot/jobs/_leases.py).
    Every method is safe to call from concurrent tasks and from several processes sharing the database;
    every write is one transaction."""

    def __init__(self, db: Backend, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock
        self.replica: str | None = None  # add_job's default owner (set_replica)
        self.lease_seconds = DEFAULT_LEASE_S

    @classmethod
    async def open(cls, location: str | Path, *, clock: Callable[[], float] = time.time) -> JobStore:
        """Opens the store at a SQLite path (creating the file and its folder if needed) or a
        postgresql:// URL, and migrates it to the latest schema. Raises SchemaTooNew for a database
        from a newer release, StoreError when the database fails (never naming a password)."""
        if is_postgres_url(location):
            from ._postgres import PgDatabase  # asyncpg is imported only by stores that use it

            return cls(await PgDatabase.open(str(location), clock), clock)
        return cls(await Database.open(Path(location), clock), clock)

    @property
    def backend(self) -> str:
        """Which back end holds the store: "sqlite" or "postgresql"."""
        return self._db.dialect.name

    def set_replica(self, owner: str, lease_seconds: float) -> None:
        """Makes owner the default owner of jobs add_job records (drafts excepted), leased for
        lease_seconds."""
        self.replica, self.lease_seconds = owner, lease_seconds

    async def close(self) -> None:
        """Closes the database; later calls raise StoreError. Idempotent."""
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
        """Returns the database's schema version."""
        async with self._db.read() as conn:
            return await schema_version(conn)

    # ---- event keys and jobs -------------------------------------------------------------------------

    async def add_job(
        self,
        job: Job,
        *,
        event_keys: Sequence[str] = (),
        ttl: float = EVENT_TTL_S,
        owner: str | None = None,
        lease_seconds: float | None = None,
    ) -> bool:
        """Records the event keys and inserts job in one transaction; returns True. Returns False, writing
        nothing, when any key was seen within its TTL (a redelivery). The job is owner's (default: the
        replica set by set_replica, but a draft then is nobody's) for lease_seconds (default: the replica's).
        Raises DuplicateJob when job.id is stored already, ValueError for ttl <= 0, StoreError when the
        database fails."""
        now = self._clock()
        row = job_to_row(job)
        owner = owner or (self.replica if job.state is not JobState.DRAFT else None)
        until = now + (self.lease_seconds if lease_seconds is None else lease_seconds) if owner else None
        cols = ", ".join(row)
        marks = ", ".join("?" * len(row))
        try:
            async with self._db.transaction() as db:
                if not await claim_keys(db, event_keys, ttl, job.id, now):
                    raise _Seen
                inserted = await db.execute(
                    f"INSERT INTO jobs ({cols}, updated_at, owner, lease_until) VALUES ({marks}, ?, ?, ?) "
                    "ON CONFLICT (id) DO NOTHING",
                    (*row.values(), now, owner, until),
                )
                if not inserted:
                    raise DuplicateJob(job.id)  # rolls the keys back too
        except _Seen:
            return False
        return True

    async def claim_events(self, keys: Sequence[str], *, ttl: float = EVENT_TTL_S) -> bool:
        """Returns True and records keys when none was seen within its TTL, else False (nothing written).
        Raises ValueError for ttl <= 0, StoreError when the database fails."""
        try:
            async with self._db.transaction() as db:
                if not await claim_keys(db, keys, ttl, None, self._clock()):
                    raise _Seen
        except _Seen:
            return False
        return True

    async def purge_events(self) -> int:
        """Deletes expired event keys; returns how many."""
        async with self._db.transaction() as db:
            return await db.execute("DELETE FROM processed_events WHERE expires_at <= ?", (self._clock(),))

    async def get_job(self, job_id: str) -> Job | None:
        """Returns the stored job, or None."""
        rows = await self._db.fetch("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return job_from_row(rows[0]) if rows else None

    async def transition(
        self, job_id: str, state: JobState, *, owner: str | None = None, **fields: Any
    ) -> Job:
        """Moves the job from its stored state to state and writes fields, atomically; returns the new Job.

        Entering RUNNING stamps started_at and entering a finished state stamps finished_at (store clock)
        unless given or already set; entering QUEUED gives back a slot taken by try_start. The credit
        ledger changes in the same transaction: a new `credit` resizes the job's reservation; SUCCEEDED
        turns it into a charge (or records one); FAILED or CANCELLED without a task id releases it
        (nothing reached IMA). With owner, the write happens only while owner holds the job, checked
        before the state. Raises LeaseLost, InvalidTransition when TRANSITIONS forbids the move from the
        stored state, JobNotFound, TypeError for a field that cannot be set, StoreError when the database
        fails."""
        target = JobState(state)
        check_fields(fields)
        async with self._db.transaction() as db:
            job = job_from_row(await load_row(db, job_id, owner=owner))
            if target not in TRANSITIONS[job.state]:
                raise InvalidTransition(job_id, job.state, target)
            changes: dict[str, Any] = {"state": target, **fields}
            now = self._clock()
            if target is JobState.RUNNING and "started_at" not in fields and job.started_at is None:
                changes["started_at"] = now
            if target.finished and "finished_at" not in fields and job.finished_at is None:
                changes["finished_at"] = now
            if target is JobState.QUEUED:
                changes["slot"] = None
            new = job_from_row(await write_fields(db, job_id, changes, now))
            await _settle_credit(db, new, now, resized="credit" in fields)
        return new

    async def update_job(self, job_id: str, *, owner: str | None = None, **fields: Any) -> Job:
        """Writes non-state fields (notice_ref, extra — replaced whole —, …); returns the new Job. With
        owner, only while owner holds the job. Raises LeaseLost, JobNotFound, TypeError for state/id or an
        unknown field, StoreError when the database fails."""
        check_fields(fields)
        async with self._db.transaction() as db:
            row = await load_row(db, job_id, owner=owner)
            if not fields:
                return job_from_row(row)
            return job_from_row(await write_fields(db, job_id, dict(fields), self._clock()))

    async def _jobs(
        self, where: str, params: Sequence[Any] = (), order: str = "created_at, rowid"
    ) -> list[Job]:
        rows = await self._db.fetch(f"SELECT * FROM jobs WHERE {where} ORDER BY {order}", params)
        return [job_from_row(r) for r in rows]

    async def unfinished_jobs(self) -> list[Job]:
        """Returns every job not in a finished state but drafts, oldest first (what a restart resumes)."""
        return await self._jobs(ACTIVE_SQL)  # a draft waits for its Generate press, it is not resumed

    async def draft_jobs(self) -> list[Job]:
        """Returns every draft, oldest first (issue 14: storyboard shots waiting for the shot before)."""
        return await self._jobs("state = 'draft'")

    async def succeeded_since(self, since: float) -> list[Job]:
        """Returns the jobs that succeeded at or after `since`, oldest first (issue 14: storyboards whose
        joined video a restart still owes)."""
        return await self._jobs("state = 'succeeded' AND finished_at >= ?", (since,))

    async def undelivered_jobs(self) -> list[Job]:
        """Returns finished jobs whose final message no platform confirmed yet (result_ref empty), oldest
        first: the outbox, since a job's final state is stored before its message is sent. Finals given up
        on as undeliverable (extra.outbox.undeliverable) are left out."""
        return await self._jobs(undelivered_sql(self._db.dialect))

    async def recent_jobs(self, user_key: str, *, limit: int = 10) -> list[Job]:
        """Returns the user's newest jobs, newest first."""
        return await self._jobs("user_key = ?", (user_key, limit), "created_at DESC, rowid DESC LIMIT ?")

    async def job_for_message(self, platform: str, ref: str) -> Job | None:
        """Returns the newest job on platform whose pre-notice/progress or final message is ref (a ref as
        the adapter's send() returned it), or None: how a reply to the bot's message finds its job."""
        if not ref:
            return None
        where = (
            f"(notice_ref = ? OR result_ref = ?) AND {self._db.dialect.json_text('origin', 'platform')} = ?"
        )
        jobs = await self._jobs(where, (ref, ref, platform, 1), "created_at DESC, rowid DESC LIMIT ?")
        return jobs[0] if jobs else None

    async def latest_unfinished(self, user_key: str) -> Job | None:
        """Returns the user's newest unfinished job that is not a draft, or None."""
        where = f"user_key = ? AND {ACTIVE_SQL}"
        jobs = await self._jobs(where, (user_key, 1), "created_at DESC, rowid DESC LIMIT ?")
        return jobs[0] if jobs else None

    async def finished_durations(
        self, model_id: ModelId, duration: int | None, resolution: str | None, *, limit: int = 50
    ) -> list[float]:
        """Returns run times (finished_at - started_at, seconds) of SUCCEEDED jobs whose spec has exactly
        this model, duration and resolution (None matches None), newest first."""
        spec = self._db.dialect.json_text
        rows = await self._db.fetch(
            f"SELECT finished_at - started_at FROM jobs WHERE state = ? AND {spec('spec', 'model_id')} = ? "
            f"AND {spec('spec', 'duration')} IS NOT DISTINCT FROM ? "
            f"AND {spec('spec', 'resolution')} IS NOT DISTINCT FROM ? AND started_at IS NOT NULL "
            "AND finished_at >= started_at ORDER BY finished_at DESC, rowid DESC LIMIT ?",
            (
                JobState.SUCCEEDED.value,
                ModelId(model_id).value,
                None if duration is None else str(duration),
                resolution,
                limit,
            ),
        )
        return [float(r[0]) for r in rows]

    # ---- preferences --------------------------------------------------------------------------------

    async def get_prefs(self, user_key: str) -> UserPrefs:
        """Returns the user's preferences (empty UserPrefs when none are stored)."""
        async with self._db.read() as conn:
            return await read_prefs(conn, "user", user_key)

    async def set_prefs(self, user_key: str, **changes: Any) -> UserPrefs:
        """Applies changes (see UserPrefs.merged) and returns the stored result. Raises TypeError for an
        unknown field, ValueError for a bad value."""
        async with self._db.transaction() as db:
            return await merge_prefs(db, "user", user_key, changes, self._clock())

    async def get_chat_defaults(self, platform: str, chat_id: str) -> UserPrefs:
        """Returns the chat's defaults (empty when none are stored)."""
        async with self._db.read() as conn:
            return await read_prefs(conn, "chat", f"{platform}:{chat_id}")

    async def set_chat_defaults(self, platform: str, chat_id: str, **changes: Any) -> UserPrefs:
        """Like set_prefs, for a chat."""
        async with self._db.transaction() as db:
            return await merge_prefs(db, "chat", f"{platform}:{chat_id}", changes, self._clock())
