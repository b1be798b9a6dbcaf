"""What the store asks of a database back end: a connection protocol with `?` placeholders, the dialect
fragments where SQLite and PostgreSQL disagree, and store URLs with their password masked."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

# A row: sqlite3.Row or asyncpg.Record, both readable by column name and by position.
Row = Any


@dataclass(frozen=True)
class Dialect:
    """The few SQL fragments that differ between the back ends; everything else is written once."""

    name: str  # "sqlite" | "postgresql"
    for_update: str  # appended to a SELECT inside a write transaction that goes on to change the rows
    skip_locked: str  # appended to a queue-style SELECT: rows another replica is claiming are skipped

    def json_text(self, column: str, *path: str) -> str:
        """An expression for the JSON value at path in a TEXT column, as text (NULL when absent or null):
        the same text on both back ends, so it compares with a str parameter."""
        if self.name == "sqlite":
            return f"CAST(json_extract({column}, '$.{'.'.join(path)}') AS TEXT)"
        if len(path) == 1:
            return f"({column}::jsonb ->> '{path[0]}')"
        return f"({column}::jsonb #>> '{{{','.join(path)}}}')"


SQLITE = Dialect("sqlite", for_update="", skip_locked="")
POSTGRESQL = Dialect("postgresql", for_update=" FOR UPDATE", skip_locked=" FOR UPDATE SKIP LOCKED")


class Conn(Protocol):
    """One connection, inside a transaction (writes) or not (reads). SQL uses `?` placeholders."""

    dialect: Dialect

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Runs one statement; returns how many rows it inserted, updated or deleted."""

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Returns every row of one query (or of a statement with RETURNING)."""

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """Returns the first row of one query, or None."""

    async def lock(self, key: str) -> None:
        """Serialises this transaction with every other one (any process) that locks key, until it
        ends. A no-op where every write transaction is serialised already (SQLite's BEGIN IMMEDIATE)."""


class Backend(Protocol):
    """A store's database: write transactions, reads, a health flag, close."""

    dialect: Dialect
    write_error: str  # why the last write failed, "" once a write commits

    def transaction(self) -> AbstractAsyncContextManager[Conn]:
        """Yields a connection in a transaction, committed when the block ends (durably), rolled back
        when it raises; database errors become StoreError."""

    def read(self) -> AbstractAsyncContextManager[Conn]:
        """Yields a connection for reads of committed data; database errors become StoreError."""

    async def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        """Returns every row of one query."""

    async def close(self) -> None:
        """Closes once in-flight calls finish; idempotent."""


# ---- store URLs ------------------------------------------------------------------------------------------

_SCHEMES = ("postgresql", "postgres")


def is_postgres_url(value: object) -> bool:
    """True for a postgresql:// (or postgres://) URL: the store then lives in PostgreSQL."""
    return isinstance(value, str) and value.split("://", 1)[0].lower() in _SCHEMES and "://" in value


def mask_url(url: str) -> str:
    """The URL with its password (in the user part or a `password=` parameter) replaced by ***, for
    logs, errors, /healthz and metrics."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable store URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def url_password(url: str) -> str:
    """The URL's password ("" when it has none): a secret the log filter masks."""
    try:
        parts = urlsplit(url)
        found = re.search(r"(?i)(?:^|&)password=([^&]*)", parts.query)
        return parts.password or (found.group(1) if found else "") or ""
    except ValueError:
        return ""
