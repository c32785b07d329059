"""HTTP handlers for the resource API: paths, verbs, query options and response shapes.

One catch-all route parses ``/api/v1/...`` and ``/apis/<group>/<version>/...`` into a
``RequestInfo`` and dispatches on the verb. Reads at ``resourceVersion=0`` (or an explicit
version) and every watch are served by the watch cache; reads without a version are consistent
reads from storage, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiohttp import web

from api import fieldmanager, registry, schema
from api import patch as patches
from api.errors import (
    AlreadyExists,
    BadRequest,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    RequestEntityTooLarge,
    ServiceUnavailable,
    StatusError,
    UnsupportedMediaType,
    conflict,
    not_found,
)
from api.registry import ResourceInfo
from api.selectors import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector
from apiserver import codec, tables
from apiserver.objects import DeleteOptions, ObjectStore, require_object
from apiserver.storage import Backend, Compacted
from apiserver.watchcache import ChunkedSink, Entry, WatchCache

log = structlog.get_logger("apiserver")

TABLE_MARKER = "as=table"
DEFAULT_WATCH_TIMEOUT = 1800
BOOKMARK_INTERVAL = 60.0
CACHE_FRESHNESS_WAIT = 1.0
LIST_CHUNK_ITEMS = 1000      # items per piece of a large list written from storage


@dataclass
class RequestInfo:
    resource: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str = ""


# Kinds whose Kubernetes storage answers a finished DELETE with the deleted object, not a Status.
RETURNS_DELETED_OBJECT = {"Pod", "ServiceAccount", "Service", "Namespace"}


def parse_bool(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "1", "yes")


def parse_path(path: str) -> RequestInfo | None:
    """Resource paths; None for anything else (discovery and friends are routed separately)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    r = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        r = registry.lookup(group, version, rest[2])
        if r is not None and r.namespaced:
            namespace, rest = rest[1], rest[2:]
        else:
            r = None
    if r is None:
        r = registry.lookup(group, version, rest[0])
    if r is None:
        raise NotFound("the server could not find the requested resource", kind=rest[0])
    if r.namespaced and namespace is None and len(rest) > 1:
        # /api/v1/pods/x is not a thing: namespaced objects live under /namespaces/<ns>/
        raise NotFound("the server could not find the requested resource")
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        raise NotFound("the server could not find the requested resource")
    if sub and r.subresource(sub) is None and not (r.kind == "Namespace" and sub == "finalize"):
        raise NotFound("the server could not find the requested resource")
    return RequestInfo(r, namespace, name, sub)


def wants_table(request: web.Request) -> bool:
    return TABLE_MARKER in request.headers.get("Accept", "").replace(" ", "").lower()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return web.Response(body=data, status=status, content_type="application/json", headers=headers)


def status_response(err: StatusError) -> web.Response:
    headers = {"Retry-After": str(err.retry_after)} if err.retry_after else None
    return json_response(err.to_status(), err.code, headers)


def success_status(details: dict | None = None) -> dict:
    s: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        s["details"] = details
    return s


def encode_continue(rv: int, start: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"rv": rv, "start": start})).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        d = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(d["rv"]), str(d["start"])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest(f"invalid continue token: {token!r}") from None


class ResourceHandler:
    """Serves every resource path. State: storage, object semantics and the watch caches."""

    def __init__(self, backend: Backend, objects: ObjectStore, caches: dict[str, WatchCache]):
        self.backend = backend
        self.objects = objects
        self.caches = caches

    def cache(self, r: ResourceInfo) -> WatchCache:
        return self.caches[r.storage_prefix()]

    async def handle(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        method = request.method
        q = request.query
        if info.subresource:
            return await self._subresource(request, info)
        if method == "GET":
            if info.name is None:
                if parse_bool(q.get("watch")):
                    return await self.watch(request, info)
                return await self.list(request, info)
            if parse_bool(q.get("watch")):
                return await self.watch(request, info, name=info.name)
            return await self.get(request, info)
        if method == "POST" and info.name is None:
            return await self.create(request, info)
        if method == "PUT" and info.name is not None:
            return await self.update(request, info)
        if method == "PATCH" and info.name is not None:
            return await self.patch(request, info)
        if method == "DELETE":
            if info.name is None:
                return await self.delete_collection(request, info)
            return await self.delete(request, info)
        raise MethodNotAllowed("the server does not allow this method on the requested resource")

    # --- bodies and options ----------------------------------------------------------------

    async def read_body(self, request: web.Request) -> bytes:
        length = request.content_length
        if length is not None:
            if length > codec.MAX_BODY_BYTES:
                raise RequestEntityTooLarge("the request body is too large: limit is 3145728 bytes")
            if length == 0:
                return b""
            try:
                return await request.content.readexactly(length)
            except asyncio.IncompleteReadError:
                raise BadRequest("the request body ended before its Content-Length") from None
        chunks = []
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > codec.MAX_BODY_BYTES:
                raise RequestEntityTooLarge("the request body is too large: limit is 3145728 bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_object(self, request: web.Request, info: RequestInfo) -> tuple[dict, list[str] | None]:
        """The request's object with kind/apiVersion filled from the URL, and what
        ``check_object`` says about its unknown fields."""
        raw = await self.read_body(request)
        if not raw.strip():
            raise BadRequest("the request body is empty")
        obj = require_object(codec.decode_body(raw, request.headers.get("Content-Type")))
        return obj, self.check_object(request, info, obj)

    def check_object(self, request: web.Request, info: RequestInfo, obj: dict) -> list[str] | None:
        r = info.resource
        expect_kind = r.kind
        expect_version = r.api_version
        if info.subresource == "scale":
            expect_kind, expect_version = "Scale", "autoscaling/v1"
        obj.setdefault("kind", expect_kind)
        obj.setdefault("apiVersion", expect_version)
        if obj["kind"] != expect_kind or obj["apiVersion"] != expect_version:
            raise BadRequest(f'the API version in the data ({obj["apiVersion"]}) and kind ({obj["kind"]}) do not '
                             f'match the resource {expect_version}, Kind={expect_kind}')
        md = obj.get("metadata")
        if md is None:
            md = obj["metadata"] = {}
        if not isinstance(md, dict):
            raise BadRequest("metadata: must be an object")
        if info.namespace is not None and md.get("namespace") not in (None, "", info.namespace):
            raise BadRequest("the namespace of the provided object does not match the namespace sent on the "
                             "request")
        if info.name is not None and md.get("name") not in (None, "", info.name) and info.subresource != "binding":
            raise BadRequest(f'the name of the object ({md.get("name")}) does not match the name on the URL '
                             f'({info.name})')
        return self.field_validation(request, obj, "Scale" if info.subresource == "scale" else None)

    def field_validation(self, request: web.Request, obj: dict, scale_kind: str | None = None) -> list[str] | None:
        """Unknown fields by ``fieldValidation``: Strict refuses them here (400), before anything
        else looks at the object; Warn returns an empty list for the object store to fill with
        one warning per unknown field when it checks the object's structure (one pass for both);
        Ignore returns None."""
        mode = request.query.get("fieldValidation", "Warn")
        if mode not in ("Strict", "Warn", "Ignore"):
            raise BadRequest(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{mode}"')
        if mode == "Ignore" or scale_kind:
            return None
        if mode == "Warn":
            return []
        unknown = schema.unknown_fields(obj)
        if unknown:
            raise BadRequest(schema.strict_decoding_error(unknown))
        return None

    @staticmethod
    def dry_run(request: web.Request) -> bool:
        values = request.query.getall("dryRun", [])
        for v in values:
            if v != "All":
                raise BadRequest(f'Invalid dryRun value "{v}": valid values are "All"')
        return bool(values)

    def respond(self, request: web.Request, info: RequestInfo, obj: dict, status: int = 200,
                warnings: list[str] | None = None) -> web.Response:
        headers = _warning_headers(warnings)
        if wants_table(request):
            return json_response(tables.to_table(info.resource, [obj]), status, headers)
        return json_response(obj, status, headers)

    # --- reads -----------------------------------------------------------------------------

    def selectors(self, request: web.Request, info: RequestInfo):
        q = request.query
        label = parse_label_selector(q.get("labelSelector", ""))
        field = parse_field_selector(q.get("fieldSelector", ""), info.resource.kind)
        return label, field

    @staticmethod
    def entry_filter(label: LabelSelector, field: FieldSelector):
        if label.empty() and field.empty():
            return None
        reqs = [(r.field, r.operator != "!=", r.value) for r in field.requirements]

        def fields_match(e: Entry) -> bool:
            return all((e.fields.get(f, "") == v) == eq for f, eq, v in reqs)

        if field.empty():
            return lambda e: label.matches(e.labels)
        if label.empty():
            return fields_match
        return lambda e: label.matches(e.labels) and fields_match(e)

    async def get(self, request: web.Request, info: RequestInfo) -> web.Response:
        r = info.resource
        rv = request.query.get("resourceVersion", "")
        if rv:
            cache = self.cache(r)
            await self._fresh_enough(cache, rv)
            entry = cache.get(r.storage_key(info.namespace, info.name))
            if entry is None:
                raise not_found(r.plural, info.name, r.group)
            if wants_table(request):
                return json_response(tables.to_table(r, [entry.object()]))
            return json_response(entry.data)
        kv = await self.objects.get_kv(r, info.namespace, info.name)
        if wants_table(request):
            return json_response(tables.to_table(r, [codec.decode_stored(kv.value, kv.mod_revision)]))
        return json_response(codec.with_resource_version(kv.value, kv.mod_revision))

    async def _fresh_enough(self, cache: WatchCache, rv: str) -> bool:
        """For ``resourceVersion=N`` reads: True when the cache has reached N (0 means any)."""
        try:
            n = int(rv)
        except ValueError:
            raise BadRequest(f'invalid resourceVersion "{rv}"') from None
        await cache.ready()
        if n == 0:
            return True
        return await cache.wait_for_rv(n, CACHE_FRESHNESS_WAIT)

    async def list(self, request: web.Request, info: RequestInfo) -> web.Response:
        r = info.resource
        q = request.query
        label, field = self.selectors(request, info)
        try:
            limit = int(q.get("limit", "0") or 0)
        except ValueError:
            raise BadRequest(f'invalid limit "{q.get("limit")}"') from None
        token = q.get("continue", "")
        rv = q.get("resourceVersion", "")
        match = self.entry_filter(label, field)
        if token:
            if rv:
                raise BadRequest("specifying resource version is not allowed when using continue")
            list_rv, start = decode_continue(token)
            return await self._list_storage(request, info, match, limit, list_rv, start)
        if rv and await self._fresh_enough(self.cache(r), rv):
            cache = self.cache(r)
            entries, next_key = cache.list(info.namespace, match, limit=limit)
            cont = encode_continue(cache.rv, next_key) if next_key else ""
            return self._list_response(request, info, entries, cache.rv, cont,
                                       await self._remaining(info, next_key, cache.rv) if match is None else None)
        return await self._list_storage(request, info, match, limit, 0, "")

    async def _list_storage(self, request, info, match, limit, revision, start) -> web.Response:
        """A consistent list from storage at ``revision`` (0: now), in key order from ``start``."""
        r = info.resource
        prefix = r.storage_prefix(info.namespace)
        cache = self.cache(r)
        entries: list[Entry] = []
        # Without a selector or a table nothing needs an entry: the stored bytes go out as they are.
        raw = match is None and not wants_table(request)
        stored: list[tuple[bytes, int]] = []
        next_key = ""
        start_key = start or prefix
        batch = max(limit, 500) if limit else 5000
        try:
            while True:
                res = await self.backend.list(prefix, start_key=start_key, limit=batch, revision=revision)
                revision = res.revision
                for kv in res.items:
                    if raw:
                        if limit and len(stored) >= limit:
                            next_key = kv.key
                            break
                        stored.append((kv.value, kv.mod_revision))
                        continue
                    e = cache._entry(kv.key, kv.value, kv.mod_revision)
                    if match is None or match(e):
                        if limit and len(entries) >= limit:
                            next_key = kv.key
                            break
                        entries.append(e)
                if next_key or not res.more:
                    break
                start_key = res.items[-1].key + "\x00"
        except Compacted:
            raise Gone("The provided continue parameter is too old to display a consistent list result. "
                       "You can start a new list without the continue parameter.") from None
        cont = encode_continue(revision, next_key) if next_key else ""
        remaining = await self._remaining(info, next_key, revision) if match is None else None
        if raw:
            chunks = codec.stored_list_chunks(r.list_kind, r.api_version, revision, stored, cont, remaining,
                                              LIST_CHUNK_ITEMS)
            if len(stored) <= LIST_CHUNK_ITEMS:
                return json_response(next(chunks))
            # A large list is written piece by piece: the client reads while the rest is made.
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            for chunk in chunks:
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        return self._list_response(request, info, entries, revision, cont, remaining)

    async def _remaining(self, info: RequestInfo, next_key: str | None, revision: int) -> int | None:
        """``remainingItemCount`` of a cut list without selectors: the objects from ``next_key`` on,
        counted in the watch cache once it has reached the list's ``revision`` (or waited a
        moment for it: an estimate, as Kubernetes documents it)."""
        if not next_key:
            return None
        cache = self.cache(info.resource)
        await cache.wait_for_rv(revision, CACHE_FRESHNESS_WAIT)
        keys = cache.sorted_keys()
        prefix = info.resource.storage_prefix(info.namespace)
        lo = bisect.bisect_left(keys, next_key)
        hi = bisect.bisect_left(keys, prefix + "\U0010ffff")
        return max(0, hi - lo)

    def _list_response(self, request, info, entries: list[Entry], rv: int, cont: str,
                       remaining: int | None = None) -> web.Response:
        r = info.resource
        if wants_table(request):
            table = tables.to_table(r, [e.object() for e in entries])
            table.setdefault("metadata", {})["resourceVersion"] = str(rv)
            if cont:
                table["metadata"]["continue"] = cont
            if remaining is not None:
                table["metadata"]["remainingItemCount"] = remaining
            return json_response(table)
        return json_response(codec.list_body(r.list_kind, r.api_version, rv, [e.data for e in entries], cont,
                                             remaining))

    async def watch(self, request: web.Request, info: RequestInfo, name: str | None = None) -> web.StreamResponse:
        r = info.resource
        q = request.query
        label, field = self.selectors(request, info)
        if name is not None:
            field = parse_field_selector(f"metadata.name={name}" + (
                "," + q["fieldSelector"] if q.get("fieldSelector") else ""), r.kind)
        match = self.entry_filter(label, field)
        try:
            rv = int(q.get("resourceVersion", "0") or 0)
        except ValueError:
            raise BadRequest(f'invalid resourceVersion "{q.get("resourceVersion")}"') from None
        try:
            timeout = int(q.get("timeoutSeconds", DEFAULT_WATCH_TIMEOUT))
        except ValueError:
            raise BadRequest("invalid timeoutSeconds") from None
        bookmarks = parse_bool(q.get("allowWatchBookmarks"))
        table = wants_table(request)
        cache = self.cache(r)
        await cache.ready()
        resp = web.StreamResponse(headers={"Content-Type": "application/json",
                                           "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        try:
            watcher, initial = cache.watch(info.namespace, match, rv)
        except Gone as e:
            await resp.prepare(request)
            await resp.write(codec.watch_line("ERROR", orjson.dumps(e.to_status())))
            await resp.write_eof()
            return resp
        first = [True]

        def line(ev) -> bytes:
            if not table:
                return ev.line
            t = tables.to_table_event(r, ev.entry.object(), with_column_definitions=first[0])
            first[0] = False
            return codec.watch_line(ev.type, orjson.dumps(t))

        try:
            writer = await resp.prepare(request)
            if initial:
                await resp.write(b"".join(line(ev) for ev in initial))
            protocol = request.protocol
            transport = request.transport
            if transport is None:
                return resp
            # From here on the watch cache writes events straight to the connection (once per loop
            # iteration, whatever came in it). This coroutine steps in only when the connection
            # does not take bytes (it waits for the drain, then writes what piled up), for
            # bookmarks, and at the end.
            sink = ChunkedSink(transport, lambda: protocol.writing_paused, line if table else None)
            watcher.attach(sink)
            deadline = time.monotonic() + max(timeout, 0)
            next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
            while True:
                now = time.monotonic()
                if now >= deadline:
                    watcher.flush()
                    break
                if watcher.pending:
                    if not watcher.closed and not sink.blocked():
                        watcher.flush()
                        continue
                    if transport.is_closing():
                        break
                    try:
                        async with asyncio.timeout(deadline - now):
                            await writer.drain()
                    except TimeoutError:
                        break
                    pending, watcher.pending = watcher.pending, []
                    if not sink.send(pending):
                        break
                    continue
                if watcher.closed:
                    break
                wait = deadline - now
                if bookmarks:
                    if now >= next_bookmark:
                        sink.write(cache.bookmark())
                        next_bookmark = now + BOOKMARK_INTERVAL
                        continue
                    wait = min(wait, next_bookmark - now)
                watcher.wake.clear()
                # A timeout scope rather than wait_for: no task per wait.
                try:
                    async with asyncio.timeout(wait):
                        await watcher.wake.wait()
                except TimeoutError:
                    pass
            cache.unwatch(watcher)               # nothing is written by the cache after the end
            with contextlib.suppress(ConnectionResetError):
                await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            cache.unwatch(watcher)
        return resp

    # --- writes ----------------------------------------------------------------------------

    async def create(self, request: web.Request, info: RequestInfo) -> web.Response:
        r = info.resource
        if r.namespaced and info.namespace is None:
            raise MethodNotAllowed("the server does not allow this method on the requested resource")
        obj, warnings = await self.read_object(request, info)
        created = await self.objects.create(r, info.namespace, obj, dry_run=self.dry_run(request),
                                            manager=field_manager(request), warnings=warnings)
        return self.respond(request, info, created, 201, warnings)

    async def update(self, request: web.Request, info: RequestInfo) -> web.Response:
        obj, warnings = await self.read_object(request, info)
        updated = await self.objects.update(info.resource, info.namespace, info.name, obj,
                                            subresource=info.subresource, dry_run=self.dry_run(request),
                                            manager=field_manager(request), warnings=warnings)
        return self.respond(request, info, updated, 200, warnings)

    async def patch(self, request: web.Request, info: RequestInfo) -> web.Response:
        r = info.resource
        ctype = codec.media_type(request.headers.get("Content-Type"))
        if ctype not in codec.PATCH_TYPES:
            raise UnsupportedMediaType(f'the body of the request was in an unknown format - accepted media '
                                       f'types include: {", ".join(codec.PATCH_TYPES)}')
        raw = await self.read_body(request)
        body = codec.decode_body(raw, ctype)
        dry = self.dry_run(request)
        if ctype == codec.APPLY_PATCH:
            return await self.apply(request, info, require_object(body, "apply body"), dry)
        # Filled by the object store when it checks the patched object (fieldValidation=Warn).
        warnings = [] if request.query.get("fieldValidation", "Warn") == "Warn" else None

        async def mutate(current: dict) -> dict:
            new = apply_patch(r, current, ctype, body)
            pinned = (new.get("metadata") or {}).get("resourceVersion")
            if pinned and pinned != current["metadata"]["resourceVersion"]:
                raise conflict(r.plural, info.name, r.group)
            self.check_object(request, info, new)
            return new

        updated = await self.objects.guaranteed_update(r, info.namespace, info.name, mutate,
                                                       subresource=info.subresource, dry_run=dry,
                                                       manager=field_manager(request), warnings=warnings)
        return self.respond(request, info, updated, 200, warnings)

    async def apply(self, request: web.Request, info: RequestInfo, body: dict, dry: bool) -> web.Response:
        """Server-side apply: create or update in one call, with field ownership."""
        r = info.resource
        manager = request.query.get("fieldManager")
        if not manager:
            raise BadRequest("PATCH, application/apply-patch+yaml requests must have a fieldManager")
        force = parse_bool(request.query.get("force"))
        warnings = self.check_object(request, info, body)
        # Unknown fields of the configuration (Warn, Ignore) are dropped before the field manager
        # sees it: nobody may own a field the object cannot have.
        dropped = schema.prune_unknown(body)
        if warnings is not None:
            warnings.extend(f'unknown field "{f}"' for f in dropped)
        meta = schema.merge_info(r.group, r.version, r.kind)
        sub = info.subresource
        for _ in range(3):
            try:
                await self.objects.get_kv(r, info.namespace, info.name)
            except NotFound:
                if sub:
                    raise
                obj = fieldmanager.apply(None, body, meta, manager=manager, force=force,
                                         api_version=r.api_version)
                try:
                    created = await self.objects.create(r, info.namespace, obj, dry_run=dry, warnings=warnings)
                except AlreadyExists:
                    continue                      # lost a race with another creator: apply as update
                return self.respond(request, info, created, 201, warnings)

            async def mutate(cur: dict) -> dict:
                return fieldmanager.apply(cur, body, meta, manager=manager, force=force,
                                          api_version=r.api_version, subresource=sub)

            updated = await self.objects.guaranteed_update(r, info.namespace, info.name, mutate,
                                                           subresource=sub, dry_run=dry, warnings=warnings)
            return self.respond(request, info, updated, 200, warnings)
        raise conflict(r.plural, info.name, r.group)

    async def delete_options(self, request: web.Request) -> DeleteOptions:
        raw = await self.read_body(request)
        body = None
        if raw.strip():
            body = require_object(codec.decode_body(raw, request.headers.get("Content-Type")), "DeleteOptions")
        opts = DeleteOptions.from_dict(body, dict(request.query))
        opts.dry_run = opts.dry_run or self.dry_run(request)
        return opts

    async def delete(self, request: web.Request, info: RequestInfo) -> web.Response:
        """A deletion still pending (grace period, finalizers) answers with the object; a finished
        one with a Success Status naming it, except for the kinds whose Kubernetes storage
        returns the deleted object."""
        r = info.resource
        opts = await self.delete_options(request)
        obj = await self.objects.delete(r, info.namespace, info.name, opts)
        md = obj.get("metadata") or {}
        gone = opts.dry_run or not (md.get("deletionTimestamp") or md.get("finalizers") or
                                    (r.kind == "Namespace" and (obj.get("status") or {}).get("phase") == "Terminating"))
        if gone and r.kind not in RETURNS_DELETED_OBJECT and not wants_table(request):
            return json_response(success_status({"name": md.get("name", ""), "group": r.group,
                                                 "kind": r.plural, "uid": md.get("uid", "")}))
        return self.respond(request, info, obj, 200)

    async def delete_collection(self, request: web.Request, info: RequestInfo) -> web.Response:
        r = info.resource
        if "deletecollection" not in r.verbs:
            raise MethodNotAllowed("the server does not allow this method on the requested resource")
        label, field = self.selectors(request, info)
        match = self.entry_filter(label, field)
        opts = await self.delete_options(request)
        res = await self.backend.list(r.storage_prefix(info.namespace))
        cache = self.cache(r)
        deleted = []
        for kv in res.items:
            e = cache._entry(kv.key, kv.value, kv.mod_revision)
            if match is not None and not match(e):
                continue
            with contextlib.suppress(NotFound):
                deleted.append(await self.objects.delete(r, e.namespace or None, e.name, opts))
        return json_response(codec.list_body(r.list_kind, r.api_version, res.revision,
                                             [orjson.dumps(o) for o in deleted]))

    # --- subresources ----------------------------------------------------------------------

    async def _subresource(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        sub = info.subresource
        method = request.method
        r = info.resource
        if sub in ("status", "finalize"):
            if method == "GET" and sub == "status":
                return await self.get(request, info)
            if method == "PUT":
                return await self.update(request, info)
            if method == "PATCH" and sub == "status":
                return await self.patch(request, info)
        elif sub == "scale":
            return await self._scale(request, info)
        elif sub == "binding" and method == "POST":
            return await self._bind(request, info)
        elif sub == "eviction" and method == "POST":
            return await self._evict(request, info)
        elif sub in ("log", "exec", "attach", "portforward"):
            return await self._node_stream(request, info)
        raise MethodNotAllowed(f"the server does not allow this method on {r.plural}/{sub}")

    async def _evict(self, request: web.Request, info: RequestInfo) -> web.Response:
        """policy/v1 Eviction: a graceful delete with the eviction's DeleteOptions (no
        PodDisruptionBudgets are served, so nothing can refuse it)."""
        raw = await self.read_body(request)
        body = require_object(codec.decode_body(raw, request.headers.get("Content-Type"))) if raw.strip() else {}
        name = (body.get("metadata") or {}).get("name")
        if name not in (None, "", info.name):
            raise BadRequest(f"name in URL does not match name in Eviction object: {info.name} != {name}")
        opts = DeleteOptions.from_dict(body.get("deleteOptions") or {}, {})
        opts.dry_run = opts.dry_run or self.dry_run(request)
        await self.objects.delete(info.resource, info.namespace, info.name, opts)
        return json_response(success_status(), 201)

    async def _node_stream(self, request: web.Request, info: RequestInfo) -> web.Response:
        """Logs, exec, attach and port-forward are served by the pod's node agent, which this
        cluster reaches only where a kubelet serves them; until then the answer says why."""
        pod = await self.objects.get(info.resource, info.namespace, info.name)
        node = (pod.get("spec") or {}).get("nodeName")
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = request.query.get("container") or (containers[0] if containers else "")
        if not node:
            raise BadRequest(f'container "{container}" in pod "{info.name}" is waiting to start: '
                             f'ContainerCreating')
        raise ServiceUnavailable(f"the node agent of node {node!r} does not serve pods/{info.subresource}")

    async def _scale(self, request: web.Request, info: RequestInfo) -> web.Response:
        r = info.resource
        if request.method == "GET":
            return json_response(to_scale(await self.objects.get(r, info.namespace, info.name)))
        if request.method not in ("PUT", "PATCH"):
            raise MethodNotAllowed(f"the server does not allow this method on {r.plural}/scale")
        raw = await self.read_body(request)
        ctype = codec.media_type(request.headers.get("Content-Type"))
        body = codec.decode_body(raw, ctype)
        dry = self.dry_run(request)

        async def mutate(current: dict) -> dict:
            scale = to_scale(current)
            if request.method == "PUT":
                new_scale = require_object(body)
                self.check_object(request, info, new_scale)
            elif ctype == codec.APPLY_PATCH:
                new_scale = patches.merge_patch(scale, require_object(body))
            else:
                new_scale = apply_patch(None, scale, ctype, body)
            pinned = (new_scale.get("metadata") or {}).get("resourceVersion")
            if pinned and pinned != current["metadata"]["resourceVersion"]:
                raise conflict(r.plural, info.name, r.group)
            replicas = (new_scale.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                from api.errors import Cause, invalid
                raise invalid("Scale", info.name, [Cause("FieldValueInvalid", f"Invalid value: {replicas!r}: "
                                                         "must be greater than or equal to 0",
                                                         "spec.replicas")], "autoscaling")
            current.setdefault("spec", {})["replicas"] = replicas
            return current

        updated = await self.objects.guaranteed_update(r, info.namespace, info.name, mutate, dry_run=dry,
                                                       manager=field_manager(request))
        return json_response(to_scale(updated))

    async def _bind(self, request: web.Request, info: RequestInfo) -> web.Response:
        r = info.resource
        raw = await self.read_body(request)
        body = require_object(codec.decode_body(raw, request.headers.get("Content-Type")))
        target = (body.get("target") or {})
        node = target.get("name")
        if not node:
            from api.errors import Cause, invalid
            raise invalid("Binding", info.name, [Cause("FieldValueRequired", "Required value", "target.name")])
        pin_uid = (body.get("metadata") or {}).get("uid")

        async def mutate(pod: dict) -> dict:
            if pin_uid and pin_uid != pod["metadata"].get("uid"):
                raise conflict(r.plural, info.name, r.group, "the object has a different UID")
            if pod["metadata"].get("deletionTimestamp"):
                raise conflict(r.plural, info.name, r.group, "pod is being deleted, cannot be assigned to a host")
            spec = pod.setdefault("spec", {})
            if spec.get("nodeName"):
                raise conflict(r.plural, info.name, r.group,
                               f"pod {info.name} is already assigned to node \"{spec['nodeName']}\"")
            spec["nodeName"] = node
            # PodScheduled=True is recorded in the same write, as Kubernetes' binding storage does.
            status = pod.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": _now()})
            status["conditions"] = conds
            return pod

        await self.objects.guaranteed_update(r, info.namespace, info.name, mutate, subresource="binding",
                                             dry_run=self.dry_run(request), internal=True)
        return json_response(success_status(), 201)


def field_manager(request: web.Request) -> str:
    """Who is writing: ``?fieldManager=``, else the User-Agent's program name, as Kubernetes does."""
    manager = request.query.get("fieldManager")
    if manager:
        if len(manager) > 128:
            raise BadRequest("fieldManager: Too long: may not be longer than 128")
        return manager
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/", 1)[0][:128] or "unknown"


def _now() -> str:
    from api import meta
    return meta.now_rfc3339()


def apply_patch(r: ResourceInfo | None, current: dict, ctype: str, body: Any) -> dict:
    """The object after a JSON, merge or strategic-merge patch."""
    if ctype == codec.JSON_PATCH:
        if not isinstance(body, list):
            raise BadRequest("json patch must be a JSON array of operations")
        return patches.json_patch(current, body)
    if not isinstance(body, dict):
        raise BadRequest("the patch must be a JSON object")
    if ctype == codec.MERGE_PATCH or r is None:
        return patches.merge_patch(current, body)
    return patches.strategic_merge_patch(current, body, schema.merge_info(r.group, r.version, r.kind))


def to_scale(obj: dict) -> dict:
    from api.selectors import selector_to_string

    md = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    sel = spec.get("selector")
    selector = selector_to_string(sel) if isinstance(sel, dict) else ""
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: md[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in md},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0), "selector": selector},
    }


def _warning_headers(warnings: list[str] | None) -> dict[str, str] | None:
    if not warnings:
        return None
    # One header value per warning is the canonical form; aiohttp's dict headers take one value,
    # so join them as a comma-separated list, which RFC 7234 allows for Warning.
    return {"Warning": ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in warnings)}


__all__ = ["Invalid", "ResourceHandler", "parse_path", "status_response", "json_response"]
