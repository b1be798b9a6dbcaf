"""Per-message patch pacing: one patch at a time, identical content skipped, progress spaced out."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class MessageState:
    """What the adapter last showed in one card message."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_at: float | None = None  # clock() of the last successful send/patch
    digest: str = ""  # the content now showing
    finished: bool = False  # a final notice (and its follow-ups) went out


class PatchGates:
    """Remembers the last patch of recent messages (bounded, least recently used dropped)."""

    def __init__(
        self, clock: Callable[[], float], *, min_interval: float, floor: float, capacity: int = 4096
    ) -> None:
        self._clock = clock
        self.min_interval = min_interval
        self.floor = floor
        self._states: OrderedDict[str, MessageState] = OrderedDict()
        self._capacity = capacity

    def state(self, ref: str) -> MessageState:
        """Returns the state of message ref, creating it when unknown."""
        state = self._states.pop(ref, None) or MessageState()
        self._states[ref] = state
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)
        return state

    def shown(self, ref: str, digest: str) -> None:
        """Records that ref now shows content with digest."""
        state = self.state(ref)
        state.last_at, state.digest = self._clock(), digest

    def plan(self, state: MessageState, digest: str, *, droppable: bool) -> float | None:
        """Returns seconds to wait before patching, or None to skip this patch.

        Identical content is skipped; a droppable (progress) update inside min_interval is skipped;
        anything else waits out the floor that keeps a card under Feishu's 5 patches/s.
        """
        if digest == state.digest:
            return None
        if state.last_at is None:
            return 0.0
        since = self._clock() - state.last_at
        if droppable and since < self.min_interval:
            return None
        return max(0.0, self.floor - since)
