"""The store's PostgreSQL back end: an asyncpg pool behind the same connection protocol as SQLite (`?`
placeholders, rowcounts, advisory locks), migrations under an advisory lock, and errors without the
password."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from ._migrations import migrate
from ._schema import StoreError
from ._sql import POSTGRESQL, Dialect, mask_url, url_password

POOL_SIZE = 10  # connections per store: concurrent admissions, polls and reads of one replica
CONNECT_TIMEOUT_S = 10.0
# pg_advisory_lock key held while migrating, so replicas starting together apply each step once.
MIGRATION_LOCK = 0x696D61626F74  # "imabot"
# Errors of the connection or the server (anything else is our bug and propagates as it is).
_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@functools.lru_cache(maxsize=1024)
def to_dollar(sql: str) -> str:
    """`?` placeholders as PostgreSQL's `$1, $2, …` (the store's SQL has no `?` in its literals)."""
    pieces = sql.split("?")
    out = [pieces[0]]
    for n, piece in enumerate(pieces[1:], start=1):
        out.append(f"${n}{piece}")
    return "".join(out)


def _rowcount(status: str) -> int:
    """Rows affected, from a command tag such as "UPDATE 3" or "INSERT 0 1"."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PgConn:
    """The store's connection protocol (bot/jobs/_sql.Conn) over one asyncpg connection."""

    dialect: Dialect = POSTGRESQL

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.raw = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return _rowcount(await self.raw.execute(to_dollar(sql), *params))

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        return list(await self.raw.fetch(to_dollar(sql), *params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> asyncpg.Record | None:
        return await self.raw.fetchrow(to_dollar(sql), *params)

    async def lock(self, key: str) -> None:
        """A transaction-level advisory lock on key's 64-bit hash, released at commit or rollback."""
        await self.raw.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[PgConn]:
        async with self.raw.transaction():
            yield self


class PgDatabase:
    """A pool of asyncpg connections. Each write is one transaction at READ COMMITTED; the store makes
    its read-check-write steps safe across replicas with row locks (`FOR UPDATE`) and advisory locks."""

    dialect: Dialect = POSTGRESQL

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool: asyncpg.Pool | None = pool
        self.url = mask_url(url)  # the only form of the URL kept: it may end up in a message
        self._secret = url_password(url)
        self.write_error = ""

    @classmethod
    async def open(cls, url: str, clock: Callable[[], float], *, pool_size: int = POOL_SIZE) -> PgDatabase:
        """Connects, migrates to the latest schema (under an advisory lock) and returns the database.
        Raises SchemaTooNew for a database from a newer release, StoreError when PostgreSQL fails (the
        message names the masked URL)."""
        secret = url_password(url)
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=60,
                reset=_reset,
            )
        except (*_DB_ERRORS, ValueError) as exc:
            raise StoreError(f"cannot open the job store at {mask_url(url)}: {_clean(exc, secret)}") from None
        try:
            async with pool.acquire() as conn:
                await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
                try:
                    await migrate(PgConn(conn), clock)
                finally:
                    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, _DB_ERRORS):
                raise StoreError(
                    f"cannot prepare the job store at {mask_url(url)}: {_clean(exc, secret)}"
                ) from None
            raise
        return cls(pool, url)

    def _live(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("the job store is closed")
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PgConn]:
        try:
            async with self._live().acquire() as conn:
                yield PgConn(conn)
        except _DB_ERRORS as exc:
            raise StoreError(f"job store read failed: {_clean(exc, self._secret)}") from None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConn]:
        try:
            async with self._live().acquire() as conn, conn.transaction():
                yield PgConn(conn)
        except _DB_ERRORS as exc:
            self.write_error = f"{type(exc).__name__}: {_clean(exc, self._secret)}"
            raise StoreError(f"job store write failed: {_clean(exc, self._secret)}") from None
        self.write_error = ""

    async def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[asyncpg.Record]:
        async with self.read() as conn:
            return await conn.fetchall(sql, tuple(params))


async def _reset(conn: asyncpg.Connection) -> None:
    """What a connection needs before the next acquirer: only a transaction a cancelled caller left
    open is rolled back. asyncpg's default reset costs a round trip per release (four statements: unlock
    advisory locks, close cursors, unlisten, reset settings), over half of what the store sent, for
    session state the store never makes (migrate's lock is released, or its pool closed)."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def _clean(exc: BaseException, secret: str) -> str:
    """The error's text without the password (a driver may quote its connection string)."""
    text = str(exc) or type(exc).__name__
    return text.replace(secret, "***") if secret else text
