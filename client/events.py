"""An event recorder: core/v1 Events about objects, written in the background.

``EventRecorder.event(obj, type, reason, message)`` never blocks and never raises on API
trouble: it queues the event and a background task writes it. An event repeating one already
written (same involved object, type, reason, message and source) within ``window`` seconds is
folded into it: the existing Event's ``count`` and ``lastTimestamp`` are PATCHed instead of a new
Event being created. Event names are ``<object name>.<hex nanoseconds>``; Events live in the
involved object's namespace (``default`` for cluster-scoped objects).

If the queue is full, events are dropped (and counted in ``dropped``): losing an event is better
than stalling a controller.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from api import errors
from client.clock import REAL, Clock

log = structlog.get_logger("client.events")

NORMAL = "Normal"
WARNING = "Warning"
EVENTS = "events"
# Failures worth retrying; anything else is a verdict on the event itself.
_TRANSIENT: tuple[type[BaseException], ...] = (
    errors.ServiceUnavailable, errors.TooManyRequests, errors.InternalError, errors.Timeout,
    aiohttp.ClientError, TimeoutError, OSError)


_last_stamp: tuple[int, str] = (-1, "")


def rfc3339(ts: float) -> str:
    """``ts`` (seconds since the epoch) as RFC 3339 in UTC, to the second. Formatting costs more
    than an event's other fields; events come in bursts within one second, so the last is kept."""
    global _last_stamp
    sec = int(ts // 1)
    if _last_stamp[0] != sec:
        _last_stamp = (sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_stamp[1]


def object_reference(obj: dict[str, Any], field_path: str | None = None) -> dict[str, Any]:
    """The ObjectReference of an object (or pass a reference through unchanged)."""
    if "metadata" not in obj:
        return dict(obj)
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""), "name": meta.get("name", "")}
    for src, dst in (("namespace", "namespace"), ("uid", "uid"), ("resourceVersion", "resourceVersion")):
        if meta.get(src):
            ref[dst] = meta[src]
    if field_path:
        ref["fieldPath"] = field_path
    return ref


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    first: str
    last_seen: float   # clock monotonic


class EventRecorder:
    def __init__(self, client: Any, component: str, host: str | None = None, *, clock: Clock = REAL,
                 window: float = 600.0, queue_size: int = 1000, cache_size: int = 4096,
                 retries: int = 3, retry_delay: float = 1.0, writers: int = 8):
        self.client = client
        self.component = component
        self.host = host
        self.clock = clock
        self.window = window
        self.cache_size = cache_size
        self.retries = retries
        self.retry_delay = retry_delay
        self.dropped = 0
        self.written = 0
        # Several writers, each with its own queue; an event goes to the writer its object and reason
        # hash to, so repeats of one event are written in order (create, then count patches).
        self._queues: list[asyncio.Queue[tuple[dict[str, Any], str, str, str, float]]] = [
            asyncio.Queue() for _ in range(max(1, writers))]
        self.queue_size = queue_size           # events waiting, over all writers, before new ones drop
        self._pending = 0
        self._seen: OrderedDict[tuple[Any, ...], _Seen] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_nanos = 0

    # -- producing -------------------------------------------------------------------------

    def event(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        """Record an event about ``obj`` (an object or an ObjectReference). Never blocks."""
        if type not in (NORMAL, WARNING):
            raise ValueError(f"event type must be {NORMAL} or {WARNING}, not {type!r}")
        self._ensure_started()
        ref = object_reference(obj)
        if self._pending >= self.queue_size:
            self.dropped += 1
            return
        queue = self._queues[hash((ref.get("uid"), ref.get("name"), reason, message)) % len(self._queues)]
        self._pending += 1
        queue.put_nowait((ref, type, reason, message, self.clock.now()))

    def eventf(self, obj: dict[str, Any], type: str, reason: str, fmt: str, *args: Any) -> None:
        self.event(obj, type, reason, fmt % args if args else fmt)

    def normal(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, NORMAL, reason, message)

    def warning(self, obj: dict[str, Any], reason: str, message: str) -> None:
        self.event(obj, WARNING, reason, message)

    # -- lifecycle -------------------------------------------------------------------------

    def _ensure_started(self) -> None:
        if self._tasks and not any(t.done() for t in self._tasks):
            return
        loop = asyncio.get_running_loop()
        for t in self._tasks:
            t.cancel()
        self._tasks = [loop.create_task(self._run(q), name=f"events:{self.component}:{i}")
                       for i, q in enumerate(self._queues)]

    async def flush(self) -> None:
        """Wait until every event queued so far has been written (or given up on)."""
        if self._tasks:
            await asyncio.gather(*(q.join() for q in self._queues))

    async def stop(self, flush: bool = True) -> None:
        if flush:
            await self.flush()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- writing ---------------------------------------------------------------------------

    async def _run(self, queue: asyncio.Queue) -> None:
        while True:
            item = await queue.get()
            try:
                await self._write(*item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event write failed", component=self.component)
            finally:
                self._pending -= 1
                queue.task_done()

    def _name(self, obj_name: str, ts: float) -> str:
        nanos = max(int(ts * 1e9), self._last_nanos + 1)
        self._last_nanos = nanos
        return f"{obj_name}.{nanos:x}"

    async def _write(self, ref: dict[str, Any], type: str, reason: str, message: str, ts: float) -> None:
        key = (ref.get("kind"), ref.get("apiVersion"), ref.get("namespace"), ref.get("name"), ref.get("uid"),
               type, reason, message, self.component, self.host)
        now = self.clock.monotonic()
        stamp = rfc3339(ts)
        seen = self._seen.get(key)
        if seen is not None and now - seen.last_seen <= self.window:
            patch = {"count": seen.count + 1, "lastTimestamp": stamp}
            try:
                await self._with_retries(self.client.patch, EVENTS, seen.name, patch, seen.namespace)
                seen.count += 1
                seen.last_seen = now
                self._seen.move_to_end(key)
                self.written += 1
                return
            except errors.NotFound:
                pass  # it was deleted or expired: write a fresh one
            except (errors.StatusError, *_TRANSIENT) as e:
                log.warning("event dropped", reason=reason, object=ref.get("name"), error=str(e))
                return
        namespace = ref.get("namespace") or "default"
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": self._name(ref.get("name") or "unknown", ts), "namespace": namespace},
            "involvedObject": ref, "reason": reason, "message": message, "type": type,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host or "",
        }
        try:
            created = await self._with_retries(self.client.create, EVENTS, body, namespace)
        except (errors.StatusError, *_TRANSIENT) as e:
            log.warning("event dropped", reason=reason, object=ref.get("name"), error=str(e))
            return
        self.written += 1
        self._seen[key] = _Seen((created or body)["metadata"]["name"], namespace, 1, stamp, now)
        self._seen.move_to_end(key)
        while len(self._seen) > self.cache_size:
            self._seen.popitem(last=False)

    async def _with_retries(self, fn: Any, *args: Any) -> Any:
        for attempt in range(self.retries + 1):
            try:
                return await fn(*args)
            except _TRANSIENT:
                if attempt == self.retries:
                    raise
                await self.clock.sleep(self.retry_delay * (2 ** attempt))
        raise AssertionError("unreachable")
