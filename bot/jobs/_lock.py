"""One owner per store: an exclusive OS file lock beside the SQLite file, held for the life of the process.

Two bots on one store each resume the other's jobs and create second (billed) IMA tasks for them, so the
second one must not start at all. The lock is `flock` on `<store>.lock`: the OS drops it when the holder
exits or is killed, so a crash never leaves a stale lock, and two opens in one process conflict too. The
file holds the holder's pid and host, which the refusal names.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from ._schema import StoreError


class StoreLocked(StoreError):
    """Another process (or another App in this one) holds the store."""

    def __init__(self, store: Path, pid: int | None, host: str) -> None:
        who = f"pid {pid} on {host}" if pid else "another process (its pid is not recorded yet)"
        super().__init__(
            f"the job store {store} is in use by {who}. Only one imabot may use a store at a time: stop "
            f"that one first, or give this one its own store.path."
        )
        self.pid, self.host = pid, host


def lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".lock")


class StoreLock:
    """Held from acquire() until release() (or the process ends)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, store: str | Path) -> StoreLock:
        """Takes the lock for store (creating its folder and lock file if needed) and records this process
        in it. Raises StoreLocked when another holder has it, StoreError when the lock file cannot be made
        (e.g. a read-only folder), naming the path and what to do."""
        store = Path(store)
        path = lock_path(store)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store lock {path}: {exc.strerror or exc}. The folder must be writable by "
                f"this user; fix its permissions or set store.path to a writable place."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, host = _holder(fd)
            os.close(fd)
            raise StoreLocked(store, pid, host) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock the job store at {path}: {exc.strerror or exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode() + b"\n", 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Lets the next process in; idempotent. The file stays (removing it would race a new holder)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _holder(fd: int) -> tuple[int | None, str]:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid = int(record.get("pid") or 0) or None
        return pid, str(record.get("host") or "an unknown host")[:100]
    except (OSError, ValueError, TypeError, AttributeError):
        return None, "an unknown host"
