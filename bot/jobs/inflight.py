"""What a graceful stop waits for: jobs stored as CREATING (their create is on the wire, or about to be) and
finals being sent. The runner marks both as they happen; its close() settles them within one deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator


class InFlight:
    """Creates and finals under way in this process. Not thread-safe: use it from one event loop."""

    def __init__(self) -> None:
        self._creating: set[str] = set()  # jobs whose stored state is CREATING (or being written so)
        self._left = asyncio.Event()  # set whenever one of them leaves CREATING
        self._finals: set[str] = set()  # jobs whose final is being sent and recorded
        self._final_done = asyncio.Event()

    def creating(self, job_id: str) -> bool:
        return job_id in self._creating

    def mark_creating(self, job_id: str) -> None:
        self._creating.add(job_id)

    def left_creating(self, job_id: str) -> None:
        """The job is no longer CREATING in the store (or never became so, or left this process)."""
        if job_id in self._creating:
            self._creating.discard(job_id)
            self._left.set()

    @contextlib.contextmanager
    def final(self, job_id: str) -> Iterator[None]:
        """Marks the job's final as under way for the block: from the send until its answer is recorded."""
        self._finals.add(job_id)
        try:
            yield
        finally:
            self._finals.discard(job_id)
            self._final_done.set()

    async def settle(self, deadline: float, task_of: Callable[[str], asyncio.Task[None] | None]) -> None:
        """Waits until deadline (loop time) at most: first for every job stored as CREATING whose task
        (task_of) still runs to store what its create gave, then while any final is under way."""
        await self._settle_creates(deadline, task_of)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                while self._finals:
                    self._final_done.clear()
                    await self._final_done.wait()

    async def _settle_creates(
        self, deadline: float, task_of: Callable[[str], asyncio.Task[None] | None]
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [t for j in self._creating if (t := task_of(j)) is not None]
            if not pending or loop.time() >= deadline:
                return
            self._left.clear()
            left = asyncio.ensure_future(self._left.wait())
            try:
                await asyncio.wait(
                    [left, *pending], timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                left.cancel()
