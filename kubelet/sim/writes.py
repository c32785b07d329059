"""The write gate: at most ``limit`` API writes in flight for the whole process, handed out by
priority, so that a burst of pod status writes never delays Lease renewals long enough for the
nodes to be declared dead. Within one priority, first come first served.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator

LEASE = 0          # node liveness: first
NODE = 1           # registration and node status
POD = 2            # pod status and deletions


class WriteGate:
    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("a write gate needs at least one slot")
        self.limit = limit
        self.in_flight = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def waiting(self) -> int:
        return sum(1 for _, _, f in self._waiters if not f.done())

    @contextlib.asynccontextmanager
    async def slot(self, priority: int = POD) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if self.in_flight < self.limit and not self.waiting():
            self.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (priority, next(self._seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._release()              # handed a slot just as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)         # the slot moves to the waiter: in_flight unchanged
                return
        self.in_flight -= 1
