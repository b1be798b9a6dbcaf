"""Preference rows: a user's settings and a chat's defaults, read and merged-then-written."""

from __future__ import annotations

from typing import Any

from ._schema import UserPrefs, prefs_from_row, prefs_to_row
from ._sql import Conn


async def read_prefs(conn: Conn, scope: str, owner: str) -> UserPrefs:
    """The stored prefs of (scope, owner); empty when none are stored."""
    row = await conn.fetchone("SELECT * FROM preferences WHERE scope = ? AND owner = ?", (scope, owner))
    return prefs_from_row(row)


async def merge_prefs(conn: Conn, scope: str, owner: str, changes: dict[str, Any], now: float) -> UserPrefs:
    """Applies changes (UserPrefs.merged) to the stored prefs and writes the result, under a lock on
    (scope, owner) so two replicas' changes both land; returns it."""
    await conn.lock(f"prefs:{scope}:{owner}")
    new = (await read_prefs(conn, scope, owner)).merged(**changes)
    row = prefs_to_row(new)
    cols = ", ".join(row)
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*row, "updated_at"))
    await conn.execute(
        f"INSERT INTO preferences (scope, owner, updated_at, {cols}) VALUES (?, ?, ?, {', '.join('?' * len(row))}) "
        f"ON CONFLICT (scope, owner) DO UPDATE SET {updates}",
        (scope, owner, now, *row.values()),
    )
    return new
