"""Informers: a local, watch-fed cache of one resource, and event handlers on its changes.

An ``Informer`` LISTs the resource (in pages), then WATCHes from the list's resourceVersion with
bookmarks. When a watch ends it reconnects from the last resourceVersion it saw; when the server
answers 410 Gone it lists again and delivers the difference to its handlers: deletes for objects
that vanished meanwhile, updates for those that changed, adds for new ones. Transport errors back
off exponentially (in the informer's clock) and retry.

The cache (``Store``) lives on the event loop, so it needs no locks: look up by key
(``namespace/name``, or ``name`` for cluster-scoped objects), list everything, list a namespace,
select by labels, or use custom indexes (``add_indexer(name, fn)`` then ``by_index``).

Objects in the cache, and the objects handed to handlers, are shared: never mutate them. Use
``get_copy`` (or ``copy_object``) to obtain one that is yours to change.

Handlers (``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``; plain functions or
coroutine functions) each get their own queue and task, so a slow handler never holds up the
watch or other handlers, and each sees events in the order the cache applied them. A handler
added to a running informer first receives an add for every object already cached.

``SharedInformerFactory`` hands out one informer per (resource, namespace, selectors) so that
several controllers in one process share a single watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog

from api import errors
from api.registry import ResourceInfo
from api.selectors import LabelSelector, from_label_selector, from_set, parse_label_selector
from client.clock import REAL, Clock
from client.rest import Client, Resource, resource_info

log = structlog.get_logger("client.informer")

IndexFunc = Callable[[dict[str, Any]], Iterable[str]]
NAMESPACE_INDEX = "namespace"


def object_key(obj: dict[str, Any]) -> str:
    """``namespace/name`` for namespaced objects, ``name`` for cluster-scoped ones."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else meta.get("name", "")


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def copy_object(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON-like object (an orjson round trip: faster than ``copy.deepcopy``)."""
    return orjson.loads(orjson.dumps(obj))


def strip_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """An informer ``transform`` dropping ``metadata.managedFields`` (often half an object's size)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return obj


def _namespace_index(obj: dict[str, Any]) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def _to_selector(selector: str | dict[str, Any] | LabelSelector | None) -> LabelSelector:
    if selector is None:
        return LabelSelector.everything()
    if isinstance(selector, LabelSelector):
        return selector
    if isinstance(selector, str):
        return parse_label_selector(selector)
    if "matchLabels" in selector or "matchExpressions" in selector:
        return from_label_selector(selector)
    return from_set(selector)


class Store:
    """A keyed cache of objects with secondary indexes. Not thread-safe; loop-local by design.

    Returned objects are the cached ones: read them, never mutate them (see ``get_copy``).
    """

    def __init__(self, indexers: dict[str, IndexFunc] | None = None):
        self._items: dict[str, dict[str, Any]] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: _namespace_index}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        for name, fn in (indexers or {}).items():
            self.add_indexer(name, fn)

    # -- reads -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def get(self, key: str) -> dict[str, Any] | None:
        return self._items.get(key)

    def get_by_name(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def get_copy(self, key: str) -> dict[str, Any] | None:
        obj = self._items.get(key)
        return None if obj is None else copy_object(obj)

    def keys(self) -> list[str]:
        return list(self._items)

    def list(self, namespace: str | None = None,
             selector: str | dict[str, Any] | LabelSelector | None = None) -> list[dict[str, Any]]:
        """All cached objects, optionally only one namespace's and only those matching labels."""
        if namespace is not None:
            objs: Iterable[dict[str, Any]] = self.by_index(NAMESPACE_INDEX, namespace)
        else:
            objs = self._items.values()
        if selector is None:
            return list(objs)
        sel = _to_selector(selector)
        return [o for o in objs if sel.matches((o.get("metadata") or {}).get("labels") or {})]

    def by_namespace(self, namespace: str) -> list[dict[str, Any]]:
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        try:
            keys = self._indices[index].get(value, ())
        except KeyError:
            raise KeyError(f"no index named {index!r}") from None
        return [self._items[k] for k in keys]

    def index_keys(self, index: str, value: str) -> list[str]:
        return list(self._indices[index].get(value, ()))

    # -- writes (the informer's) -----------------------------------------------------------

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        """Add an index; ``fn(obj)`` returns the index values the object files under."""
        if name in self._indexers:
            raise ValueError(f"index {name!r} already exists")
        self._indexers[name] = fn
        index: dict[str, set[str]] = {}
        self._indices[name] = index
        for key, obj in self._items.items():
            for value in fn(obj) or ():
                index.setdefault(value, set()).add(key)

    def put(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Insert or replace; returns the object it replaced."""
        key = object_key(obj)
        old = self._items.get(key)
        self._items[key] = obj
        for name, fn in self._indexers.items():
            index = self._indices[name]
            values = fn(obj) or ()
            if old is not None:
                old_values = fn(old) or ()
                if old_values == values:
                    continue  # the common case: an update that does not move the object
                for value in old_values:
                    if value not in values:
                        keys = index.get(value)
                        if keys is not None:
                            keys.discard(key)
                            if not keys:
                                del index[value]
            for value in values:
                keys = index.get(value)
                if keys is None:
                    index[value] = {key}
                else:
                    keys.add(key)
        return old

    def delete(self, key: str) -> dict[str, Any] | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old

    def _unindex(self, key: str, obj: dict[str, Any]) -> None:
        for name, fn in self._indexers.items():
            index = self._indices[name]
            for value in fn(obj) or ():
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


# Kept as a separate name: client-go calls the indexed store an Indexer.
Indexer = Store


@dataclass
class Handler:
    on_add: Callable[[dict[str, Any]], Any] | None = None
    on_update: Callable[[dict[str, Any], dict[str, Any]], Any] | None = None
    on_delete: Callable[[dict[str, Any]], Any] | None = None


class _Listener:
    """Delivers events to one handler from its own queue, in order."""

    def __init__(self, handler: Handler, name: str):
        self.handler = handler
        self.queue: asyncio.Queue[tuple[str, tuple[dict[str, Any], ...]]] = asyncio.Queue()
        self.name = name
        self.task = asyncio.get_running_loop().create_task(self._run(), name=name)

    def ensure_running(self) -> None:
        if self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    def push(self, kind: str, *objs: dict[str, Any]) -> None:
        self.queue.put_nowait((kind, objs))

    async def _run(self) -> None:
        while True:
            kind, objs = await self.queue.get()
            fn = getattr(self.handler, f"on_{kind}")
            try:
                if fn is not None:
                    result = fn(*objs)
                    if inspect.isawaitable(result):
                        await result
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("informer handler failed", handler=f"on_{kind}")
            finally:
                self.queue.task_done()

    async def idle(self) -> None:
        await self.queue.join()


class Informer:
    """A list-then-watch cache of one resource with event handlers (see the module docstring)."""

    def __init__(self, client: Client, resource: Resource, namespace: str | None = None, *,
                 label_selector: str | dict[str, str] | None = None, field_selector: str | None = None,
                 resync: float | None = None, indexers: dict[str, IndexFunc] | None = None,
                 page_size: int = 500, clock: Clock = REAL, watch_timeout: tuple[int, int] = (300, 600),
                 backoff: tuple[float, float] = (0.8, 30.0),
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        self.client = client
        # Applied to every object before it is cached, e.g. ``strip_managed_fields`` to save memory.
        self.transform = transform
        self.resource: ResourceInfo = resource_info(resource)
        self.namespace = namespace if self.resource.namespaced else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync = resync
        self.page_size = page_size
        self.clock = clock
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        self.store = Store(indexers)
        self.last_resource_version: str | None = None
        self.lists = 0           # LISTs done (first list and relists)
        self.watches = 0         # WATCH requests opened
        self.events = 0          # watch events applied
        self._listeners: list[_Listener] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self._stopped = False

    # -- public ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.resource.plural}.{self.resource.group}" if self.resource.group else self.resource.plural

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    def add_event_handler(self, handler: Handler | None = None, *, on_add: Any = None, on_update: Any = None,
                          on_delete: Any = None) -> Handler:
        """Register a handler (an object with on_add/on_update/on_delete, or the callables)."""
        handler = handler or Handler(on_add, on_update, on_delete)
        listener = _Listener(handler, f"informer-handler:{self.name}:{len(self._listeners)}")
        for obj in list(self.store._items.values()):
            listener.push("add", obj)
        self._listeners.append(listener)
        return handler

    def add_indexer(self, name: str, fn: IndexFunc) -> None:
        self.store.add_indexer(name, fn)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.store.get(key)

    def get_copy(self, key: str) -> dict[str, Any] | None:
        return self.store.get_copy(key)

    def list(self, namespace: str | None = None, selector: Any = None) -> list[dict[str, Any]]:
        return self.store.list(namespace, selector)

    def by_index(self, index: str, value: str) -> list[dict[str, Any]]:
        return self.store.by_index(index, value)

    def start(self) -> None:
        """Start listing and watching in a background task (idempotent)."""
        if self._task is None:
            self._stopped = False
            for listener in self._listeners:
                listener.ensure_running()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"informer:{self.name}")
            if self.resync:
                self._resync_task = asyncio.get_running_loop().create_task(
                    self._resync_loop(), name=f"informer-resync:{self.name}")

    async def stop(self) -> None:
        """Stop watching and delivering; the cache stays readable, and ``start()`` resumes."""
        self._stopped = True
        tasks = [t for t in (self._task, self._resync_task) if t is not None]
        tasks += [listener.task for listener in self._listeners]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = self._resync_task = None

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        """True once the first full list is in the cache; False if ``timeout`` (seconds of the
        informer's clock) passed first."""
        if self._synced.is_set():
            return True
        if timeout is None:
            await self._synced.wait()
            return True
        waiter = asyncio.ensure_future(self._synced.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
        return self._synced.is_set()

    async def wait_for_handlers(self) -> None:
        """Wait until every handler has been given every event delivered so far."""
        for listener in list(self._listeners):
            await listener.idle()

    # -- list and watch --------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        # Restarting a stopped informer resumes its watch; a 410 then relists as usual.
        need_list = self.last_resource_version is None
        while not self._stopped:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                started = self.clock.monotonic()
                if await self._watch() == 0 and self.clock.monotonic() - started < 1.0:
                    # A server that ends watches at once without a word must not be hammered.
                    await self.clock.sleep(self.backoff[0])
                failures = 0
            except errors.Gone:
                log.info("resourceVersion expired; relisting", informer=self.name,
                         resource_version=self.last_resource_version)
                need_list = True
                failures = 0
            except asyncio.CancelledError:
                raise
            except (errors.StatusError, aiohttp.ClientError, TimeoutError, OSError, ValueError) as e:
                failures += 1
                delay = min(self.backoff[0] * (2 ** min(failures - 1, 16)), self.backoff[1])
                delay *= 1 + random.random() * 0.2
                log.warning("list/watch failed; retrying", informer=self.name, error=str(e), delay=round(delay, 2))
                # A failed list must be retried; a failed watch resumes from where it was.
                await self.clock.sleep(delay)

    async def _list(self) -> None:
        items: dict[str, dict[str, Any]] = {}
        rv: str | None = None
        async for page in self.client.iter_pages(self.resource, self.namespace, page_size=self.page_size,
                                                 label_selector=self.label_selector,
                                                 field_selector=self.field_selector):
            if rv is None:
                rv = (page.get("metadata") or {}).get("resourceVersion")
            for obj in page.get("items") or []:
                # List items carry no kind; give cached objects one so consumers can rely on it.
                obj.setdefault("kind", self.resource.kind)
                obj.setdefault("apiVersion", self.resource.api_version)
                if self.transform is not None:
                    obj = self.transform(obj)
                items[object_key(obj)] = obj
        self.lists += 1
        self._replace(items)
        self.last_resource_version = rv
        self._synced.set()

    def _replace(self, items: dict[str, dict[str, Any]]) -> None:
        """Make the cache equal ``items`` and tell handlers the difference."""
        for key in [k for k in self.store._items if k not in items]:
            old = self.store.delete(key)
            if old is not None:
                self._dispatch("delete", old)
        for obj in items.values():
            old = self.store.put(obj)
            if old is None:
                self._dispatch("add", obj)
            elif _rv(old) != _rv(obj):
                self._dispatch("update", old, obj)

    async def _watch(self) -> int:
        """Watch until the stream ends; returns how many events (bookmarks included) it carried."""
        lo, hi = self.watch_timeout
        watch = self.client.watch(self.resource, self.namespace, resource_version=self.last_resource_version,
                                  label_selector=self.label_selector, field_selector=self.field_selector,
                                  allow_bookmarks=True, timeout_seconds=random.randint(lo, hi))
        self.watches += 1
        n = 0
        async with watch:
            async for etype, obj in watch:
                n += 1
                self._apply(etype, obj)
        return n

    def _apply(self, etype: str, obj: dict[str, Any]) -> None:
        rv = _rv(obj)
        if etype == "BOOKMARK":
            if rv:
                self.last_resource_version = rv
            return
        self.events += 1
        if self.transform is not None:
            obj = self.transform(obj)
        if etype in ("ADDED", "MODIFIED"):
            old = self.store.put(obj)
            if old is None:
                self._dispatch("add", obj)
            else:
                self._dispatch("update", old, obj)
        elif etype == "DELETED":
            self.store.delete(object_key(obj))
            self._dispatch("delete", obj)
        else:
            log.warning("unknown watch event type", informer=self.name, type=etype)
        if rv:
            self.last_resource_version = rv

    def _dispatch(self, kind: str, *objs: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener.push(kind, *objs)

    async def _resync_loop(self) -> None:
        assert self.resync
        while not self._stopped:
            await self.clock.sleep(self.resync)
            if self._synced.is_set():
                for obj in list(self.store._items.values()):
                    self._dispatch("update", obj, obj)


def _rv(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class SharedInformerFactory:
    """One informer per (resource, namespace, selectors), shared by every caller in a process."""

    def __init__(self, client: Client, *, namespace: str | None = None, resync: float | None = None,
                 clock: Clock = REAL, **informer_options: Any):
        self.client = client
        self.namespace = namespace
        self.resync = resync
        self.clock = clock
        self.informer_options = informer_options
        self._informers: dict[tuple[Any, ...], Informer] = {}
        self._started = False

    def informer_for(self, resource: Resource, namespace: str | None = None, *,
                     label_selector: str | None = None, field_selector: str | None = None) -> Informer:
        info = resource_info(resource)
        ns = namespace if namespace is not None else self.namespace
        key = (info.group, info.plural, ns if info.namespaced else None, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, info, ns, label_selector=label_selector,
                                field_selector=field_selector, resync=self.resync, clock=self.clock,
                                **self.informer_options)
            self._informers[key] = informer
            if self._started:
                informer.start()
        return informer

    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def start(self) -> None:
        """Start every informer asked for so far; later ones start as they are asked for."""
        self._started = True
        for informer in self._informers.values():
            informer.start()

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        results = await asyncio.gather(*(i.wait_for_cache_sync(timeout) for i in self._informers.values()))
        return all(results)

    async def stop(self) -> None:
        self._started = False
        with contextlib.suppress(Exception):
            await asyncio.gather(*(i.stop() for i in self._informers.values()))
