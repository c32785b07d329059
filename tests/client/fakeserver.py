"""A small in-memory API server speaking the Kubernetes wire protocol, for client unit tests.

It is a fake at our own boundary: just enough of the REST API (list with paging and label
selectors, get, create, update with resourceVersion compare-and-swap, merge patch, delete,
status subresource, watch with bookmarks and 410 after compaction) for the client, informer,
leader election and event recorder to be tested against real HTTP. Test hooks let a test compact
history, cut watch streams, send bookmarks, and count requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import uuid
from collections import defaultdict
from typing import Any

import orjson
from aiohttp import web

from api import errors, registry
from api.selectors import parse_label_selector


def _status(err: errors.StatusError) -> web.Response:
    return web.Response(status=err.code, body=orjson.dumps(err.to_status()), content_type="application/json")


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


class _Watcher:
    def __init__(self, plural: str, namespace: str | None, selector: Any):
        self.plural = plural
        self.namespace = namespace
        self.selector = selector
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def wants(self, plural: str, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if plural != self.plural:
            return False
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        return self.selector.matches(meta.get("labels") or {})


class FakeAPIServer:
    def __init__(self) -> None:
        self.rv = itertools.count(100)
        self.current_rv = 99
        # plural -> key (ns/name or name) -> object
        self.objects: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.history: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, plural, type, obj)
        self.compacted_rv = 0
        self.watchers: list[_Watcher] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_next: list[errors.StatusError] = []
        # When set, every request is answered by this handler instead (to inspect raw requests).
        self.override: Any = None
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self.close_watches()
        if self.runner is not None:
            await self.runner.cleanup()

    # -- test hooks ------------------------------------------------------------------------

    def compact(self) -> None:
        """Forget history: watches from any earlier resourceVersion now get 410."""
        self.compacted_rv = self.current_rv
        self.history.clear()

    def close_watches(self) -> None:
        for w in self.watchers:
            w.queue.put_nowait(None)

    def send_bookmarks(self) -> None:
        for w in self.watchers:
            w.queue.put_nowait({"type": "BOOKMARK", "object": {
                "kind": "Bookmark", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self.current_rv)}}})

    def expire_watches(self) -> None:
        """Send every open watch a 410 ERROR event, as a server that lost its history would."""
        for w in self.watchers:
            w.queue.put_nowait({"type": "ERROR", "object": errors.Gone("too old resource version").to_status()})

    def count(self, method: str, path_part: str = "", watch: bool | None = None) -> int:
        n = 0
        for m, p, q in self.requests:
            if m == method and path_part in p and (watch is None or (q.get("watch") == "true") == watch):
                n += 1
        return n

    # -- storage ---------------------------------------------------------------------------

    def _record(self, plural: str, etype: str, obj: dict[str, Any]) -> None:
        rv = next(self.rv)
        self.current_rv = rv
        obj["metadata"]["resourceVersion"] = str(rv)
        self.history.append((rv, plural, etype, copy.deepcopy(obj)))
        for w in self.watchers:
            if w.wants(plural, obj):
                w.queue.put_nowait({"type": etype, "object": copy.deepcopy(obj)})

    def put(self, info: registry.ResourceInfo, obj: dict[str, Any], etype: str | None = None) -> dict[str, Any]:
        """Store an object directly (test setup), emitting the matching watch event."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if info.namespaced:
            meta.setdefault("namespace", "default")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        obj.setdefault("apiVersion", info.api_version)
        obj.setdefault("kind", info.kind)
        key = self._key(info, meta.get("namespace"), meta["name"])
        existed = key in self.objects[info.plural]
        self.objects[info.plural][key] = obj
        self._record(info.plural, etype or ("MODIFIED" if existed else "ADDED"), obj)
        return copy.deepcopy(obj)

    def remove(self, info: registry.ResourceInfo, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.objects[info.plural].pop(self._key(info, namespace, name))
        self._record(info.plural, "DELETED", obj)
        return copy.deepcopy(obj)

    def put_silently(self, info: registry.ResourceInfo, obj: dict[str, Any]) -> None:
        """Change state without any watch event (as if the events were lost to compaction)."""
        watchers, self.watchers = self.watchers, []
        try:
            self.put(info, obj)
        finally:
            self.watchers = watchers

    def remove_silently(self, info: registry.ResourceInfo, namespace: str | None, name: str) -> None:
        watchers, self.watchers = self.watchers, []
        try:
            self.remove(info, namespace, name)
        finally:
            self.watchers = watchers

    @staticmethod
    def _key(info: registry.ResourceInfo, namespace: str | None, name: str) -> str:
        return f"{namespace}/{name}" if info.namespaced else name

    # -- HTTP ------------------------------------------------------------------------------

    def _route(self, path: str) -> tuple[registry.ResourceInfo, str | None, str | None, str | None]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"]:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.NotFound(f"no route {path}")
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and registry.lookup(group, version, rest[2]):
            namespace, rest = rest[1], rest[2:]
        info = registry.lookup(group, version, rest[0])
        if info is None:
            raise errors.NotFound(f"the server could not find the requested resource ({path})")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return info, namespace, name, sub

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append((request.method, request.path, query))
        if self.override is not None:
            return await self.override(request)
        try:
            if self.fail_next:
                raise self.fail_next.pop(0)
            info, ns, name, sub = self._route(request.path)
            if request.method == "GET" and name is None:
                if query.get("watch") == "true":
                    return await self._watch(request, info, ns, query)
                return self._list(info, ns, query)
            if request.method == "GET":
                return self._json(self._get(info, ns, name))
            if request.method == "POST" and name is None:
                body = orjson.loads(await request.read())
                return self._json(self._create(info, ns, body), 201)
            if request.method == "PUT":
                body = orjson.loads(await request.read())
                return self._json(self._update(info, ns, name, body, sub))
            if request.method == "PATCH":
                body = orjson.loads(await request.read())
                if request.content_type != "application/merge-patch+json":
                    raise errors.UnsupportedMediaType(f"fake server: {request.content_type}")
                current = self._get(info, ns, name)
                merged = _merge(current, body)
                merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                return self._json(self._update(info, ns, name, merged, sub))
            if request.method == "DELETE" and name is not None:
                obj = self._get(info, ns, name)
                return self._json(self.remove(info, ns, name) if obj else obj)
            raise errors.MethodNotAllowed(f"fake server: {request.method} {request.path}")
        except errors.StatusError as e:
            return _status(e)

    @staticmethod
    def _json(obj: Any, status: int = 200) -> web.Response:
        return web.Response(status=status, body=orjson.dumps(obj), content_type="application/json")

    def _get(self, info: registry.ResourceInfo, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.objects[info.plural].get(self._key(info, ns, name))
        if obj is None:
            raise errors.not_found(info.plural, name, info.group)
        return copy.deepcopy(obj)

    def _create(self, info: registry.ResourceInfo, ns: str | None, body: dict[str, Any]) -> dict[str, Any]:
        meta = body.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise errors.invalid(info.kind, "", [errors.Cause("FieldValueRequired", "Required value",
                                                               "metadata.name")])
        if info.namespaced:
            meta["namespace"] = ns or meta.get("namespace") or "default"
        if self._key(info, meta.get("namespace"), meta["name"]) in self.objects[info.plural]:
            raise errors.already_exists(info.plural, meta["name"], info.group)
        meta.pop("resourceVersion", None)
        return self.put(info, body, "ADDED")

    def _update(self, info: registry.ResourceInfo, ns: str | None, name: str, body: dict[str, Any],
                sub: str | None) -> dict[str, Any]:
        current = self._get(info, ns, name)
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(info.plural, name, info.group)
        if sub == "status":
            new = current
            new["status"] = body.get("status")
        else:
            new = body
            new["metadata"]["uid"] = current["metadata"]["uid"]
            if info.has_status:
                new["status"] = current.get("status")
        new["metadata"]["name"] = name
        return self.put(info, new, "MODIFIED")

    def _list(self, info: registry.ResourceInfo, ns: str | None, query: dict[str, str]) -> web.Response:
        selector = parse_label_selector(query.get("labelSelector"))
        items = [copy.deepcopy(o) for k, o in sorted(self.objects[info.plural].items())
                 if (not ns or o["metadata"].get("namespace") == ns)
                 and selector.matches(o["metadata"].get("labels") or {})]
        # A continue token is "<offset>:<resourceVersion of the first page>".
        start, _, snapshot = (query.get("continue") or "0:").partition(":")
        snapshot = snapshot or str(self.current_rv)
        start_i, limit = int(start), int(query.get("limit") or 0)
        meta: dict[str, Any] = {"resourceVersion": snapshot}
        if limit and start_i + limit < len(items):
            meta["continue"] = f"{start_i + limit}:{snapshot}"
            page = items[start_i:start_i + limit]
        else:
            page = items[start_i:]
        return self._json({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": meta,
                           "items": page})

    async def _watch(self, request: web.Request, info: registry.ResourceInfo, ns: str | None,
                     query: dict[str, str]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        rv = int(query.get("resourceVersion") or 0)
        watcher = _Watcher(info.plural, ns, parse_label_selector(query.get("labelSelector")))
        if rv and rv < self.compacted_rv:
            gone = errors.Gone(f"too old resource version: {rv} ({self.compacted_rv})")
            await resp.write(orjson.dumps({"type": "ERROR", "object": gone.to_status()}) + b"\n")
            return resp
        for hrv, plural, etype, obj in self.history:
            if hrv > rv and watcher.wants(plural, obj):
                watcher.queue.put_nowait({"type": etype, "object": copy.deepcopy(obj)})
        self.watchers.append(watcher)
        timeout = float(query.get("timeoutSeconds") or 3600)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = await watcher.queue.get()
                    if event is None:
                        break
                    if event["type"] == "BOOKMARK" and query.get("allowWatchBookmarks") != "true":
                        continue
                    await resp.write(orjson.dumps(event) + b"\n")
                    if event["type"] == "ERROR":
                        break
        except (TimeoutError, ConnectionResetError):
            pass
        finally:
            with contextlib.suppress(ValueError):
                self.watchers.remove(watcher)
        return resp


def make_pod(name: str, namespace: str = "default", labels: dict[str, str] | None = None,
             node: str | None = None, **spec: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
                           "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}
    if node:
        pod["spec"]["nodeName"] = node
    return pod


@contextlib.asynccontextmanager
async def running_fake() -> Any:
    server = FakeAPIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
