"""The watch cache's delivery path in-process: a real SQLite store, and sinks we control in place of
connections (the ``Sink`` boundary is ours), so that flow control can be switched on and off."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from api import registry
from apiserver import codec
from apiserver.storage import Event, KeyValue
from apiserver.storage.sqlite import SQLiteBackend
from apiserver.watchcache import CacheEvent, ChunkedSink, Entry, WatchCache

CONFIGMAPS = registry.lookup("", "v1", "configmaps")


class RecordingSink:
    """A connection that takes bytes unless ``paused``; ``gone`` once the client has left."""

    def __init__(self) -> None:
        self.paused = False
        self.gone = False
        self.sends: list[list[CacheEvent]] = []

    def blocked(self) -> bool:
        return self.paused

    def send(self, events: list[CacheEvent]) -> bool:
        if self.gone:
            return False
        self.sends.append(list(events))
        return True

    @property
    def rvs(self) -> list[int]:
        return [ev.rv for batch in self.sends for ev in batch]


class RecordingTransport:
    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0
        self.closing = False
        self.buffered = 0           # what the kernel did not take yet

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.data += data

    def writelines(self, parts) -> None:
        self.writes += 1
        for p in parts:
            self.data += p


def configmap(name: str, labels: dict | None = None) -> bytes:
    return codec.encode_for_storage({"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": name, "namespace": "ns",
                                                  "labels": labels or {}}})


@pytest.fixture
async def store(tmp_path):
    backend = await SQLiteBackend.open(str(tmp_path / "store.db"))
    yield backend
    await backend.close()


@pytest.fixture
async def cache(store):
    c = WatchCache(CONFIGMAPS, store, lambda obj: {})
    await c.start()
    yield c
    await c.stop()


async def write(store, cache: WatchCache, names: list[str]) -> list[int]:
    """Create the configmaps; return once the cache has fanned them out and flushed."""
    rvs = [(await store.create(CONFIGMAPS.storage_key("ns", n), configmap(n))).mod_revision for n in names]
    assert await cache.wait_for_rv(rvs[-1], 5.0)
    await asyncio.sleep(0)          # the flush runs one loop iteration after the fan-out
    await asyncio.sleep(0)
    return rvs


def storage_event(rv: int, name: str) -> Event:
    kv = KeyValue(CONFIGMAPS.storage_key("ns", name), configmap(name), rv, rv)
    return Event("PUT", kv, None, rv)


async def test_events_go_straight_to_a_sink_that_takes_them(store, cache):
    w, initial = cache.watch("ns", None, cache.rv)
    assert initial == []
    sink = RecordingSink()
    w.attach(sink)
    rvs = await write(store, cache, ["a", "b", "c"])
    assert sink.rvs == rvs
    assert w.pending == [] and not w.wake.is_set()   # the handler was not needed


async def test_events_of_one_loop_iteration_go_out_in_one_write(cache):
    w, _ = cache.watch(None, None, cache.rv)
    sink = RecordingSink()
    w.attach(sink)
    for rv, name in ((cache.rv + 1, "x"), (cache.rv + 2, "y"), (cache.rv + 3, "z")):
        cache._apply(storage_event(rv, name))
    assert sink.sends == []                          # not before the loop turns
    await asyncio.sleep(0)
    assert [[ev.entry.name for ev in batch] for batch in sink.sends] == [["x", "y", "z"]]


async def test_blocked_sink_leaves_events_to_the_handler_in_order(store, cache):
    w, _ = cache.watch("ns", None, cache.rv)
    sink = RecordingSink()
    w.attach(sink)
    first = await write(store, cache, ["a"])
    sink.paused = True
    held = await write(store, cache, ["b", "c", "d"])
    assert sink.rvs == first
    assert [ev.rv for ev in w.pending] == held
    assert w.wake.is_set()                           # the handler must wait for the drain
    # While events pend, later ones queue behind them rather than overtaking.
    sink.paused = False
    w.wake.clear()
    more = await write(store, cache, ["e"])
    assert sink.rvs == first and [ev.rv for ev in w.pending] == held + more
    w.flush()                                        # what the handler does after the drain
    assert sink.rvs == first + held + more and w.pending == []
    last = await write(store, cache, ["f"])          # and the fan-out writes directly again
    assert sink.rvs == first + held + more + last


async def test_watcher_that_falls_behind_is_cut_off_with_what_it_had(store, cache):
    w, _ = cache.watch("ns", None, cache.rv)
    w.limit = 3
    other, _ = cache.watch("ns", None, cache.rv)
    sink, other_sink = RecordingSink(), RecordingSink()
    w.attach(sink)
    other.attach(other_sink)
    sink.paused = True
    rvs = await write(store, cache, ["a", "b", "c", "d", "e"])
    assert w.overflowed and w.closed and w.wake.is_set()
    assert w not in cache.watchers
    assert [ev.rv for ev in w.pending] == rvs[:3]    # a prefix: the client resumes after it
    sink.paused = False
    w.flush()
    assert sink.sends == []                          # a closed watcher's events are the handler's
    assert other_sink.rvs == rvs                     # the others are not held up


async def test_gone_connection_ends_the_watch(store, cache):
    w, _ = cache.watch("ns", None, cache.rv)
    sink = RecordingSink()
    w.attach(sink)
    sink.gone = True
    await write(store, cache, ["a"])
    assert w.closed and w.wake.is_set()
    assert w not in cache.watchers


async def test_unwatched_watcher_gets_no_more_writes(store, cache):
    w, _ = cache.watch("ns", None, cache.rv)
    sink = RecordingSink()
    w.attach(sink)
    cache._apply(storage_event(cache.rv + 1, "x"))   # pending, flush not run yet
    cache.unwatch(w)
    await asyncio.sleep(0)
    assert sink.sends == [] and w.sink is None


async def test_selector_watchers_get_retyped_events(store, cache):
    selected, _ = cache.watch("ns", lambda e: e.labels.get("x") == "1", cache.rv)
    everything, _ = cache.watch("ns", None, cache.rv)
    s1, s2 = RecordingSink(), RecordingSink()
    selected.attach(s1)
    everything.attach(s2)
    key = CONFIGMAPS.storage_key("ns", "a")
    kv = await store.create(key, configmap("a", {"x": "1"}))
    kv = await store.update(key, configmap("a", {"x": "2"}), expected_revision=kv.mod_revision)
    kv = await store.update(key, configmap("a", {"x": "1"}), expected_revision=kv.mod_revision)
    assert await cache.wait_for_rv(kv.mod_revision, 5.0)
    await asyncio.sleep(0)
    seen = [ev for batch in s1.sends for ev in batch]
    assert [ev.type for ev in seen] == ["ADDED", "DELETED", "ADDED"]
    assert [ev.type for batch in s2.sends for ev in batch] == ["ADDED", "MODIFIED", "MODIFIED"]
    assert [orjson.loads(ev.line)["type"] for ev in seen] == ["ADDED", "DELETED", "ADDED"]


def test_chunked_sink_frames_each_event_and_respects_flow_control():
    cache_events = []
    for rv, name in ((5, "a"), (6, "b")):
        data = codec.with_resource_version(configmap(name), rv)
        entry = Entry(CONFIGMAPS.storage_key("ns", name), "ns", name, rv, data)
        cache_events.append(CacheEvent("ADDED", entry, None, rv))
    t = RecordingTransport()
    paused = [False]
    sink = ChunkedSink(t, lambda: paused[0])
    assert sink.send(cache_events)
    assert t.writes == 1                             # one write for the whole batch
    body = bytes(t.data)
    lines = []
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        assert rest[size:size + 2] == b"\r\n"
        lines.append(rest[:size])
        body = rest[size + 2:]
    assert lines == [ev.line for ev in cache_events]
    assert [orjson.loads(x)["object"]["metadata"]["name"] for x in lines] == ["a", "b"]
    assert not sink.blocked()
    paused[0] = True
    t.buffered = 70_000
    assert sink.blocked()
    t.closing = True
    assert not sink.send(cache_events[:1]) and t.writes == 1
    # A Table watch renders its own line per event.
    t2 = RecordingTransport()
    table = ChunkedSink(t2, lambda: False, render=lambda ev: b'{"type":"%s","n":%d}\n' % (ev.type.encode(), ev.rv))
    table.send(cache_events)
    assert bytes(t2.data) == b'17\r\n{"type":"ADDED","n":5}\n\r\n17\r\n{"type":"ADDED","n":6}\n\r\n'
