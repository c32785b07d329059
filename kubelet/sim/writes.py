"""The write gate: at most ``limit`` API writes in flight for the whole process, handed out by
priority, so that a burst of pod status writes does not delay Lease renewals long enough for the
nodes to be declared dead.

Strict priority would starve the lower classes whenever the server cannot keep up with Lease
renewals alone (too many nodes for it), and then no pod would ever start. So a class passed over
``starve_limit`` times in a row while waiting gets the next slot: under overload every class
still makes progress, the higher ones most. Within one class, first come first served.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

LEASE = 0          # node liveness: first
NODE = 1           # registration and node status
POD = 2            # pod status and deletions
CLASSES = (LEASE, NODE, POD)


class WriteGate:
    def __init__(self, limit: int, starve_limit: int = 4):
        if limit < 1:
            raise ValueError("a write gate needs at least one slot")
        self.limit = limit
        self.starve_limit = starve_limit
        self.in_flight = 0
        self._waiters: dict[int, deque[asyncio.Future[None]]] = {c: deque() for c in CLASSES}
        self._passed_over: dict[int, int] = dict.fromkeys(CLASSES, 0)

    def waiting(self) -> int:
        return sum(1 for q in self._waiters.values() for f in q if not f.done())

    @contextlib.asynccontextmanager
    async def slot(self, priority: int = POD) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if priority not in self._waiters:
            raise ValueError(f"unknown write priority {priority!r}")
        if self.in_flight < self.limit and not self.waiting():
            self.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[priority].append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()              # handed a slot just as we were cancelled: pass it on
            raise

    def _next_class(self) -> int | None:
        waiting = []
        for c in CLASSES:
            q = self._waiters[c]
            while q and q[0].done():
                q.popleft()
            if q:
                waiting.append(c)
        if not waiting:
            return None
        starved = [c for c in waiting if self._passed_over[c] >= self.starve_limit]
        chosen = starved[0] if starved else waiting[0]
        for c in waiting:
            self._passed_over[c] = 0 if c == chosen else self._passed_over[c] + 1
        return chosen

    def _release(self) -> None:
        chosen = self._next_class()
        if chosen is None:
            self.in_flight -= 1
            return
        # The slot moves to the waiter: in_flight unchanged.
        self._waiters[chosen].popleft().set_result(None)
