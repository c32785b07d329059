"""A work queue of object keys with client-go's guarantees, plus delays and rate limiting.

Contract (the one controllers rely on):

* A key added several times before a worker takes it is handed out once.
* A key is never held by two workers at once. A key added while a worker holds it is handed out
  again after that worker calls ``done``.
* ``add_after(key, delay)`` adds the key once ``delay`` has passed; of several pending delays for
  one key the earliest wins.
* ``add_rate_limited(key)`` adds it after the rate limiter's delay: per-key exponential backoff
  (5 ms doubling up to 1000 s by default) combined with an overall token bucket (10 qps, burst
  100); ``forget(key)`` resets the key's backoff, ``num_requeues(key)`` counts it.
* ``shut_down()`` stops accepting adds; keys already queued are still handed out, then ``get``
  raises ``ShutDown``. ``shut_down_with_drain()`` additionally waits until queued and in-flight
  keys are done.

Keys are any hashable value; controllers use ``"namespace/name"`` strings. Time comes from an
injectable clock so tests drive delays in virtual time.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol

import structlog

from client.clock import REAL, Clock

log = structlog.get_logger("client.workqueue")


class ShutDown(Exception):
    """Raised by ``get`` once the queue is shut down and empty."""


# ---------------------------------------------------------------------------------------------
# Rate limiters


class RateLimiter(Protocol):
    def when(self, key: Hashable) -> float:
        """Seconds to wait before ``key`` may be added again; records one more failure."""

    def forget(self, key: Hashable) -> None: ...

    def num_requeues(self, key: Hashable) -> int: ...


class ItemExponentialFailureRateLimiter:
    """Per-key backoff: ``base * 2**failures`` seconds, capped at ``max_delay``."""

    def __init__(self, base: float = 0.005, max_delay: float = 1000.0):
        self.base = base
        self.max_delay = max_delay
        self._failures: dict[Hashable, int] = {}

    def when(self, key: Hashable) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n > 62:  # 2**n would overflow a float multiplication long before it matters
            return self.max_delay
        return min(self.base * (2 ** n), self.max_delay)

    def forget(self, key: Hashable) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: Hashable) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter:
    """An overall token bucket: ``qps`` tokens per second, at most ``burst`` saved up.

    Each ``when`` reserves a token and returns how long until that token exists, so a burst of
    failures is spread out at ``qps`` rather than retried all at once.
    """

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Clock = REAL):
        self.qps = qps
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._last = clock.monotonic()

    def when(self, key: Hashable) -> float:
        now = self.clock.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.qps

    def forget(self, key: Hashable) -> None:
        pass

    def num_requeues(self, key: Hashable) -> int:
        return 0


class MaxOfRateLimiter:
    """The longest delay any of its limiters asks for; requeues as counted by the most eager."""

    def __init__(self, *limiters: RateLimiter):
        self.limiters = limiters

    def when(self, key: Hashable) -> float:
        return max(limiter.when(key) for limiter in self.limiters)

    def forget(self, key: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return max(limiter.num_requeues(key) for limiter in self.limiters)


def default_rate_limiter(clock: Clock = REAL, *, base: float = 0.005, max_delay: float = 1000.0,
                         qps: float = 10.0, burst: int = 100) -> MaxOfRateLimiter:
    """Per-key exponential backoff combined with an overall token bucket, as client-go's default."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(base, max_delay),
                            BucketRateLimiter(qps, burst, clock))


# ---------------------------------------------------------------------------------------------
# Metrics


class QueueMetrics(Protocol):
    """Hooks a queue calls; names follow client-go's ``workqueue_*`` metrics."""

    def depth(self, name: str, value: int) -> None: ...            # workqueue_depth

    def add(self, name: str) -> None: ...                          # workqueue_adds_total

    def queue_latency(self, name: str, seconds: float) -> None: ...  # workqueue_queue_duration_seconds

    def work_duration(self, name: str, seconds: float) -> None: ...  # workqueue_work_duration_seconds

    def retry(self, name: str) -> None: ...                        # workqueue_retries_total


class NoMetrics:
    def depth(self, name: str, value: int) -> None:
        pass

    def add(self, name: str) -> None:
        pass

    def queue_latency(self, name: str, seconds: float) -> None:
        pass

    def work_duration(self, name: str, seconds: float) -> None:
        pass

    def retry(self, name: str) -> None:
        pass


_PROMETHEUS: dict[int, PrometheusMetrics] = {}


class PrometheusMetrics:
    """The hooks as prometheus_client collectors labelled by queue ``name``.

    Use ``PrometheusMetrics.shared(registry)`` so that every queue of a process reports into one
    set of collectors (a registry refuses the same metric name twice).
    """

    def __init__(self, registry: Any = None):
        import prometheus_client as prom

        kw: dict[str, Any] = {"registry": registry} if registry is not None else {}
        buckets = tuple(10.0 ** e for e in range(-8, 4))
        self._depth = prom.Gauge("workqueue_depth", "Current depth of the work queue", ["name"], **kw)
        self._adds = prom.Counter("workqueue_adds", "Adds handled by the work queue", ["name"], **kw)
        self._latency = prom.Histogram("workqueue_queue_duration_seconds",
                                       "Seconds an item waits in the queue before it is taken",
                                       ["name"], buckets=buckets, **kw)
        self._work = prom.Histogram("workqueue_work_duration_seconds",
                                    "Seconds spent processing an item", ["name"], buckets=buckets, **kw)
        self._retries = prom.Counter("workqueue_retries", "Retries handled by the work queue", ["name"],
                                     **kw)

    @classmethod
    def shared(cls, registry: Any = None) -> PrometheusMetrics:
        key = id(registry)
        if key not in _PROMETHEUS:
            _PROMETHEUS[key] = cls(registry)
        return _PROMETHEUS[key]

    def depth(self, name: str, value: int) -> None:
        self._depth.labels(name).set(value)

    def add(self, name: str) -> None:
        self._adds.labels(name).inc()

    def queue_latency(self, name: str, seconds: float) -> None:
        self._latency.labels(name).observe(seconds)

    def work_duration(self, name: str, seconds: float) -> None:
        self._work.labels(name).observe(seconds)

    def retry(self, name: str) -> None:
        self._retries.labels(name).inc()


# ---------------------------------------------------------------------------------------------
# The queue


class WorkQueue:
    """A deduplicating, delaying, rate-limited queue of keys (see the module docstring)."""

    def __init__(self, name: str = "", *, clock: Clock = REAL, rate_limiter: RateLimiter | None = None,
                 metrics: QueueMetrics | None = None):
        self.name = name
        self.clock = clock
        self.rate_limiter = rate_limiter or default_rate_limiter(clock)
        self.metrics = metrics or NoMetrics()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._added_at: dict[Hashable, float] = {}
        self._started_at: dict[Hashable, float] = {}
        self._shutting_down = False
        self._drain = False
        self._getters: list[asyncio.Future[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        # Delayed adds: heap of (ready_at, seq, key); _waiting maps key -> its earliest ready_at.
        self._delayed: list[tuple[float, int, Hashable]] = []
        self._waiting: dict[Hashable, float] = {}
        self._seq = itertools.count()
        self._delay_changed = asyncio.Event()
        self._delay_task: asyncio.Task[None] | None = None

    # -- basic queue ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: Hashable) -> None:
        if self._shutting_down:
            return
        if key in self._dirty:
            return
        self.metrics.add(self.name)
        self._dirty.add(key)
        if key in self._processing:
            return
        self._added_at.setdefault(key, self.clock.monotonic())
        self._queue.append(key)
        self._idle.clear()
        self.metrics.depth(self.name, len(self._queue))
        self._notify()

    async def get(self) -> Hashable:
        """The next key to process; the caller must call ``done(key)`` when finished with it.

        Raises ``ShutDown`` once the queue is shut down and nothing is left queued.
        """
        while not self._queue:
            if self._shutting_down:
                raise ShutDown()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        key = self._queue.popleft()
        self.metrics.depth(self.name, len(self._queue))
        now = self.clock.monotonic()
        added = self._added_at.pop(key, None)
        if added is not None:
            self.metrics.queue_latency(self.name, now - added)
        self._started_at[key] = now
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: Hashable) -> None:
        """Mark ``key`` finished; if it was added again meanwhile it goes back on the queue."""
        started = self._started_at.pop(key, None)
        if started is not None:
            self.metrics.work_duration(self.name, self.clock.monotonic() - started)
        self._processing.discard(key)
        if key in self._dirty:
            self._added_at.setdefault(key, self.clock.monotonic())
            self._queue.append(key)
            self.metrics.depth(self.name, len(self._queue))
            self._notify()
        self._check_idle()

    def is_processing(self, key: Hashable) -> bool:
        return key in self._processing

    # -- delays and rate limiting -----------------------------------------------------------

    def add_after(self, key: Hashable, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready = self.clock.monotonic() + delay
        current = self._waiting.get(key)
        if current is not None and current <= ready:
            return
        self._waiting[key] = ready
        heapq.heappush(self._delayed, (ready, next(self._seq), key))
        self._idle.clear()
        self._delay_changed.set()
        self._ensure_delay_task()

    def add_rate_limited(self, key: Hashable) -> None:
        self.metrics.retry(self.name)
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: Hashable) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        return self.rate_limiter.num_requeues(key)

    def _ensure_delay_task(self) -> None:
        if self._delay_task is None or self._delay_task.done():
            self._delay_task = asyncio.get_running_loop().create_task(
                self._delay_loop(), name=f"workqueue-delay:{self.name}")

    async def _delay_loop(self) -> None:
        while not self._shutting_down:
            now = self.clock.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                ready, _, key = heapq.heappop(self._delayed)
                if self._waiting.get(key) == ready:
                    del self._waiting[key]
                    self.add(key)
            self._check_idle()
            self._delay_changed.clear()
            if not self._delayed:
                await self._delay_changed.wait()
                continue
            sleeper = asyncio.ensure_future(self.clock.sleep(self._delayed[0][0] - now))
            changed = asyncio.ensure_future(self._delay_changed.wait())
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                changed.cancel()

    # -- shutdown ---------------------------------------------------------------------------

    def shut_down(self) -> None:
        """Stop accepting adds and drop pending delayed adds; queued keys are still handed out."""
        self._shutting_down = True
        self._delayed.clear()
        self._waiting.clear()
        if self._delay_task is not None:
            self._delay_task.cancel()
        self._notify()
        self._check_idle()

    async def shut_down_with_drain(self, timeout: float | None = None) -> bool:
        """Shut down, then wait until every queued and in-flight key is done.

        Returns False if ``timeout`` (seconds of this queue's clock) passed first.
        """
        self._drain = True
        self.shut_down()
        if timeout is None:
            await self._idle.wait()
            return True
        waiter = asyncio.ensure_future(self._idle.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
        return self._idle.is_set()

    def _check_idle(self) -> None:
        if not self._queue and not self._processing and (self._shutting_down or not self._delayed):
            self._idle.set()

    def _notify(self) -> None:
        # Wake every waiting getter; each re-checks the queue, so a spurious wake costs nothing.
        getters, self._getters = self._getters, []
        for waiter in getters:
            if not waiter.done():
                waiter.set_result(None)


# ---------------------------------------------------------------------------------------------
# Workers

Reconcile = Callable[[Any], Awaitable[Any]]


async def run_workers(queue: WorkQueue, reconcile: Reconcile, n: int = 1) -> None:
    """Run ``n`` workers that take keys from ``queue`` and ``await reconcile(key)``.

    ``reconcile`` raising requeues the key rate-limited; returning normally forgets its backoff.
    Returning a number (seconds) also forgets the backoff and requeues the key after that delay.
    Returns once the queue is shut down and empty; cancelling it cancels the workers.
    """

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            try:
                result = reconcile(key)
                if inspect.isawaitable(result):
                    result = await result
            except asyncio.CancelledError:
                queue.done(key)
                raise
            except Exception:
                log.exception("reconcile failed; requeued with backoff", queue=queue.name, key=str(key))
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
                if isinstance(result, int | float) and not isinstance(result, bool) and result > 0:
                    queue.add_after(key, float(result))
            queue.done(key)

    tasks = [asyncio.create_task(worker(), name=f"worker:{queue.name}:{i}") for i in range(n)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
