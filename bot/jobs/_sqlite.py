"""The store's SQLite discipline: one connection, WAL + FULL sync, a lock, BEGIN IMMEDIATE transactions."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from ._migrations import migrate
from ._schema import StoreError


class Database:
    """One aiosqlite connection shared by concurrent tasks. An asyncio.Lock serialises every use, so a
    read never sees another task's transaction half-way; each write is BEGIN IMMEDIATE, which takes the
    file's write lock up front and so is also atomic against another process using the file."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn: aiosqlite.Connection | None = conn
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, clock: Callable[[], float]) -> Database:
        """Opens (creating the file and its folder if needed) and migrates to the latest schema.
        Raises SchemaTooNew for a file from a newer release, StoreError when SQLite fails."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the job store at {path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA busy_timeout = 5000")  # another process may hold the write lock
            await conn.execute("PRAGMA journal_mode = WAL")
            # WAL alone survives a killed process even at NORMAL (a commit sits in the OS cache). FULL
            # also fsyncs every commit, so an OS crash or power cut cannot lose one either: a lost CREATING
            # state or dedup key could mean a second paid IMA task. A job writes a handful of times, so
            # the cost is nil.
            await conn.execute("PRAGMA synchronous = FULL")
            await migrate(conn, clock)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot prepare the job store at {path}: {exc}") from exc
            raise
        return cls(conn)

    async def close(self) -> None:
        """Closes the connection once in-flight calls finish; idempotent."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()

    def _live(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError("the job store is closed")
        return self._conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """Yields the connection for reads; sqlite3 errors become StoreError."""
        async with self._lock:
            try:
                yield self._live()
            except sqlite3.Error as exc:
                raise StoreError(f"job store read failed: {exc}") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Yields the connection inside BEGIN IMMEDIATE; commits when the block ends, rolls back when it
        raises (then re-raises; sqlite3 errors become StoreError)."""
        async with self._lock:
            conn = self._live()
            try:
                if conn.in_transaction:  # a rollback cut short by a second cancellation
                    await conn.rollback()
                await conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    await conn.rollback()
                    raise
                await conn.commit()
            except sqlite3.Error as exc:
                raise StoreError(f"job store write failed: {exc}") from exc

    async def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Returns every row of one query."""
        async with self.read() as conn:
            return list(await conn.execute_fetchall(sql, tuple(params)))
