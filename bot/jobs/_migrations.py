"""The job store's versioned schema: migration steps applied in order, each in its own transaction, on
SQLite and on PostgreSQL alike (see ddl_for for the one type that differs)."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ._schema import SchemaTooNew
from ._sql import Conn


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    # Run after `statements` on PostgreSQL only: what SQLite has built in (its rowid).
    postgresql: tuple[str, ...] = ()


class MigrationConn(Conn, Protocol):
    def atomic(self) -> AbstractAsyncContextManager[Conn]:
        """A transaction on a connection that is outside one (a migration step)."""


# Released steps are never edited: a file that already applied one would silently diverge.
# Change the schema by appending a step.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "jobs and processed event keys",
        (
            """CREATE TABLE jobs (
                id           TEXT PRIMARY KEY,
                user_key     TEXT NOT NULL,
                state        TEXT NOT NULL,
                origin       TEXT NOT NULL,              -- JSON: Origin, including extra
                spec         TEXT NOT NULL,              -- JSON: JobSpec.to_dict()
                locale       TEXT NOT NULL,
                created_at   REAL NOT NULL,
                started_at   REAL,
                finished_at  REAL,
                updated_at   REAL NOT NULL,
                task_id      TEXT NOT NULL DEFAULT '',
                notice_ref   TEXT NOT NULL DEFAULT '',
                result_ref   TEXT NOT NULL DEFAULT '',
                input_urls   TEXT NOT NULL DEFAULT '[]',  -- JSON list
                credit       INTEGER,
                result_url   TEXT NOT NULL DEFAULT '',
                cover_url    TEXT NOT NULL DEFAULT '',
                error_key    TEXT NOT NULL DEFAULT '',
                error_code   TEXT NOT NULL DEFAULT '',
                error_detail TEXT NOT NULL DEFAULT '',
                retry_of     TEXT NOT NULL DEFAULT '',
                trace_id     TEXT NOT NULL DEFAULT '',
                extra        TEXT NOT NULL DEFAULT '{}'   -- JSON object
            )""",
            "CREATE INDEX jobs_by_state ON jobs (state, created_at)",
            "CREATE INDEX jobs_by_user ON jobs (user_key, created_at)",
            "CREATE INDEX jobs_by_task ON jobs (task_id)",
            """CREATE TABLE processed_events (
                key        TEXT PRIMARY KEY,
                expires_at REAL NOT NULL,
                job_id     TEXT                          -- the job the event created, if any
            )""",
            "CREATE INDEX processed_events_by_expiry ON processed_events (expires_at)",
        ),
        # SQLite orders ties by its built-in rowid (insertion order); PostgreSQL gets a column of that name.
        postgresql=("ALTER TABLE jobs ADD COLUMN rowid BIGSERIAL",),
    ),
    Migration(
        2,
        "user preferences and chat defaults",
        (
            """CREATE TABLE preferences (
                scope        TEXT NOT NULL CHECK (scope IN ('user', 'chat')),
                owner        TEXT NOT NULL,              -- user_key, or "platform:chat_id"
                models       TEXT NOT NULL DEFAULT '{}', -- JSON: {task_type: model_id}
                aspect_ratio TEXT,
                duration     INTEGER,
                resolution   TEXT,
                locale       TEXT,
                updated_at   REAL NOT NULL,
                PRIMARY KEY (scope, owner)
            )""",
        ),
    ),
    Migration(
        3,
        "credit ledger",
        (
            """CREATE TABLE credit_ledger (
                job_id      TEXT PRIMARY KEY,            -- a job is charged once
                user_key    TEXT NOT NULL,
                credits     INTEGER NOT NULL CHECK (credits >= 0),
                recorded_at REAL NOT NULL
            )""",
            "CREATE INDEX credit_ledger_by_user ON credit_ledger (user_key, recorded_at)",
        ),
    ),
    Migration(
        4,
        "credit reservations: a ledger row is reserved at admission, charged on success",
        # Rows written before this step were charges (only successful jobs were recorded).
        ("ALTER TABLE credit_ledger ADD COLUMN status TEXT NOT NULL DEFAULT 'charged'",),
    ),
    Migration(
        5,
        "leases: the replica working a job (owner) until lease_until; a slot taken under the shared caps",
        (
            "ALTER TABLE jobs ADD COLUMN owner TEXT",  # NULL: nobody works it (new, released, a draft)
            "ALTER TABLE jobs ADD COLUMN lease_until REAL",
            "ALTER TABLE jobs ADD COLUMN slot REAL",  # when a queued job took a concurrency slot
            "CREATE INDEX jobs_by_owner ON jobs (owner)",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version

_BOOTSTRAP = """CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  REAL NOT NULL
)"""


def ddl_for(dialect_name: str, sql: str) -> str:
    """The statement for a back end: SQLite's REAL is 8 bytes, PostgreSQL's 4 (a timestamp would lose
    its seconds), so PostgreSQL gets DOUBLE PRECISION."""
    if dialect_name == "postgresql":
        return re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    return sql


async def schema_version(db: Conn) -> int:
    """Returns the highest applied version (0 for a new database)."""
    row = await db.fetchone("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    return int(row[0]) if row is not None else 0


async def migrate(db: MigrationConn, clock: Callable[[], float], *, target: int | None = None) -> int:
    """Applies every step above the database's version up to target (default: all); returns the new version.

    db must be outside a transaction. Each step runs in a transaction of its own (SQLite: BEGIN
    IMMEDIATE), and the version is re-read inside it, so two processes opening one file at once apply each
    step once (PostgreSQL: the caller also holds an advisory lock, since its DDL does not lock like
    SQLite's). Raises SchemaTooNew when the database is newer than this code, the back end's error when a
    step fails (that step is rolled back; earlier steps stay applied).
    """
    target = LATEST_VERSION if target is None else target
    dialect = db.dialect.name
    await db.execute(ddl_for(dialect, _BOOTSTRAP))
    current = await schema_version(db)
    if current > LATEST_VERSION:
        raise SchemaTooNew(current, LATEST_VERSION)
    for step in MIGRATIONS:
        if step.version > target:
            break
        if step.version <= current:
            continue
        async with db.atomic() as tx:
            current = await schema_version(tx)
            if step.version > current:
                extra = step.postgresql if dialect == "postgresql" else ()
                for sql in (*step.statements, *extra):
                    await tx.execute(ddl_for(dialect, sql))
                await tx.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (step.version, step.description, clock()),
                )
                current = step.version
    return current
