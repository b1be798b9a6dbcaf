"""The store's SQLite discipline: one connection, WAL + FULL sync, a lock, BEGIN IMMEDIATE transactions."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from ._migrations import migrate
from ._schema import StoreError
from ._sql import SQLITE, Dialect

# How many writers one commit may carry (see Database.transaction). 1, the default, commits every write
# on its own: measured on a loaded 2-core VM (bench/admission.py), a joining writer's two extra statements
# (SAVEPOINT, RELEASE: two thread hand-offs to aiosqlite) cost more than the ~3 ms fsync they share, and
# throughput fell (69 -> 31 jobs/s at 4, 21 at 32). Where fsync is slow and hand-offs cheap (spinning or
# network disks, idle cores), a limit of 8-32 turns a burst's fsyncs into a few.
DEFAULT_GROUP_LIMIT = 1


class SqliteConn:
    """The store's connection protocol (bot/jobs/_sql.Conn) over one aiosqlite connection."""

    dialect: Dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.raw = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = await self.raw.execute(sql, tuple(params))
        return cursor.rowcount

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(await self.raw.execute_fetchall(sql, tuple(params)))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = await self.raw.execute_fetchall(sql, tuple(params))
        return next(iter(rows), None)

    async def lock(self, key: str) -> None:
        """Nothing to do: every write transaction is BEGIN IMMEDIATE, which holds the file's write lock."""

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[SqliteConn]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK when the block raises), for a connection in autocommit
        mode outside any transaction (migrations)."""
        await self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            await self.raw.rollback()
            raise
        await self.raw.commit()


class Database:
    """Two aiosqlite connections shared by concurrent tasks: one writes, one reads. An asyncio.Lock
    serialises the writes; each is BEGIN IMMEDIATE, which takes the file's write lock up front and so is
    also atomic against another process using the file. Reads go to the second connection (WAL lets it
    read while a write commits), so a read never waits behind an fsync and only ever sees committed
    changes; a lock of its own keeps a multi-statement read from interleaving with another."""

    dialect: Dialect = SQLITE

    def __init__(
        self,
        conn: aiosqlite.Connection,
        reader: aiosqlite.Connection | None = None,
        *,
        group_limit: int = DEFAULT_GROUP_LIMIT,
    ) -> None:
        self._conn: aiosqlite.Connection | None = conn
        self.group_limit = max(1, group_limit)  # writers per commit at most (1: no group commit)
        self._reader = reader  # None: reads share the writer's connection (and its lock)
        self._lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()
        self._group: asyncio.Future[None] | None = None  # the open group commit (see transaction)
        self._writers = 0  # writers waiting for the lock: they join the open group
        self._members = 0  # writers in the open group: at group_limit it commits, so none waits long
        self._background: set[asyncio.Task[None]] = set()
        # Why the last write failed ("" once a write commits again): /healthz reports it.
        self.write_error = ""

    @classmethod
    async def open(
        cls, path: Path, clock: Callable[[], float], *, group_limit: int = DEFAULT_GROUP_LIMIT
    ) -> Database:
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
            await migrate(SqliteConn(conn), clock)
            reader = await aiosqlite.connect(path, isolation_level=None)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot prepare the job store at {path}: {exc}") from exc
            raise
        try:
            reader.row_factory = sqlite3.Row
            await reader.execute("PRAGMA busy_timeout = 5000")
            await reader.execute("PRAGMA query_only = ON")  # this connection never writes
        except BaseException as exc:
            await reader.close()
            await conn.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot prepare the job store at {path}: {exc}") from exc
            raise
        return cls(conn, reader, group_limit=group_limit)

    async def close(self) -> None:
        """Closes the connection once in-flight calls finish; idempotent."""
        async with self._lock:
            if self._group is not None and self._conn is not None:  # members wait for its commit
                with contextlib.suppress(sqlite3.Error):
                    await self._commit_group()
            conn, self._conn = self._conn, None
            if conn is not None:
                await conn.close()
        async with self._read_lock:
            reader, self._reader = self._reader, None
            if reader is not None:
                await reader.close()

    def _live(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreError("the job store is closed")
        return self._conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteConn]:
        """Yields a connection for reads; sqlite3 errors become StoreError. It sees committed changes
        only (the reader connection; without one, an open group of writes is committed first)."""
        if self._reader is not None:
            async with self._read_lock:
                self._live()  # closed is closed, for reads too
                try:
                    yield SqliteConn(self._reader)
                except sqlite3.Error as exc:
                    raise StoreError(f"job store read failed: {exc}") from exc
            return
        async with self._lock:
            try:
                if self._group is not None:
                    await self._commit_group()
                yield SqliteConn(self._live())
            except sqlite3.Error as exc:
                raise StoreError(f"job store read failed: {exc}") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteConn]:
        """Yields the connection inside BEGIN IMMEDIATE; the block's changes are committed when it ends
        and rolled back when it raises (then re-raised; sqlite3 errors become StoreError). Returns only
        once the changes are durable.

        Group commit (group_limit > 1): writers that queued up while another one held the lock join its
        transaction (at most group_limit writers), each
        in a SAVEPOINT of its own (a block that raises undoes only its own changes); the last of them
        commits, and every member returns after that one commit: one fsync for a burst, not one each.
        A failed commit fails every member with StoreError (none of their changes is stored)."""
        self._writers += 1
        waiting = True
        try:
            async with self._lock:
                self._writers -= 1
                waiting = False
                conn = self._live()
                first = self._group is None
                try:
                    if first:
                        await _begin(conn)
                        self._group = asyncio.get_running_loop().create_future()
                    else:
                        await conn.execute("SAVEPOINT member")
                except sqlite3.Error as exc:
                    await self._fail_group(exc)
                    raise StoreError(f"job store write failed: {exc}") from exc
                group = self._group
                assert group is not None
                try:
                    yield SqliteConn(conn)
                except BaseException as exc:
                    await self._undo(first)
                    if isinstance(exc, sqlite3.Error):
                        self.write_error = f"{type(exc).__name__}: {exc}"
                        raise StoreError(f"job store write failed: {exc}") from exc
                    raise
                try:
                    if not first:
                        await conn.execute("RELEASE member")
                    self._members += 1
                    if self._writers == 0 or self._members >= self.group_limit:  # nobody to wait for, or full
                        await self._commit_group()
                except sqlite3.Error as exc:
                    await self._fail_group(exc)
                    raise StoreError(f"job store write failed: {exc}") from exc
        finally:
            if waiting:
                self._writers -= 1
                if self._writers == 0 and self._group is not None:
                    self._spawn_commit()  # the group was left open for this writer, who gave up
        await asyncio.shield(group)  # the group's commit; raises StoreError when it failed

    async def _undo(self, first: bool) -> None:
        """Rolls back the block that raised: the whole transaction when it was alone in it, else its
        savepoint (then commits the others' changes if nobody else waits to join)."""
        conn = self._live()
        try:
            if first:
                self._group, self._members = None, 0
                await conn.rollback()
                return
            await conn.execute("ROLLBACK TO member")
            await conn.execute("RELEASE member")
            self._members += 1
            if (self._writers == 0 or self._members >= self.group_limit) and self._group is not None:
                await self._commit_group()
        except sqlite3.Error as exc:
            await self._fail_group(exc)

    async def _commit_group(self) -> None:
        group, self._group = self._group, None
        self._members = 0
        assert group is not None
        try:
            await self._live().commit()
        except sqlite3.Error as exc:
            self._group = group
            await self._fail_group(exc)
            raise
        except BaseException:  # cancelled mid-commit: the outcome is unknown, so the members retry
            _settle(group, StoreError("job store commit interrupted"))
            raise
        self.write_error = ""
        _settle(group, None)

    async def _fail_group(self, exc: sqlite3.Error) -> None:
        """Fails every member of the open group (their changes are rolled back) and starts afresh."""
        self.write_error = f"{type(exc).__name__}: {exc}"
        group, self._group = self._group, None
        self._members = 0
        if group is not None:
            _settle(group, StoreError(f"job store write failed: {exc}"))
        conn = self._conn
        if conn is not None and conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                await conn.rollback()

    def _spawn_commit(self) -> None:
        async def commit_orphan() -> None:
            async with self._lock:
                if self._group is not None and self._writers == 0:
                    with contextlib.suppress(sqlite3.Error):
                        await self._commit_group()

        task = asyncio.get_running_loop().create_task(commit_orphan())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Returns every row of one query."""
        async with self.read() as conn:
            return await conn.fetchall(sql, tuple(params))


def _settle(group: asyncio.Future[None], error: StoreError | None) -> None:
    if group.done():
        return
    if error is None:
        group.set_result(None)
    else:
        group.set_exception(error)
        group.exception()  # marked retrieved: a group whose members all gave up must not warn


async def _begin(conn: aiosqlite.Connection) -> None:
    """BEGIN IMMEDIATE on a connection that a cancelled caller may have left mid-transaction: its rollback
    cut short by a second cancellation, or its own BEGIN still queued on the connection's thread when it was
    cancelled (so `in_transaction` is still false when checked, and true by the time ours runs)."""
    if conn.in_transaction:
        await conn.rollback()
    try:
        await conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        if not conn.in_transaction:
            raise
        await conn.rollback()
        await conn.execute("BEGIN IMMEDIATE")
