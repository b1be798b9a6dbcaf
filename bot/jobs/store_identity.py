"""Which file the store is: noticed when it is deleted or replaced under a running process.

SQLite keeps writing to an open file after it is unlinked, so a deleted store goes unnoticed: history,
budget ledger and dedup keys silently stop being durable, and the next start begins empty. The identity is
the file's device and inode taken when the store opens (a file made anew at the path, even from a backup,
is another inode). `StoreWatch.check()` compares it with what the path holds now; the App calls it at a
low cadence and, once it fails, turns /healthz unhealthy and stops taking new jobs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("imabot.store")


@dataclass(frozen=True)
class StoreIdentity:
    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> StoreIdentity:
        """The identity of the file at path now; raises OSError when there is none."""
        st = os.stat(path)
        return cls(st.st_dev, st.st_ino)


class StoreWatch:
    """Remembers the store's identity at open; `fault` says why the store is no longer trusted ("" while
    it is). Once faulted it stays faulted: only a restart (an operator's decision) clears it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.identity = StoreIdentity.of(self.path)
        self.fault = ""

    def check(self) -> str:
        """Looks at the path again; returns the fault ("" when the same file is still there)."""
        if self.fault:
            return self.fault
        try:
            now = StoreIdentity.of(self.path)
        except FileNotFoundError:
            fault = f"the job store file {self.path} was deleted while the bot runs"
        except OSError as exc:
            fault = f"the job store file {self.path} cannot be checked: {exc.strerror or exc}"
        else:
            if now == self.identity:
                return ""
            fault = f"the job store file {self.path} was replaced by another file while the bot runs"
        self.fault = fault
        log.critical(
            "STORE LOST: %s. New jobs are refused and /healthz reports unhealthy; restore the file from a "
            "backup if you have one, then restart the bot (jobs recorded since are only in this process).",
            fault,
        )
        return fault


def with_advice(message: str) -> str:
    """A store failure at start, with what to do about it (the message already says what and where)."""
    low = message.lower()
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        tip = (
            "The file is damaged or is not an imabot store. Restore it from a backup, or move it aside to start "
            "with an empty store (job history, credit budget and dedup keys then start over)."
        )
    elif "readonly" in low or "read-only" in low or "permission" in low or "not permitted" in low:
        tip = "Make the file and its folder writable by the user running imabot, or set store.path elsewhere."
    elif "unable to open" in low or "no such file" in low or "not a directory" in low:
        tip = (
            "Check that store.path names a file in a folder that exists (or can be created) and is writable."
        )
    else:
        return message
    return f"{message.rstrip('.')}. {tip}"
