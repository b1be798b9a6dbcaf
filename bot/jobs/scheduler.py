"""Who runs next: global and per-user caps, round robin across users, queue positions, the daily budget."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from datetime import UTC, datetime, timedelta


class Scheduler:
    """In-memory admission control; the store stays the durable truth (a restart re-submits its jobs).

    Users take turns: the next job to start is the head of the first user in the rotation who is under
    the per-user cap, and that user then moves to the back. The rotation is ordered by when each user
    was last served, so a user who comes back (or comes new) lines up ahead of users served since,
    never behind a backlog. A job counts as running from the moment acquire() returns it until
    release(). Not thread-safe: use it from one event loop.
    """

    def __init__(self, *, global_limit: int, per_user_limit: int) -> None:
        if global_limit < 1 or per_user_limit < 1:
            raise ValueError("limits must be at least 1")
        self.global_limit = global_limit
        self.per_user_limit = per_user_limit
        self._queues: dict[str, deque[str]] = {}  # user -> waiting job ids, oldest first
        self._rotation: deque[str] = deque()  # users with waiting jobs, next turn first
        self._owner: dict[str, str] = {}  # waiting job -> user
        self._running: dict[str, str] = {}  # running job -> user, in start order
        self._per_user: Counter[str] = Counter()  # user -> running jobs
        self._served: dict[str, int] = {}  # user -> serial of their latest start (the rotation's order)
        self._serial = 0
        self._waiters: deque[asyncio.Future[str]] = deque()  # acquire() callers, first come first served
        self._plan: dict[str, tuple[int, bool]] | None = None  # job -> (1-based position, starts at once)

    # ---- queries ------------------------------------------------------------------------------------

    @property
    def running_count(self) -> int:
        return len(self._running)

    @property
    def queued_count(self) -> int:
        return len(self._owner)

    @property
    def waiting_count(self) -> int:
        """How many acquire() calls are waiting for a job."""
        return sum(1 for w in self._waiters if not w.done())

    def running_for(self, user_key: str) -> int:
        """Returns how many of the user's jobs are running."""
        return self._per_user[user_key]

    def is_running(self, job_id: str) -> bool:
        return job_id in self._running

    def position(self, job_id: str) -> int | None:
        """Returns the job's 1-based place in the start order of waiting jobs, None when not waiting.

        The order simulates the rotation forward, assuming running jobs end in the order they started;
        it is exact when they do and a close estimate otherwise."""
        entry = self._planned().get(job_id)
        return entry[0] if entry else None

    def positions(self) -> dict[str, int]:
        """Returns position() for every waiting job (to refresh pre-notices after a change)."""
        return {job: pos for job, (pos, _) in self._planned().items()}

    # ---- changes ------------------------------------------------------------------------------------

    def submit(self, job_id: str, user_key: str) -> int:
        """Enqueues a job; returns 0 when it can start without waiting for a running job to end, else its
        position(). Raises ValueError when the job is queued or running already."""
        if job_id in self._owner or job_id in self._running:
            raise ValueError(f"job {job_id!r} is already scheduled")
        queue = self._queues.setdefault(user_key, deque())
        if not queue:
            self._join_rotation(user_key)
        queue.append(job_id)
        self._owner[job_id] = user_key
        self._changed()
        planned = self._planned().get(job_id)  # None: already handed to a waiting acquire()
        return 0 if planned is None or planned[1] else planned[0]

    def adopt(self, job_id: str, user_key: str) -> None:
        """Counts a job as running without queueing it (a job resumed after a restart whose IMA task is
        already running); it may exceed the caps until it ends. Idempotent."""
        if job_id in self._running:
            return
        self.remove(job_id)
        self._running[job_id] = user_key
        self._per_user[user_key] += 1
        self._changed()

    def remove(self, job_id: str) -> bool:
        """Cancels a waiting job; returns False when it was not waiting."""
        user = self._owner.pop(job_id, None)
        if user is None:
            return False
        queue = self._queues[user]
        queue.remove(job_id)
        if not queue:
            del self._queues[user]
            self._rotation.remove(user)
        self._changed()
        return True

    def release(self, job_id: str) -> None:
        """Ends a running job and frees its slot (waking one acquire() per slot); idempotent."""
        user = self._running.pop(job_id, None)
        if user is None:
            return
        self._per_user[user] -= 1
        if not self._per_user[user]:
            del self._per_user[user]
        self._changed()

    def try_acquire(self) -> str | None:
        """Returns the job that may start now (it then counts as running), or None when the caps allow
        none or acquire() calls are already waiting (they come first)."""
        self._prune_waiters()
        return None if self._waiters else self._take_next()

    async def acquire(self) -> str:
        """Waits until a job may start and returns its id; the job then counts as running. Callers are
        served first come, first served; cancelling a waiting call loses no job."""
        job = self.try_acquire()
        if job is not None:
            return job
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_back(waiter.result())  # handed a job in the same tick it was cancelled
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    # ---- internals ----------------------------------------------------------------------------------

    def _prune_waiters(self) -> None:
        # A cancelled acquire() leaves its future here until its task runs again; skip it.
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()

    def _changed(self) -> None:
        self._plan = None
        while True:
            self._prune_waiters()
            if not self._waiters:
                return
            job = self._take_next()
            if job is None:
                return
            # Hand the job straight to the oldest waiter: exactly one wake-up per job that can start.
            self._waiters.popleft().set_result(job)

    def _eligible_user(self, running: int, per_user: Counter[str], rotation: deque[str]) -> str | None:
        if running >= self.global_limit:
            return None
        return next((u for u in rotation if per_user[u] < self.per_user_limit), None)

    def _take_next(self) -> str | None:
        user = self._eligible_user(len(self._running), self._per_user, self._rotation)
        if user is None:
            return None
        queue = self._queues[user]
        job = queue.popleft()
        del self._owner[job]
        self._rotation.remove(user)
        if queue:
            self._rotation.append(user)  # served: back of the line
        else:
            del self._queues[user]
        self._serial += 1
        self._served[user] = self._serial
        self._running[job] = user
        self._per_user[user] += 1
        self._plan = None
        return job

    def _give_back(self, job_id: str) -> None:
        user = self._running.pop(job_id)
        self._per_user[user] -= 1
        if not self._per_user[user]:
            del self._per_user[user]
        queue = self._queues.setdefault(user, deque())
        if queue:
            self._rotation.remove(user)
        queue.appendleft(job_id)
        # Its turn was not used: back to the front, ordered before everyone.
        self._served[user] = min((self._served.get(u, 0) for u in self._rotation), default=0) - 1
        self._rotation.appendleft(user)
        self._owner[job_id] = user
        self._changed()

    def _join_rotation(self, user: str) -> None:
        # The rotation stays sorted by last service: join after everyone served no later than this user.
        mine = self._served.get(user, 0)
        at = sum(1 for u in self._rotation if self._served.get(u, 0) <= mine)
        self._rotation.insert(at, user)

    def _planned(self) -> dict[str, tuple[int, bool]]:
        if self._plan is None:
            self._plan = self._simulate()
        return self._plan

    def _simulate(self) -> dict[str, tuple[int, bool]]:
        queues = {u: deque(q) for u, q in self._queues.items()}
        rotation = deque(self._rotation)
        running = deque(self._running.values())  # users of running jobs, oldest start first
        per_user = Counter(self._per_user)
        plan: dict[str, tuple[int, bool]] = {}
        waited = False
        while len(plan) < len(self._owner):
            user = self._eligible_user(len(running), per_user, rotation)
            if user is None:
                # Blocked: assume the oldest running job ends next. Something runs, since a user can
                # only be over the per-user cap with running jobs and global_limit >= 1.
                per_user[running.popleft()] -= 1
                waited = True
                continue
            job = queues[user].popleft()
            rotation.remove(user)
            if queues[user]:
                rotation.append(user)
            running.append(user)
            per_user[user] += 1
            plan[job] = (len(plan) + 1, not waited)
        return plan


def budget_allows(spent: int, estimated: int, limit: int | None) -> bool:
    """Returns True when a job costing estimated keeps the user within limit credits (None or 0: no
    budget). spent counts successful jobs only (JobStore.credits_spent)."""
    if not limit:
        return True
    return spent + max(0, estimated) <= limit


def budget_day_start(now: float, *, utc_offset_hours: float = 0.0) -> float:
    """Returns the epoch second when the budget day containing now began (midnight at the offset)."""
    tz_now = datetime.fromtimestamp(now, UTC) + timedelta(hours=utc_offset_hours)
    midnight = tz_now.replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - timedelta(hours=utc_offset_hours)).timestamp()
