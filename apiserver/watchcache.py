"""The watch cache: one storage watch per resource, served to every LIST and WATCH from memory.

Each resource keeps the current objects (as response-ready bytes plus the few values selectors
look at) and a bounded ring of recent events. A client watch from revision R replays the ring's
events after R and then follows live events; if the ring no longer reaches back to R the client
gets 410 Gone and relists, as with Kubernetes. A client that does not keep up (more than
``DEFAULT_WATCHER_QUEUE`` events wait for its connection) is cut off rather than allowed to hold
memory or slow the others; it resumes from its last revision.

Delivery: the fan-out appends each event to the pending list of every watcher it concerns, and
once per loop iteration writes each watcher's pending events straight to its connection (a
``Sink``), one write per watcher for however many events came in that iteration. Only a watcher
whose connection is not taking bytes (flow control) is left to its own request handler, which
waits for the connection to drain and writes what piled up meanwhile. With a thousand watchers
this costs a filter check and a write per watcher and event, instead of a queue put, a task
wake-up, a queue get and a write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson
import structlog

from api.errors import Gone, Timeout
from api.registry import ResourceInfo
from apiserver import codec
from apiserver.storage import Backend, Compacted, Event

log = structlog.get_logger("apiserver.watchcache")

DEFAULT_RING = 20_000
DEFAULT_WATCHER_QUEUE = 10_000


class Entry:
    """One object as the cache holds it: ``data`` is its JSON with resourceVersion set.

    Namespace and name come from the storage key. Labels and selectable field values are decoded
    from ``data`` the first time a selector asks for them: most objects are only ever written
    out as bytes, and then never decoded here at all."""

    __slots__ = ("key", "namespace", "name", "rv", "data", "_labels", "_fields", "_fields_of")

    def __init__(self, key: str, namespace: str, name: str, rv: int, data: bytes,
                 fields_of: Callable[[dict], dict[str, str]] | None = None):
        self.key = key
        self.namespace = namespace
        self.name = name
        self.rv = rv
        self.data = data
        self._fields_of = fields_of
        self._labels: dict[str, str] | None = None
        self._fields: dict[str, str] | None = None

    def object(self) -> dict:
        return orjson.loads(self.data)

    @property
    def labels(self) -> dict[str, str]:
        if self._labels is None:
            self._decode()
        return self._labels  # type: ignore[return-value]

    @property
    def fields(self) -> dict[str, str]:
        if self._fields is None:
            self._decode()
        return self._fields  # type: ignore[return-value]

    def _decode(self) -> None:
        obj = orjson.loads(self.data)
        self._labels = (obj.get("metadata") or {}).get("labels") or {}
        self._fields = self._fields_of(obj) if self._fields_of is not None else {}


@dataclass(slots=True)
class CacheEvent:
    type: str                   # ADDED | MODIFIED | DELETED
    entry: Entry                # for DELETED: the last state, rv = the deletion's revision
    prev: Entry | None
    rv: int
    _line: bytes | None = None
    _chunk: bytes | None = None

    @property
    def line(self) -> bytes:
        if self._line is None:
            self._line = codec.watch_line(self.type, self.entry.data)
        return self._line

    @property
    def chunk(self) -> bytes:
        """``line`` framed as one HTTP/1.1 chunk: made once, written to every watcher."""
        if self._chunk is None:
            self._chunk = http_chunk(self.line)
        return self._chunk


def http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


Filter = Callable[[Entry], bool]


class Sink(Protocol):
    """A watcher's connection, for writes from the fan-out (see ``ChunkedSink``)."""

    def blocked(self) -> bool:
        """True while the connection takes no more bytes (flow control)."""

    def send(self, events: list[CacheEvent]) -> bool:
        """Write the events in order; False when the connection is gone."""


class ChunkedSink:
    """The transport of a chunked HTTP/1.1 watch response whose head is already written.

    ``paused`` tells whether the transport asked its protocol to pause writing. ``render`` makes
    a watcher's own line for an event (Table watches); without it the event's shared line is
    written.
    """

    __slots__ = ("transport", "paused", "render")

    def __init__(self, transport, paused: Callable[[], bool],
                 render: Callable[[CacheEvent], bytes] | None = None):
        self.transport = transport
        self.paused = paused
        self.render = render

    def blocked(self) -> bool:
        # A transport pauses its protocol only with bytes buffered: while it has none (the common
        # case) the protocol is not asked.
        return self.transport.get_write_buffer_size() > 0 and self.paused()

    def write(self, line: bytes) -> None:
        """One line of the watcher's own (a bookmark), after what was sent before."""
        if not self.transport.is_closing():
            self.transport.write(http_chunk(line))

    def send(self, events: list[CacheEvent]) -> bool:
        t = self.transport
        if t.is_closing():
            return False
        if self.render is not None:
            t.writelines([http_chunk(self.render(ev)) for ev in events])
        elif len(events) == 1:
            t.write(events[0].chunk)
        else:
            # One write (writev) of the shared chunks, nothing joined.
            t.writelines([ev.chunk for ev in events])
        return True


class Watcher:
    """One client watch: events (already filtered and retyped) pend in ``pending`` until they
    are written to the watcher's sink. ``wake`` is set when the request handler has work: pending
    events while the sink is blocked or not attached yet, or the watcher closed."""

    __slots__ = ("namespace", "matches", "after_rv", "limit", "pending", "sink", "wake",
                 "closed", "overflowed")

    def __init__(self, namespace: str | None, matches: Filter | None, after_rv: int,
                 limit: int = DEFAULT_WATCHER_QUEUE):
        self.namespace = namespace
        self.matches = matches
        self.after_rv = after_rv
        self.limit = limit
        self.pending: list[CacheEvent] = []
        self.sink: Sink | None = None
        self.wake = asyncio.Event()
        self.closed = False
        self.overflowed = False

    def _view(self, ev: CacheEvent) -> CacheEvent | None:
        if self.namespace is not None and ev.entry.namespace != self.namespace:
            return None
        if self.matches is None:
            return ev
        cur = self.matches(ev.entry)
        if ev.type == "ADDED":
            return ev if cur else None
        if ev.type == "DELETED":
            before = self.matches(ev.prev) if ev.prev is not None else cur
            return ev if before else None
        before = self.matches(ev.prev) if ev.prev is not None else False
        if cur and before:
            return ev
        if cur:
            return CacheEvent("ADDED", ev.entry, ev.prev, ev.rv)
        if before:
            return CacheEvent("DELETED", ev.entry, ev.prev, ev.rv)
        return None

    def attach(self, sink: Sink) -> None:
        """Deliver from now on through ``sink``, starting with what is pending."""
        self.sink = sink
        self.flush()

    def flush(self) -> None:
        """Write the pending events if the sink takes them; otherwise wake the handler."""
        pending = self.pending
        if not pending or self.closed:
            return
        sink = self.sink
        if sink is None or sink.blocked():
            self.wake.set()
            return
        self.pending = []
        try:
            if sink.send(pending):
                return
        except Exception:
            log.exception("watch write failed")
        self.close()

    def close(self) -> None:
        """End the watch: no more writes from the fan-out; the handler ends the response after
        writing what is pending, if it can."""
        if not self.closed:
            self.closed = True
            self.wake.set()


class WatchCache:
    def __init__(self, resource: ResourceInfo, backend: Backend,
                 fields_of: Callable[[dict], dict[str, str]], *, ring_size: int = DEFAULT_RING):
        self.resource = resource
        self.backend = backend
        self._fields_of = fields_of
        self.prefix = resource.storage_prefix()
        self._namespaced = resource.namespaced
        self.objects: dict[str, Entry] = {}
        self._sorted_keys: list[str] | None = None
        self.ring: deque[CacheEvent] = deque()
        self.ring_size = ring_size
        self.ring_start_rv = 0       # every event with rv > this is in the ring
        self.rv = 0
        self.watchers: set[Watcher] = set()
        self._unflushed: list[Watcher] = []   # watchers given events since the last flush
        self._flush_due = False
        self._ready = asyncio.Event()
        self._rv_changed = asyncio.Condition()
        self._task: asyncio.Task | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self._load()
        self._task = asyncio.create_task(self._follow(), name=f"watchcache:{self.resource.plural}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for w in list(self.watchers):
            w.close()
        self.watchers.clear()

    async def _load(self) -> None:
        objects: dict[str, Entry] = {}
        rev = 0
        start = ""
        while True:
            res = await self.backend.list(self.prefix, start_key=start, limit=10_000, revision=rev)
            rev = res.revision
            for kv in res.items:
                objects[kv.key] = self._entry(kv.key, kv.value, kv.mod_revision)
            if not res.more:
                break
            start = res.items[-1].key + "\x00"
        self.objects = objects
        self._sorted_keys = None
        self.rv = rev
        self.ring.clear()
        self.ring_start_rv = rev
        self._ready.set()

    async def _follow(self) -> None:
        while True:
            try:
                async for ev in self.backend.watch(self.prefix, after_revision=self.rv):
                    self._apply(ev)
            except asyncio.CancelledError:
                raise
            except Compacted:
                await self._resync()
            except Exception:
                log.exception("storage watch failed; resyncing", resource=self.resource.plural)
                await asyncio.sleep(0.5)
                await self._resync()

    async def _resync(self) -> None:
        """Reload after losing the storage watch; clients watching across the gap get 410."""
        old = self.objects
        await self._load()
        # Everything before the reload is unreachable by replay now.
        for w in list(self.watchers):
            w.close()
        self.watchers.clear()
        del old

    def _entry(self, key: str, value: bytes, rv: int) -> Entry:
        rest = key[len(self.prefix):]
        if self._namespaced:
            namespace, _, name = rest.partition("/")
        else:
            namespace, name = "", rest
        return Entry(key, namespace, name, rv, codec.with_resource_version(value, rv), self._fields_of)

    # --- events ----------------------------------------------------------------------------

    def _apply(self, ev: Event) -> None:
        key = ev.kv.key
        prev = self.objects.get(key)
        entry = self._entry(key, ev.kv.value, ev.revision)
        if ev.type == "DELETE":
            self.objects.pop(key, None)
            self._sorted_keys = None
            cev = CacheEvent("DELETED", entry, prev, ev.revision)
        else:
            if prev is None:
                self._sorted_keys = None
            self.objects[key] = entry
            cev = CacheEvent("MODIFIED" if prev is not None else "ADDED", entry, prev, ev.revision)
        self.ring.append(cev)
        while len(self.ring) > self.ring_size:
            self.ring_start_rv = self.ring.popleft().rv
        self.rv = ev.revision
        self._fan_out(cev)
        self._notify()

    def _fan_out(self, ev: CacheEvent) -> None:
        """Pend the event for every watcher it concerns; the writes happen in ``_flush``, once
        per loop iteration, so that events arriving together (a storage batch) go out together.

        The loop is the per-event cost of every watch: the common case (no selector, the
        namespace matches) is decided here without a call."""
        unflushed = self._unflushed
        rv = ev.rv
        ns = ev.entry.namespace
        dropped: list[Watcher] | None = None
        for w in self.watchers:
            if rv <= w.after_rv:
                continue
            if w.matches is None:
                if w.namespace is not None and w.namespace != ns:
                    continue
                out = ev
            else:
                out = w._view(ev)
                if out is None:
                    continue
            pending = w.pending
            if not pending:
                unflushed.append(w)
            elif len(pending) >= w.limit:
                w.overflowed = True
                if dropped is None:
                    dropped = []
                dropped.append(w)
                continue
            pending.append(out)
        if dropped:
            for w in dropped:
                self.watchers.discard(w)
                w.close()
        if unflushed and not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        unflushed, self._unflushed = self._unflushed, []
        for w in unflushed:
            w.flush()
            if w.closed:            # its connection is gone, or its sink failed
                self.watchers.discard(w)

    def _notify(self) -> None:
        async def wake() -> None:
            async with self._rv_changed:
                self._rv_changed.notify_all()
        if self._rv_changed._waiters:  # type: ignore[attr-defined]
            asyncio.get_running_loop().create_task(wake())

    async def wait_for_rv(self, rv: int, timeout: float) -> bool:
        """Wait until the cache has seen revision ``rv``; False on timeout."""
        if self.rv >= rv:
            return True
        try:
            async with asyncio.timeout(timeout):
                async with self._rv_changed:
                    await self._rv_changed.wait_for(lambda: self.rv >= rv)
        except TimeoutError:
            return False
        return True

    # --- reads -----------------------------------------------------------------------------

    async def ready(self) -> None:
        await self._ready.wait()

    def get(self, key: str) -> Entry | None:
        return self.objects.get(key)

    def sorted_keys(self) -> list[str]:
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self.objects)
        return self._sorted_keys

    def list(self, namespace: str | None, matches: Filter | None, *, start_key: str = "",
             limit: int = 0) -> tuple[list[Entry], str | None]:
        """Matching entries in key order from ``start_key``; also the next key when cut by ``limit``."""
        out: list[Entry] = []
        prefix = self.resource.storage_prefix(namespace) if namespace else self.prefix
        keys = self.sorted_keys()
        import bisect

        i = bisect.bisect_left(keys, max(prefix, start_key))
        objects = self.objects
        for idx in range(i, len(keys)):
            k = keys[idx]
            if not k.startswith(prefix):
                break
            e = objects[k]
            if matches is not None and not matches(e):
                continue
            if limit and len(out) >= limit:
                return out, k
            out.append(e)
        return out, None

    def watch(self, namespace: str | None, matches: Filter | None, after_rv: int) -> tuple[Watcher, list[CacheEvent]]:
        """Register a watcher. ``after_rv`` 0 starts with ADDED events for what exists now.

        Returns the watcher and the events to send before its queue. Raises Gone when the ring
        no longer reaches back to ``after_rv``.
        """
        w = Watcher(namespace, matches, after_rv or self.rv)
        initial: list[CacheEvent] = []
        if after_rv == 0:
            entries, _ = self.list(namespace, matches)
            initial = [CacheEvent("ADDED", e, None, e.rv) for e in entries]
        elif after_rv < self.rv:
            if after_rv < self.ring_start_rv:
                raise Gone(f"too old resource version: {after_rv} ({self.ring_start_rv})")
            for ev in self.ring:
                if ev.rv > after_rv:
                    view = w._view(ev)
                    if view is not None:
                        initial.append(view)
        self.watchers.add(w)
        return w, initial

    def close_watchers(self) -> None:
        """End every client watch (at shutdown); clients resume elsewhere from their last version."""
        for w in list(self.watchers):
            self.unwatch(w)

    def unwatch(self, w: Watcher) -> None:
        """Stop delivering to ``w``; the fan-out writes nothing to its sink from now on."""
        self.watchers.discard(w)
        w.close()
        w.sink = None

    def bookmark(self) -> bytes:
        obj = {"kind": self.resource.kind, "apiVersion": self.resource.api_version,
               "metadata": {"resourceVersion": str(self.rv)}}
        return codec.watch_line("BOOKMARK", orjson.dumps(obj))


async def wait_fresh(cache: WatchCache, rv: int, timeout: float = 3.0) -> None:
    """Wait for the cache to reach ``rv`` or fail as Kubernetes does ("Too large resource version")."""
    if not await cache.wait_for_rv(rv, timeout):
        raise Timeout(f"Too large resource version: {rv}, current: {cache.rv}", retry_after=1)
