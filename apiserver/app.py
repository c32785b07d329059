"""The API server process: storage, watch caches, admission and routes put together.

``opened(config)`` opens storage, fills the watch caches and creates the namespaces every cluster
starts with; ``run(config)`` serves requests over them until SIGTERM or SIGINT. Requests go to one
handler on aiohttp's low-level server: the API does its own routing (``parse_path``), so the
application layer's router and middleware chain would only add cost to every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import orjson
import structlog
from aiohttp import web

from api import defaults, registry, schema, selectors
from api.errors import NotFound, StatusError
from apiserver import discovery, metrics, openapi
from apiserver.admission import Admission
from apiserver.handlers import ResourceHandler, json_response, parse_path, status_response
from apiserver.objects import ObjectStore
from apiserver.storage import open_backend
from apiserver.watchcache import WatchCache

log = structlog.get_logger("apiserver")

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class Config:
    storage_url: str                       # sqlite:///path or etcd://host:port[,host:port]
    bind_address: str = "127.0.0.1"
    port: int = 6443
    service_cidr: str = "10.96.0.0/12"
    compact_interval: float = 300.0        # seconds between compactions (0: never)
    compact_keep: int = 10_000             # revisions of history kept for watches to resume
    watch_cache_size: int = 20_000         # events per resource kept in memory for watch resumption


@contextlib.asynccontextmanager
async def opened(config: Config) -> AsyncIterator[ResourceHandler]:
    """Storage, watch caches and admission, ready to serve; closed on exit."""
    backend = await open_backend(config.storage_url)
    caches: dict[str, WatchCache] = {}
    for r in registry.RESOURCES:
        caches[r.storage_prefix()] = WatchCache(r, backend, _fields_getter(r.kind),
                                                 ring_size=config.watch_cache_size)
    await asyncio.gather(*(c.start() for c in caches.values()))
    async def get(r: registry.ResourceInfo, ns: str | None, name: str) -> dict | None:
        key = r.storage_key(ns, name)
        e = caches[r.storage_prefix()].get(key)
        if e is not None:
            return e.object()
        kv = await backend.get(key)            # not in the cache yet: a write may be in flight
        return orjson.loads(kv.value) if kv else None

    def peek(r: registry.ResourceInfo, ns: str | None, name: str) -> bytes | None:
        e = caches[r.storage_prefix()].get(r.storage_key(ns, name))
        return e.data if e is not None else None

    async def list_all(r: registry.ResourceInfo, containing: bytes | None = None) -> list[dict]:
        entries = caches[r.storage_prefix()].objects.values()
        if containing is not None:
            return [e.object() for e in entries if containing in e.data]
        return [e.object() for e in entries]

    async def catch_up(r: registry.ResourceInfo, rev: int) -> None:
        # Bounded: a cache that stays behind (a stalled watch) must not hang admission; the
        # decision then falls back to what the cache holds, as before.
        await caches[r.storage_prefix()].wait_for_rv(rev, 5.0)

    admission = Admission(get, list_all, config.service_cidr, peek=peek, catch_up=catch_up)
    def cached(r: registry.ResourceInfo, key: str) -> tuple[bytes, int] | None:
        e = caches[r.storage_prefix()].get(key)
        return (e.data, e.rv) if e is not None else None

    objects = ObjectStore(backend, admission, cached)
    handler = ResourceHandler(backend, objects, caches)
    await _bootstrap(objects)
    # The OpenAPI documents take ~0.1 s to build; do it now, off the loop, not on the first request.
    await asyncio.to_thread(openapi.index)
    # Validators compile in 1-2 s per kind (milliseconds once in the disk cache): warm them in the
    # background so that first writes of a kind rarely compile on the loop.
    # A daemon thread, so that a SIGTERM during a first-ever compile does not wait for it.
    threading.Thread(target=_warm, args=([(r.group, r.version, r.kind) for r in registry.RESOURCES],),
                     name="apiserver:warm", daemon=True).start()
    gc.freeze()
    if config.compact_interval > 0:
        backend.start_compactor(config.compact_interval, config.compact_keep)
    log.info("apiserver ready", storage=config.storage_url.split("://")[0])
    try:
        yield handler
    finally:
        await asyncio.gather(*(c.stop() for c in caches.values()))
        await backend.close()


def _warm(kinds: list[tuple[str, str, str]]) -> None:
    schema.warm(kinds)
    gc.freeze()


# What start-up builds (schemas, validators, OpenAPI documents, the caches' first objects) lives as
# long as the process; gc.freeze() takes it out of the cyclic collector's reach, so that full
# collections scan only what requests create and do not stall the loop for long.


def _fields_getter(kind: str):
    """The selectable field values of an object, computed once when the cache takes it in."""
    getters = [(f, selectors.field_getter(kind, f)) for f in sorted(selectors.supported_fields(kind))]

    def fields_of(obj: dict) -> dict[str, str]:
        return {f: get(obj) for f, get in getters}
    return fields_of


def _bootstrap_objects() -> list[tuple[registry.ResourceInfo, dict]]:
    ns = registry.lookup("", "v1", "namespaces")
    pc = registry.lookup("scheduling.k8s.io", "v1", "priorityclasses")
    out = [(ns, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}) for n in INITIAL_NAMESPACES]
    for name, value in defaults.SYSTEM_PRIORITY_CLASSES.items():
        out.append((pc, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                         "value": value, "description": "Used for system critical pods that must not be moved "
                         "from their current node." if "node" in name else "Used for system critical pods that "
                         "must run in the cluster, but can be moved to another node if necessary."}))
    return out


async def _bootstrap(objects: ObjectStore) -> None:
    """What every cluster has from the start (namespaces, system priority classes), created once;
    later starts find them and do nothing."""
    from api.errors import AlreadyExists

    for r, obj in _bootstrap_objects():
        try:
            await objects.get(r, None, obj["metadata"]["name"])
        except NotFound:
            with contextlib.suppress(AlreadyExists):
                await objects.create(r, None, obj, manager="navarch-apiserver")


def request_handler(handler: ResourceHandler) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """The one coroutine every request goes to: dispatch, Status errors, metrics."""
    return functools.partial(_errors_and_metrics, handler=handler)


async def _errors_and_metrics(request: web.BaseRequest, handler: ResourceHandler) -> web.StreamResponse:
    start = time.perf_counter()
    code = 500
    try:
        resp = await _dispatch(request, handler)
        code = resp.status
        return resp
    except StatusError as e:
        code = e.code
        if e.code >= 500:
            log.warning("request failed", method=request.method, path=request.path, code=e.code, error=e.message)
        return status_response(e)
    except web.HTTPException as e:
        code = e.status
        raise
    except (ConnectionResetError, asyncio.CancelledError):
        code = 499
        raise
    except Exception as e:
        log.exception("internal error", method=request.method, path=request.path)
        from api.errors import InternalError
        return status_response(InternalError(f"Internal error occurred: {type(e).__name__}: {e}"))
    finally:
        _observe(request, code, time.perf_counter() - start)


_NO_INFO_LABELS = {m: (m, "", "", "", "", "", "", "apiserver") for m in
                   ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}


def _observe(request: web.BaseRequest, code: int, seconds: float) -> None:
    info = request.get("info")
    q = request.query
    if info is None:
        labels = _NO_INFO_LABELS.get(request.method) or (request.method, "", "", "", "", "", "", "apiserver")
    else:
        r = info.resource
        is_watch = q.get("watch", "").lower() in ("true", "1")
        verb = metrics.verb_of(request.method, info.name is None, is_watch)
        if request.method == "PATCH" and request.headers.get("Content-Type", "").startswith(
                "application/apply-patch"):
            verb = "APPLY"
        scope = "cluster" if info.namespace is None and r.namespaced and info.name is None else (
            "namespace" if r.namespaced else "cluster")
        if info.name is not None:
            scope = "resource"
        labels = (verb, "All" if q.get("dryRun") else "", r.group, r.version, r.plural, info.subresource, scope,
                  "apiserver")
    metrics.observe_request(labels, str(code), seconds)
    if _debug_enabled():
        log.debug("request", method=request.method, path=request.path_qs, code=code, ms=round(seconds * 1000, 2))


_debug: list[bool] = []


def _debug_enabled() -> bool:
    """Whether debug lines are logged; asked once (the level is configured before serving)."""
    if not _debug:
        _debug.append(log.is_enabled_for(logging.DEBUG))
    return _debug[0]


async def _dispatch(request: web.BaseRequest, handler: ResourceHandler) -> web.StreamResponse:
    path = request.path.rstrip("/") or "/"
    accept = request.headers.get("Accept", "")
    if request.method == "GET":
        if path == "/version":
            return json_response(discovery.version_info())
        if path in ("/healthz", "/readyz", "/livez") or path.startswith(("/healthz/", "/readyz/", "/livez/")):
            return web.Response(text="ok")
        if path == "/metrics":
            return web.Response(body=metrics.exposition(), content_type="text/plain",
                                charset="utf-8")
        if path == "/api":
            if discovery.wants_aggregated(accept):
                return _aggregated(core=True)
            return json_response(discovery.api_versions(request.host))
        if path == "/apis":
            if discovery.wants_aggregated(accept):
                return _aggregated(core=False)
            return json_response(discovery.api_group_list())
        if path == "/openapi/v3":
            return json_response(openapi.index())
        if path.startswith("/openapi/v3/"):
            return web.Response(body=openapi.document(path.removeprefix("/openapi/v3/")),
                                content_type="application/json")
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            return json_response(discovery.api_resource_list("", parts[1]))
        if parts[0] == "apis" and len(parts) == 2:
            return json_response(discovery.api_group(parts[1]))
        if parts[0] == "apis" and len(parts) == 3:
            return json_response(discovery.api_resource_list(parts[1], parts[2]))
    info = parse_path(path)
    if info is None:
        raise NotFound("the server could not find the requested resource")
    request["info"] = info
    return await handler.handle(request, info)


def _aggregated(core: bool) -> web.Response:
    return web.Response(body=orjson.dumps(discovery.aggregated(core)),
                        headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE})


async def run(config: Config) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, finish, close storage."""
    # Each request allocates a few hundred containers; collecting the youngest generation every
    # 700 allocations (the default) rescans every request in flight many times over.
    gc.set_threshold(10_000, 10, 10)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with opened(config) as handler:
        runner = web.ServerRunner(web.Server(request_handler(handler), access_log=None),
                                  handle_signals=False, shutdown_timeout=5)
        await runner.setup()
        site = web.TCPSite(runner, config.bind_address, config.port, backlog=1024, reuse_address=True)
        await site.start()
        log.info("serving", address=f"http://{config.bind_address}:{config.port}")
        await stop.wait()
        log.info("shutting down")
        await site.stop()                   # no new connections
        for cache in handler.caches.values():   # end open watches so their handlers return at once
            cache.close_watchers()
        await runner.cleanup()
