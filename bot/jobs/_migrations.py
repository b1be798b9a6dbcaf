"""The job store's versioned schema: migration steps applied in order, each in its own transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiosqlite

from ._schema import SchemaTooNew


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


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
)

LATEST_VERSION = MIGRATIONS[-1].version

_BOOTSTRAP = """CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  REAL NOT NULL
)"""


async def schema_version(db: aiosqlite.Connection) -> int:
    """Returns the highest applied version (0 for a new file)."""
    rows = list(await db.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
    return int(rows[0][0])


async def migrate(db: aiosqlite.Connection, clock: Callable[[], float], *, target: int | None = None) -> int:
    """Applies every step above the file's version up to target (default: all); returns the new version.

    db must be in autocommit mode (isolation_level=None). Each step runs in BEGIN IMMEDIATE, and the
    version is re-read inside it, so two processes opening one file at once apply each step once.
    Raises SchemaTooNew when the file is newer than this code, sqlite3.Error when a step fails (that
    step is rolled back; earlier steps stay applied).
    """
    target = LATEST_VERSION if target is None else target
    await db.execute(_BOOTSTRAP)
    current = await schema_version(db)
    if current > LATEST_VERSION:
        raise SchemaTooNew(current, LATEST_VERSION)
    for step in MIGRATIONS:
        if step.version > target:
            break
        if step.version <= current:
            continue
        await db.execute("BEGIN IMMEDIATE")
        try:
            current = await schema_version(db)
            if step.version > current:
                for sql in step.statements:
                    await db.execute(sql)
                await db.execute(
                    "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                    (step.version, step.description, clock()),
                )
                current = step.version
        except BaseException:
            await db.rollback()
            raise
        await db.commit()
    return current
