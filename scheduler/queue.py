"""The scheduling queue: which pod is tried next, and when a pod that failed is tried again.

Three sub-queues, as kube-scheduler keeps them:

- *active*: pods ready to be tried, ordered by the profile's queue sort (priority, then age);
- *backoff*: pods that failed recently and wait out a backoff (``initial`` seconds doubling per
  attempt up to ``maximum``) before they return to active;
- *unschedulable*: pods no node could take. They stay until a cluster event could make them fit
  (``move_all_to_active_or_backoff``: a node added or changed, a pod deleted) and at least every
  ``unschedulable_timeout`` seconds (5 minutes).

Pods with ``spec.schedulingGates`` wait, *gated*, until an update removes the gates.

A pod that was being scheduled when a cluster event arrived goes to backoff, not unschedulable,
when it fails: the event might have been the one that lets it fit (the ``move request cycle``).

A pod is known by its key (``namespace/name``). One pod is never in two sub-queues at once, and
a pod handed out by ``pop`` is *in flight* until the caller reports its outcome with ``done``,
``add_unschedulable`` or ``add_backoff``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from client.clock import REAL, Clock

ACTIVE = "active"
BACKOFF = "backoff"
UNSCHEDULABLE = "unschedulable"
GATED = "gated"

# Event names (for logs and for the reason a pod moved).
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
ASSIGNED_POD_DELETE = "AssignedPodDelete"
ASSIGNED_POD_ADD = "AssignedPodAdd"
ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
UNSCHEDULABLE_TIMEOUT = "UnschedulableTimeout"


def pod_key(pod: dict) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"


def _gated(pod: dict) -> bool:
    return bool((pod.get("spec") or {}).get("schedulingGates"))


def _spec_view(pod: dict) -> tuple:
    """What makes a pod update worth a new attempt: anything but its status and bookkeeping."""
    meta = {k: v for k, v in (pod.get("metadata") or {}).items()
            if k not in ("resourceVersion", "generation", "managedFields")}
    return (meta, pod.get("spec"))


@dataclass
class QueuedPod:
    pod: dict
    key: str
    seq: int
    added: float                          # monotonic time it (re)entered a sub-queue
    initial_attempt: float | None = None  # monotonic time of its first attempt
    attempts: int = 0
    backoff_until: float = 0.0
    unschedulable_plugins: set[str] = field(default_factory=set)
    removed: bool = False                 # lazily dropped from a heap


class _Entry:
    """A heap entry ordered by the queue-sort ``less`` (ties by arrival)."""

    __slots__ = ("qp", "less")

    def __init__(self, qp: QueuedPod, less: Callable[[dict, dict], bool]):
        self.qp = qp
        self.less = less

    def __lt__(self, other: _Entry) -> bool:
        a, b = self.qp.pod, other.qp.pod
        if self.less(a, b):
            return True
        if self.less(b, a):
            return False
        return self.qp.seq < other.qp.seq


class _KeyEntry:
    """A heap entry ordered by the queue-sort key, worked out once (ties by arrival)."""

    __slots__ = ("qp", "key")

    def __init__(self, qp: QueuedPod, key: Callable[[dict], Any]):
        self.qp = qp
        self.key = (key(qp.pod), qp.seq)

    def __lt__(self, other: _KeyEntry) -> bool:
        return self.key < other.key


class SchedulingQueue:
    def __init__(self, less: Callable[[dict, dict], bool] | None = None, *, clock: Clock = REAL,
                 initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 unschedulable_timeout: float = 300.0, key: Callable[[dict], Any] | None = None):
        self.less = less or (lambda a, b: False)
        # ``key``: the same order as ``less``, as a sort key (see QueueSortPlugin.sort_key).
        self.key = key
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.unschedulable_timeout = unschedulable_timeout
        self._seq = itertools.count()
        self._where: dict[str, str] = {}            # key -> sub-queue name
        self._pods: dict[str, QueuedPod] = {}        # key -> queued pod (not in flight)
        self._in_flight: dict[str, QueuedPod] = {}   # popped, outcome not yet reported
        self._active: list[_Entry] = []
        self._backoff: list[tuple[float, int, QueuedPod]] = []
        self._unschedulable: set[str] = set()        # keys, so events need not scan every pod
        self._active_count = 0
        self._backoff_count = 0
        self._wakeup = asyncio.Event()
        self._closed = False
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._flusher: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background flushes (backoff expiry, unschedulable timeout)."""
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop(), name="scheduler:queue-flush")

    async def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None

    # -- counts ---------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        un = len(self._unschedulable)
        return {ACTIVE: self._active_count, BACKOFF: self._backoff_count, UNSCHEDULABLE: un,
                GATED: len(self._where) - self._active_count - self._backoff_count - un}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where or key in self._in_flight

    def where(self, key: str) -> str | None:
        """The sub-queue holding the pod, ``in-flight``, or None."""
        if key in self._in_flight:
            return "in-flight"
        return self._where.get(key)

    def pending_pods(self) -> list[tuple[dict, str]]:
        return [(qp.pod, self._where[k]) for k, qp in self._pods.items()]

    # -- internal moves -------------------------------------------------------------------------

    def _take(self, key: str) -> QueuedPod | None:
        """Remove a pod from whichever sub-queue holds it."""
        qp = self._pods.pop(key, None)
        where = self._where.pop(key, None)
        if qp is not None:
            qp.removed = True
            if where == ACTIVE:
                self._active_count -= 1
            elif where == BACKOFF:
                self._backoff_count -= 1
            elif where == UNSCHEDULABLE:
                self._unschedulable.discard(key)
        return qp

    def _fresh(self, qp: QueuedPod) -> QueuedPod:
        """A new record for a pod re-entering a queue (the old one may sit in a heap, removed)."""
        return QueuedPod(qp.pod, qp.key, next(self._seq), self.clock.monotonic(), qp.initial_attempt,
                         qp.attempts, qp.backoff_until, set(qp.unschedulable_plugins))

    def _push_active(self, qp: QueuedPod) -> None:
        if _gated(qp.pod):
            self._pods[qp.key] = qp
            self._where[qp.key] = GATED
            return
        self._pods[qp.key] = qp
        self._where[qp.key] = ACTIVE
        self._active_count += 1
        heapq.heappush(self._active, _KeyEntry(qp, self.key) if self.key is not None else _Entry(qp, self.less))
        self._wakeup.set()

    def _push_backoff(self, qp: QueuedPod) -> None:
        self._pods[qp.key] = qp
        self._where[qp.key] = BACKOFF
        self._backoff_count += 1
        heapq.heappush(self._backoff, (qp.backoff_until, qp.seq, qp))

    def _push_unschedulable(self, qp: QueuedPod) -> None:
        self._pods[qp.key] = qp
        self._where[qp.key] = UNSCHEDULABLE
        self._unschedulable.add(qp.key)

    def backoff_duration(self, attempts: int) -> float:
        d = self.initial_backoff
        for _ in range(1, max(attempts, 1)):
            d *= 2
            if d >= self.max_backoff:
                return self.max_backoff
        return min(d, self.max_backoff)

    def _requeue(self, qp: QueuedPod) -> None:
        """To backoff while its backoff lasts, else to active."""
        qp = self._fresh(qp)
        if qp.attempts and self.clock.monotonic() < qp.backoff_until:
            self._push_backoff(qp)
        else:
            self._push_active(qp)

    # -- producers (informer events) ------------------------------------------------------------

    def add(self, pod: dict) -> None:
        """A new unscheduled pod."""
        key = pod_key(pod)
        if key in self._in_flight:
            self._in_flight[key].pod = pod
            return
        old = self._take(key)
        if old is not None:
            old.pod = pod
            self._requeue(old)
            return
        self._push_active(QueuedPod(pod, key, next(self._seq), self.clock.monotonic()))

    def update(self, old: dict, new: dict) -> None:
        key = pod_key(new)
        if key in self._in_flight:
            self._in_flight[key].pod = new
            return
        qp = self._pods.get(key)
        if qp is None:
            self.add(new)
            return
        where = self._where[key]
        changed = _spec_view(old) != _spec_view(new)
        if where in (ACTIVE, BACKOFF):
            qp.pod = new                     # keeps its place (priority changes are rare)
            if where == ACTIVE and _gated(new):
                self._take(key)
                self._push_active(self._fresh(qp))
            return
        if where == GATED:
            self._take(key)
            qp.pod = new
            self._push_active(self._fresh(qp))
            return
        # Unschedulable: only a real change to the pod earns a new attempt now.
        qp.pod = new
        if changed:
            self._take(key)
            self._requeue(qp)

    def delete(self, pod: dict) -> None:
        key = pod_key(pod)
        self._take(key)
        qp = self._in_flight.get(key)
        if qp is not None:
            qp.removed = True

    # -- the scheduling loop's side ---------------------------------------------------------------

    async def pop(self) -> QueuedPod | None:
        """The next pod to try (waits for one); None once the queue is closed."""
        while not self._closed:
            while self._active:
                entry = heapq.heappop(self._active)
                qp = entry.qp
                if qp.removed:
                    continue
                self._active_count -= 1
                del self._pods[qp.key]
                del self._where[qp.key]
                qp.attempts += 1
                if qp.initial_attempt is None:
                    qp.initial_attempt = self.clock.monotonic()
                self.scheduling_cycle += 1
                self._in_flight[qp.key] = qp
                return qp
            self._wakeup.clear()
            await self._wakeup.wait()
        return None

    def in_flight_deleted(self, key: str) -> bool:
        qp = self._in_flight.get(key)
        return qp is not None and qp.removed

    def done(self, key: str) -> None:
        """The in-flight pod is settled (bound, or gone)."""
        self._in_flight.pop(key, None)

    def add_unschedulable(self, qp: QueuedPod, cycle: int, plugins: set[str] | None = None) -> None:
        """The pod fit nowhere in ``cycle``. It waits for a cluster event, unless one already
        arrived while it was being scheduled (then it only backs off)."""
        self._in_flight.pop(qp.key, None)
        if qp.removed or qp.key in self._where:
            return
        qp = self._fresh(qp)
        qp.unschedulable_plugins = set(plugins or ())
        qp.backoff_until = self.clock.monotonic() + self.backoff_duration(qp.attempts)
        if self.move_request_cycle >= cycle:
            self._push_backoff(qp)
        else:
            self._push_unschedulable(qp)

    def add_backoff(self, qp: QueuedPod) -> None:
        """The attempt failed for a reason other than fit (an error, a failed binding): retry
        after the backoff."""
        self._in_flight.pop(qp.key, None)
        if qp.removed or qp.key in self._where:
            return
        qp = self._fresh(qp)
        qp.backoff_until = self.clock.monotonic() + self.backoff_duration(qp.attempts)
        self._push_backoff(qp)

    # -- cluster events -------------------------------------------------------------------------

    def move_all_to_active_or_backoff(self, event: str, plugins: Collection[str] | None = None) -> int:
        """A cluster change that may let unschedulable pods fit: retry them (after their backoff).
        With ``plugins``, only pods one of those plugins rejected move (and in-flight pods count
        the event only then too). Returns how many pods moved."""
        if plugins is None:
            self.move_request_cycle = self.scheduling_cycle
            keys = list(self._unschedulable)
        else:
            if self._in_flight:
                self.move_request_cycle = self.scheduling_cycle
            keys = [k for k in self._unschedulable
                    if not self._pods[k].unschedulable_plugins.isdisjoint(plugins)]
        for k in keys:
            qp = self._take(k)
            if qp is not None:
                self._requeue(qp)
        return len(keys)

    def flush_backoff_completed(self) -> int:
        now = self.clock.monotonic()
        n = 0
        while self._backoff and self._backoff[0][0] <= now:
            _, _, qp = heapq.heappop(self._backoff)
            if qp.removed:
                continue
            self._take(qp.key)
            self._push_active(self._fresh(qp))
            n += 1
        return n

    def flush_unschedulable_leftover(self) -> int:
        now = self.clock.monotonic()
        keys = [k for k in self._unschedulable if now - self._pods[k].added >= self.unschedulable_timeout]
        for k in keys:
            qp = self._take(k)
            if qp is not None:
                self._requeue(qp)
        return len(keys)

    def next_backoff_expiry(self) -> float | None:
        while self._backoff and self._backoff[0][2].removed:
            heapq.heappop(self._backoff)
        return self._backoff[0][0] if self._backoff else None

    async def _flush_loop(self) -> None:
        last_leftover = self.clock.monotonic()
        while True:
            now = self.clock.monotonic()
            nxt = self.next_backoff_expiry()
            delay = 1.0 if nxt is None else min(1.0, max(nxt - now, 0.01))
            await self.clock.sleep(delay)
            self.flush_backoff_completed()
            if self.clock.monotonic() - last_leftover >= 30.0:
                last_leftover = self.clock.monotonic()
                self.flush_unschedulable_leftover()
