"""Job-row SQL shared by the store's modules: the state sets as SQL, loading a row (locked for the rest of
the transaction), the owner guard, writing fields, and event-key claims."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._schema import JobNotFound, LeaseLost, encode_field
from ._sql import Conn, Dialect, Row
from .model import FINISHED_STATES, JobState


def _in(states: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{s}'" for s in sorted(states)) + ")"  # our own enum values: safe inline


FINISHED_SQL = f"state IN {_in([s.value for s in FINISHED_STATES])}"
NOT_FINISHED_SQL = f"state NOT IN {_in([s.value for s in FINISHED_STATES])}"
# Unfinished and not a draft: what a restart resumes and a replica may adopt.
ACTIVE_SQL = f"state NOT IN {_in([s.value for s in (*FINISHED_STATES, JobState.DRAFT)])}"
# Jobs holding a concurrency slot (all replicas): taken by try_start while queued, kept until finished.
HOLDING_SQL = (
    f"(state IN {_in([JobState.PREPARING, JobState.CREATING, JobState.RUNNING])} "
    "OR (state = 'queued' AND slot IS NOT NULL))"
)


def undelivered_sql(dialect: Dialect) -> str:
    """Finished, its final not confirmed by a platform and not given up on: the outbox."""
    return (
        f"{FINISHED_SQL} AND result_ref = '' "
        f"AND {dialect.json_text('extra', 'outbox', 'undeliverable')} IS NULL"
    )


def work_sql(dialect: Dialect) -> str:
    """Everything but a finished job whose final is delivered or given up on: what a lease covers."""
    return f"({NOT_FINISHED_SQL} OR ({undelivered_sql(dialect)}))"


async def load_row(conn: Conn, job_id: str, *, owner: str | None = None) -> Row:
    """The job's row, locked until the transaction ends (PostgreSQL; SQLite's write lock covers it).
    Raises JobNotFound, and LeaseLost when owner is given and the row's owner is anyone else."""
    row = await conn.fetchone(f"SELECT * FROM jobs WHERE id = ?{conn.dialect.for_update}", (job_id,))
    if row is None:
        raise JobNotFound(job_id)
    if owner is not None and row["owner"] != owner:
        raise LeaseLost(job_id, owner, row["owner"])
    return row


async def write_fields(conn: Conn, job_id: str, changes: dict[str, Any], now: float) -> Row:
    """Writes Job fields (encoded) and store columns (as given), stamping updated_at; returns the row as
    written (RETURNING: no second round trip to read it back). Raises JobNotFound."""
    changes["updated_at"] = now
    assigns = ", ".join(f"{name} = ?" for name in changes)
    values = [encode_field(name, value) for name, value in changes.items()]
    row = await conn.fetchone(f"UPDATE jobs SET {assigns} WHERE id = ? RETURNING *", (*values, job_id))
    if row is None:
        raise JobNotFound(job_id)
    return row


async def claim_keys(conn: Conn, keys: Sequence[str], ttl: float, job_id: str | None, now: float) -> bool:
    """Records every key for ttl seconds and returns True, or returns False when any key is live (seen
    within its TTL); the caller must then roll back, since the others may be written. One statement,
    atomic across replicas: a key inserted by a concurrent transaction is waited for, then seen."""
    if ttl <= 0:
        raise ValueError(f"ttl must be positive, not {ttl!r}")
    unique = sorted(set(keys))  # one order everywhere: replicas claiming overlapping keys never deadlock
    if not unique:
        return True
    values = ", ".join("(?, ?, ?)" for _ in unique)
    params = [v for key in unique for v in (key, now + ttl, job_id)]
    # An expired key is taken over: the platform stopped redelivering long ago.
    written = await conn.execute(
        f"INSERT INTO processed_events (key, expires_at, job_id) VALUES {values} "
        "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, job_id = excluded.job_id "
        "WHERE processed_events.expires_at <= ?",
        (*params, now),
    )
    return written == len(unique)
