"""Injectable time: a real clock for production and a fake one that tests advance by hand.

Everything in ``client`` that waits or measures time (work queue delays and backoff, informer
resync and reconnect backoff, leader election, event aggregation) takes a ``clock`` so unit tests
run in virtual time: no test ever sleeps for real to observe a timeout.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall time in seconds since the epoch (used for timestamps written to objects)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (used for durations and deadlines)."""

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for ``seconds`` of this clock's time."""


class RealClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


REAL = RealClock()


class FakeClock:
    """Virtual time that only moves when a test calls ``advance`` (or ``step``).

    ``sleep`` parks the caller on a timer; ``advance(d)`` fires the timers due within ``d`` in
    time order, letting the event loop run after each so woken tasks act (and may schedule new
    timers, which fire too if due before the end of the advance). Cancelling a sleeper drops
    its timer.
    """

    def __init__(self, start: float = 1_800_000_000.0, settle_rounds: int = 50):
        # Timers run on the monotonic reading, which starts at 0 so that ``sleep(d)`` followed by
        # ``advance`` lands exactly on ``monotonic() + d`` without float rounding at epoch scale.
        self._mono = 0.0
        self._start = float(start)
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._settle_rounds = settle_rounds

    def now(self) -> float:
        return self._start + self._mono

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._mono + seconds, next(self._seq), fut))
        await fut

    def pending(self) -> int:
        """Number of live sleepers."""
        return sum(1 for _, _, f in self._timers if not f.done())

    def next_deadline(self) -> float | None:
        """Monotonic reading at which the earliest live sleeper wakes, or None."""
        self._drop_dead()
        return self._timers[0][0] if self._timers else None

    async def settle(self) -> None:
        """Let every runnable task run until the loop has nothing left to do without time passing."""
        for _ in range(self._settle_rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        target = self._mono + max(0.0, seconds)
        await self.settle()
        while True:
            self._drop_dead()
            if not self._timers or self._timers[0][0] > target:
                break
            when, _, fut = heapq.heappop(self._timers)
            self._mono = max(self._mono, when)
            fut.set_result(None)
            await self.settle()
        self._mono = max(self._mono, target)
        await self.settle()

    async def step(self) -> bool:
        """Advance exactly to the next timer, if any; True if one fired."""
        await self.settle()
        deadline = self.next_deadline()
        if deadline is None:
            return False
        await self.advance(deadline - self._mono)
        return True

    async def run_until(self, predicate: Callable[[], bool], limit: float = 3600.0) -> bool:
        """Fire timers in order until ``predicate()`` holds or ``limit`` virtual seconds pass;
        returns whether it holds. For driving code whose exact timer schedule a test need not know."""
        end = self._mono + limit
        await self.settle()
        while not predicate():
            deadline = self.next_deadline()
            if deadline is None or deadline > end:
                return predicate()
            await self.advance(deadline - self._mono)
        return True

    def _drop_dead(self) -> None:
        while self._timers and self._timers[0][2].done():
            heapq.heappop(self._timers)
