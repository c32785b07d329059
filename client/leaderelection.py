"""Leader election on a coordination.k8s.io/v1 Lease.

Candidates share one Lease (``namespace/name``). Its spec records ``holderIdentity``,
``leaseDurationSeconds``, ``acquireTime``, ``renewTime`` and ``leaseTransitions``; every write is
an update compare-and-swapped on ``resourceVersion``, so two candidates never both succeed.

Rules, as client-go applies them:

* A candidate takes the Lease when it has no holder, or when the record has not changed for
  ``lease_duration`` as measured by the candidate's own clock from the moment it last saw the
  record change (clocks of different machines are never compared; ``renewTime`` is informative).
* The leader renews every ``retry_period``. If it has not renewed successfully for
  ``renew_deadline`` it steps down, before any other candidate can take over
  (``renew_deadline < lease_duration``).
* On shutdown (``stop()`` or cancelling ``run()``) a leader releases the Lease by clearing the
  holder, so a successor need not wait for expiry.

``on_started_leading()`` is called on acquiring; if it returns an awaitable, that runs as a task
for as long as leadership lasts and is cancelled on losing it. ``on_stopped_leading()`` is called
once when leadership ends; ``on_new_leader(identity)`` whenever the observed holder changes.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from api import errors
from client.clock import REAL, Clock

log = structlog.get_logger("client.leaderelection")

LEASES = "leases.coordination.k8s.io"
JITTER = 1.2  # retries while not leading wait retry_period * (1 + up to 20 %), as client-go


def micro_time(ts: float) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds, UTC."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def _call(fn: Callable[..., Any] | None, *args: Any) -> None:
    if fn is None:
        return
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("leader election callback failed")


class LeaderElector:
    def __init__(self, client: Any, namespace: str, name: str, identity: str, *,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 on_started_leading: Callable[[], Any] | None = None,
                 on_stopped_leading: Callable[[], Any] | None = None,
                 on_new_leader: Callable[[str], Any] | None = None,
                 release_on_cancel: bool = True, clock: Clock = REAL):
        if not identity:
            raise ValueError("leader election needs a non-empty identity")
        if not lease_duration > renew_deadline > retry_period * JITTER:
            raise ValueError("need lease_duration > renew_deadline > retry_period * 1.2")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.release_on_cancel = release_on_cancel
        self.clock = clock
        self.observed: dict[str, Any] = {}        # last Lease spec seen
        self.observed_at: float = 0.0             # our monotonic time when it last changed
        self._observed_rv: str | None = None
        self._leading = False
        self._leading_event = asyncio.Event()
        self._work: asyncio.Task[Any] | None = None
        self._stop = asyncio.Event()
        self._last_reported_leader: str | None = None
        self._callbacks: set[asyncio.Future[None]] = set()

    # -- state -----------------------------------------------------------------------------

    @property
    def leader(self) -> str | None:
        """The holder as last observed (None if none)."""
        return self.observed.get("holderIdentity") or None

    def is_leader(self) -> bool:
        return self._leading

    async def wait_until_leading(self) -> None:
        await self._leading_event.wait()

    def stop(self) -> None:
        """Ask ``run()`` to step down (releasing the Lease if leading) and return."""
        self._stop.set()

    # -- main loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Campaign until leading, lead until the Lease is lost or ``stop()``; then return."""
        released_needed = False
        try:
            if not await self._acquire():
                return
            released_needed = True
            self._leading = True
            self._leading_event.set()
            log.info("became leader", identity=self.identity, lease=f"{self.namespace}/{self.name}")
            result = self.on_started_leading() if self.on_started_leading else None
            if inspect.isawaitable(result):
                self._work = asyncio.ensure_future(result)
            lost = await self._renew_loop()
            released_needed = not lost
        finally:
            was_leading = self._leading
            self._leading = False
            self._leading_event.clear()
            if self._work is not None:
                self._work.cancel()
                await asyncio.gather(self._work, return_exceptions=True)
                self._work = None
            if released_needed and self.release_on_cancel:
                await self.release()
            if was_leading:
                log.info("stopped leading", identity=self.identity, lease=f"{self.namespace}/{self.name}")
                await _call(self.on_stopped_leading)

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Sleep on the clock; True if ``stop()`` was called meanwhile, or if the leading work
        failed (a leader whose work crashed must not keep the Lease from a healthy candidate)."""
        if self._stop.is_set():
            return True
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stop.wait())
        waits: set[asyncio.Future[Any]] = {sleeper, stopper}
        if self._work is not None and not self._work.done():
            waits.add(self._work)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
        work = self._work
        if work is not None and work.done() and not work.cancelled() and work.exception() is not None:
            log.error("leading work failed; stepping down", identity=self.identity,
                      lease=f"{self.namespace}/{self.name}", error=repr(work.exception()))
            self._stop.set()
        return self._stop.is_set()

    async def _acquire(self) -> bool:
        while not self._stop.is_set():
            if await self._attempt():
                return True
            if await self._sleep_or_stop(self.retry_period * (1 + random.random() * (JITTER - 1))):
                return False
        return False

    async def _renew_loop(self) -> bool:
        """Renew until a renewal deadline is missed (returns True) or stop() (returns False)."""
        last_renew = self.clock.monotonic()
        while True:
            if await self._sleep_or_stop(self.retry_period):
                return False
            if await self._attempt():
                last_renew = self.clock.monotonic()
            elif self.clock.monotonic() - last_renew >= self.renew_deadline or self.leader != self.identity:
                log.warning("lease not renewed in time; stepping down", identity=self.identity,
                            lease=f"{self.namespace}/{self.name}")
                return True

    async def _attempt(self) -> bool:
        try:
            return await asyncio.wait_for(self._try_acquire_or_renew(), timeout=self.renew_deadline)
        except asyncio.CancelledError:
            raise
        except (errors.StatusError, aiohttp.ClientError, TimeoutError, OSError) as e:
            log.debug("lease attempt failed", identity=self.identity, lease=f"{self.namespace}/{self.name}", error=str(e))
            return False

    def _observe(self, spec: dict[str, Any], rv: str | None) -> None:
        if spec != self.observed:
            self.observed = dict(spec)
            self.observed_at = self.clock.monotonic()
        self._observed_rv = rv
        holder = self.leader
        if holder != self._last_reported_leader:
            self._last_reported_leader = holder
            if holder and self.on_new_leader is not None:
                task = asyncio.ensure_future(_call(self.on_new_leader, holder))
                self._callbacks.add(task)
                task.add_done_callback(self._callbacks.discard)

    async def _try_acquire_or_renew(self) -> bool:
        now_wall = micro_time(self.clock.now())
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except errors.NotFound:
            spec = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                    "acquireTime": now_wall, "renewTime": now_wall, "leaseTransitions": 0}
            created = await self.client.create(LEASES, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}, self.namespace)
            self._observe(created.get("spec") or spec, created["metadata"].get("resourceVersion"))
            return True
        spec = lease.get("spec") or {}
        self._observe(spec, lease["metadata"].get("resourceVersion"))
        holder = spec.get("holderIdentity") or ""
        duration = spec.get("leaseDurationSeconds") or self.lease_duration
        if holder and holder != self.identity and self.observed_at + duration > self.clock.monotonic():
            return False
        new_spec = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                    "renewTime": now_wall}
        if holder == self.identity:
            new_spec["acquireTime"] = spec.get("acquireTime") or now_wall
            new_spec["leaseTransitions"] = spec.get("leaseTransitions") or 0
        else:
            new_spec["acquireTime"] = now_wall
            new_spec["leaseTransitions"] = (spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = new_spec
        updated = await self.client.update(LEASES, lease, self.namespace)
        self._observe(updated.get("spec") or new_spec, updated["metadata"].get("resourceVersion"))
        return True

    async def release(self) -> bool:
        """Clear the holder if we hold the Lease; True if released (or nothing to release)."""
        if self.leader != self.identity:
            return True
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return True
            now_wall = micro_time(self.clock.now())
            lease["spec"] = {"leaseDurationSeconds": 1, "acquireTime": now_wall, "renewTime": now_wall,
                             "leaseTransitions": spec.get("leaseTransitions") or 0}
            updated = await self.client.update(LEASES, lease, self.namespace)
            self._observe(updated.get("spec") or lease["spec"], updated["metadata"].get("resourceVersion"))
            return True
        except (errors.StatusError, aiohttp.ClientError, TimeoutError, OSError) as e:
            log.warning("lease release failed", identity=self.identity, lease=f"{self.namespace}/{self.name}", error=str(e))
            return False
