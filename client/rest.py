"""REST calls and watch streams against a Kubernetes-compatible API server.

``Client`` addresses resources by ``api.registry.ResourceInfo`` (or a name ``registry.resolve``
understands, such as ``"pods"`` or ``"deployments.apps"``), a namespace and a name, and speaks the
Kubernetes REST API: the same paths, query options, verbs and ``Status`` bodies. Every non-2xx
answer is raised as the typed error from ``api.errors`` (``NotFound``, ``Conflict``, ...);
transport failures surface as ``aiohttp.ClientError`` / ``asyncio.TimeoutError``.

Ordinary requests go over the client's own keep-alive HTTP/1.1 pool (``_Pool``: HTTP or HTTPS,
``pool_size`` connections at most, idempotent requests resent once on a kept-alive connection
the server had closed); watches over aiohttp.

Objects are plain dicts decoded with orjson; what a call returns belongs to the caller.

Watches are async iterators of ``(type, object)`` with type ADDED, MODIFIED, DELETED or BOOKMARK.
They end when the server closes the stream (its ``timeoutSeconds`` ran out) and raise
``api.errors.Gone`` when the server reports the requested resourceVersion as too old (a 410
ERROR event), or the matching typed error for any other ERROR event.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl as stdlib_ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
import orjson
from multidict import CIMultiDict

from api import errors, registry
from api.registry import ResourceInfo
from client.kubeconfig import ConnectionConfig, default_connection

PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}

DEFAULT_TIMEOUT = 30.0
USER_AGENT = "navarch-client/0.1"

Resource = ResourceInfo | str


def resource_info(resource: Resource) -> ResourceInfo:
    if isinstance(resource, ResourceInfo):
        return resource
    info = registry.resolve(resource)
    if info is None:
        raise ValueError(f"unknown resource {resource!r}")
    return info


def _bool(v: bool) -> str:
    return "true" if v else "false"


def _params(**opts: Any) -> dict[str, str]:
    """Query parameters with Kubernetes' names; None values are left out."""
    names = {
        "label_selector": "labelSelector", "field_selector": "fieldSelector", "limit": "limit",
        "continue_": "continue", "resource_version": "resourceVersion",
        "resource_version_match": "resourceVersionMatch", "timeout_seconds": "timeoutSeconds",
        "allow_watch_bookmarks": "allowWatchBookmarks", "send_initial_events": "sendInitialEvents",
        "field_manager": "fieldManager", "field_validation": "fieldValidation", "force": "force",
        "propagation_policy": "propagationPolicy", "grace_period_seconds": "gracePeriodSeconds",
        "pretty": "pretty",
    }
    out: dict[str, str] = {}
    for key, value in opts.items():
        if value is None:
            continue
        if key == "dry_run":
            if value:
                out["dryRun"] = "All"
            continue
        name = names.get(key, key)
        if isinstance(value, bool):
            out[name] = _bool(value)
        elif isinstance(value, dict):  # a selector given as {"app": "web"}
            out[name] = ",".join(f"{k}={v}" for k, v in value.items())
        else:
            out[name] = str(value)
    return out


MAX_RETRY_AFTER = 10.0


def _retry_delay(resp: Any, err: errors.StatusError) -> float | None:
    """How long the server asked us to wait before trying again, if it asked: a 429, or a 5xx that
    carries Retry-After. Capped so a confused server cannot park a caller for long. ``resp`` has
    ``status`` and ``headers``."""
    header = resp.headers.get("Retry-After")
    if resp.status != 429 and not (resp.status >= 500 and header):
        return None
    seconds: float | None = None
    if header:
        try:
            seconds = float(header)
        except ValueError:
            seconds = None
    if seconds is None:
        seconds = float(err.retry_after) if err.retry_after is not None else 1.0
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _status_error(code: int, body: bytes, reason: str | None = None) -> errors.StatusError:
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        return errors.from_status(doc, code)
    text = body.decode("utf-8", "replace").strip() if body else (reason or "")
    return errors.from_status({"code": code, "message": text or f"HTTP {code}"}, code)


# -- the transport of ordinary requests ------------------------------------------------------------
#
# Requests other than watches go through a small HTTP/1.1 client of our own: one keep-alive
# connection per request in flight, a bounded pool, the whole response read into memory. A
# general-purpose client spends several hundred microseconds of CPU per request building URL,
# header and payload objects that a Kubernetes client never needs; components that make one
# request per object (the scheduler's bindings, events) pay that on every pod. Watches stream
# for minutes and stay on aiohttp. Transport failures are raised as aiohttp's error types, so
# callers keep catching ``aiohttp.ClientError``.

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_NO_BODY_STATUS = frozenset({204, 304})


class _Response:
    __slots__ = ("status", "reason", "headers", "body", "keep_alive")

    def __init__(self, status: int, reason: str, headers: CIMultiDict[str], body: bytes, keep_alive: bool):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[_Response] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._buf = bytearray()
        self._head_only = False
        self._got_bytes = False
        # The response being read: (status, reason, headers, keep_alive) once its head is in.
        self._head: tuple[int, str, CIMultiDict[str], bool] | None = None
        self._length: int | None = None       # body bytes expected (Content-Length)
        self._chunked = False
        self._chunks: list[bytes] = []
        self._until_close = False

    # -- protocol callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._got_bytes = True
        if self._waiter is None or self._waiter.done():
            # Nothing asked for this (a server's parting 408, say): the connection is unusable.
            self.close()
            return
        self._buf += data
        try:
            self._parse()
        except ValueError as e:
            self._fail(aiohttp.ClientPayloadError(f"malformed response: {e}"))
            self.close()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._until_close and self._head is not None:
            self._finish(bytes(self._buf))
            return
        if exc is None:
            self._fail(aiohttp.ServerDisconnectedError())
        else:
            self._fail(aiohttp.ClientOSError(getattr(exc, "errno", None) or 0, str(exc) or type(exc).__name__))

    # -- requests ------------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def send(self, data: bytes, head_only: bool, deadline: float | None = None) -> asyncio.Future[_Response]:
        """Write a request; the future gets its response, or TimeoutError at ``deadline`` (loop
        time; the connection is closed then)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        if deadline is not None:
            self._timer = loop.call_at(deadline, self._timed_out)
        self._buf.clear()
        self._head = None
        self._length = None
        self._chunked = self._until_close = False
        self._chunks = []
        self._head_only = head_only
        self._got_bytes = False
        self.transport.write(data)
        return self._waiter

    @property
    def got_bytes(self) -> bool:
        return self._got_bytes

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(TimeoutError())
        self.close()

    # -- parsing ---------------------------------------------------------------------------------

    def _parse(self) -> None:
        buf = self._buf
        while self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 1 << 20:
                    raise ValueError("response head too large")
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            del buf[:end + 4]
            version, _, rest = lines[0].partition(" ")
            code, _, reason = rest.partition(" ")
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise ValueError(f"bad status line {lines[0]!r}")
            status = int(code)
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    raise ValueError(f"bad header line {line!r}")
                headers.add(name.strip(), value.strip())
            if 100 <= status < 200:
                continue  # 100 Continue and friends: the real response follows
            conn = headers.get("Connection", "").lower()
            keep_alive = "close" not in conn if version == "HTTP/1.1" else "keep-alive" in conn
            self._head = (status, reason, headers, keep_alive)
            if self._head_only or status in _NO_BODY_STATUS:
                self._length = 0
            elif "chunked" in headers.get("Transfer-Encoding", "").lower():
                self._chunked = True
            elif "Content-Length" in headers:
                self._length = int(headers["Content-Length"])
                if self._length < 0:
                    raise ValueError("negative Content-Length")
            else:
                self._until_close = True
        if self._length is not None:
            if len(buf) >= self._length:
                body = bytes(buf[:self._length])
                del buf[:self._length]
                self._finish(body)
        elif self._chunked:
            self._parse_chunks()

    def _parse_chunks(self) -> None:
        buf = self._buf
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                return
            size_text = bytes(buf[:eol]).split(b";", 1)[0].strip()
            size = int(size_text, 16)
            if size == 0:
                # Trailers (ignored) end with an empty line.
                end = buf.find(b"\r\n\r\n", eol) if buf[eol + 2:eol + 4] != b"\r\n" else eol
                if end < 0:
                    return
                del buf[:end + 4]
                self._finish(b"".join(self._chunks))
                return
            if len(buf) < eol + 2 + size + 2:
                return
            self._chunks.append(bytes(buf[eol + 2:eol + 2 + size]))
            del buf[:eol + 2 + size + 2]

    def _finish(self, body: bytes) -> None:
        assert self._head is not None
        status, reason, headers, keep_alive = self._head
        if self._until_close or self._buf:
            keep_alive = False  # a body ended by close, or bytes past the response: no reuse
        waiter, self._waiter = self._waiter, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if waiter is not None and not waiter.done():
            waiter.set_result(_Response(status, reason, headers, body, keep_alive))

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class _Pool:
    """Keep-alive connections to one server, at most ``limit`` in use at once."""

    def __init__(self, server: str, ssl_: Any, limit: int, keepalive: float = 30.0):
        parts = urlsplit(server)
        self.is_ssl = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.is_ssl else 80)
        self.prefix = parts.path.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        default_port = (self.is_ssl and self.port == 443) or (not self.is_ssl and self.port == 80)
        self.host_header = host if default_port else f"{host}:{self.port}"
        self.ssl: Any = None
        if self.is_ssl:
            if ssl_ is False:
                ctx = stdlib_ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = stdlib_ssl.CERT_NONE
                self.ssl = ctx
            elif isinstance(ssl_, stdlib_ssl.SSLContext):
                self.ssl = ssl_
            else:
                self.ssl = stdlib_ssl.create_default_context()
        self.keepalive = keepalive
        self.loop = asyncio.get_running_loop()
        self._sem = asyncio.Semaphore(limit) if limit > 0 else None
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self.closed = False

    def _key(self) -> Any:
        from aiohttp.client_reqrep import ConnectionKey
        return ConnectionKey(host=self.host, port=self.port, is_ssl=self.is_ssl, ssl=self.ssl or True,
                             proxy=None, proxy_auth=None, proxy_headers_hash=None)

    async def _connect(self) -> _Connection:
        try:
            _, conn = await self.loop.create_connection(_Connection, self.host, self.port, ssl=self.ssl)
        except stdlib_ssl.SSLCertVerificationError as e:
            raise aiohttp.ClientConnectorCertificateError(self._key(), e) from e
        except stdlib_ssl.SSLError as e:
            raise aiohttp.ClientConnectorSSLError(self._key(), e) from e
        except OSError as e:
            raise aiohttp.ClientConnectorError(self._key(), e) from e
        self._all.add(conn)
        return conn

    def _take_idle(self) -> _Connection | None:
        now = self.loop.time()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable and now - conn.idle_since < self.keepalive:
                return conn
            self._discard(conn)
        return None

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._all.discard(conn)

    async def request(self, method: str, data: bytes, timeout: float | None = None) -> _Response:
        """Send ``data`` (a whole request) and read the response, within ``timeout`` seconds in
        all (TimeoutError past it): waiting for a connection, connecting, the exchange."""
        deadline = None if timeout is None else self.loop.time() + timeout
        if self._sem is not None:
            if self._sem.locked():
                async with asyncio.timeout_at(deadline):
                    await self._sem.acquire()
            else:
                await self._sem.acquire()
        try:
            while True:
                conn = self._take_idle()
                reused = conn is not None
                if conn is None:
                    async with asyncio.timeout_at(deadline):
                        conn = await self._connect()
                try:
                    resp = await conn.send(data, method == "HEAD", deadline)
                except aiohttp.ClientConnectionError:
                    self._discard(conn)
                    # A kept-alive connection the server closed as we reused it: an idempotent
                    # request that got no answer is sent again on a fresh connection.
                    if reused and not conn.got_bytes and method in IDEMPOTENT:
                        continue
                    raise
                except BaseException:
                    self._discard(conn)   # cancelled or timed out mid-response: unusable
                    raise
                if resp.keep_alive and conn.usable and not self.closed:
                    conn.idle_since = self.loop.time()
                    self._idle.append(conn)
                else:
                    self._discard(conn)
                return resp
        finally:
            if self._sem is not None:
                self._sem.release()

    def close(self) -> None:
        self.closed = True
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()


class Client:
    """An async client for one API server. Use as ``async with Client(...) as c:`` or call
    ``close()``; one instance holds a connection pool and is meant to be shared by a process."""

    def __init__(self, server: str, *, namespace: str = "default", token: str | None = None,
                 username: str | None = None, password: str | None = None,
                 ssl: Any = None, timeout: float = DEFAULT_TIMEOUT, pool_size: int = 100,
                 user_agent: str = USER_AGENT, max_retries: int = 3):
        self.server = server.rstrip("/")
        self.namespace = namespace
        self.timeout = timeout
        # Requests the server refuses with 429 (or a 5xx with Retry-After) are retried this many
        # times after the delay it names, as client-go does.
        self.max_retries = max_retries
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        elif username:
            basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = f"Basic {basic}"
        self._request_headers = dict(self._headers)
        self._ssl = ssl
        self._pool_size = pool_size
        self._watch_session: aiohttp.ClientSession | None = None
        self._pool: _Pool | None = None

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_connection(cls, conn: ConnectionConfig, **kw: Any) -> Client:
        """A client for resolved kubeconfig settings (blocking: reads token and TLS files)."""
        return cls(conn.server, namespace=conn.namespace, token=conn.bearer_token(),
                   username=conn.username, password=conn.password, ssl=conn.ssl_context(), **kw)

    @classmethod
    async def from_kubeconfig(cls, path: str | os.PathLike[str] | None = None, context: str | None = None,
                              **kw: Any) -> Client:
        """A client for ``context`` of the kubeconfig at ``path`` ($KUBECONFIG or ~/.kube/config),
        or, with neither, for the pod's service account (in-cluster)."""

        def build() -> Client:
            return cls.from_connection(default_connection(path, context), **kw)

        return await asyncio.to_thread(build)

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit,
                                         ssl=self._ssl if self._ssl is not None else True, keepalive_timeout=30)
        return aiohttp.ClientSession(connector=connector, headers=self._headers)

    def _watch_session_now(self) -> aiohttp.ClientSession:
        """Watches hold their connection for minutes, so they get their own unbounded aiohttp
        pool and can never starve ordinary requests (``_Pool``) of connections."""
        if self._watch_session is None or self._watch_session.closed:
            self._watch_session = self._new_session(0)
        return self._watch_session

    def _pool_now(self) -> _Pool:
        """The keep-alive pool of ordinary requests (one per event loop: a client may outlive
        the loop it was first used on, as in tests)."""
        pool = self._pool
        if pool is None or pool.closed or pool.loop is not asyncio.get_running_loop():
            pool = self._pool = _Pool(self.server, self._ssl, self._pool_size)
        return pool

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._watch_session is not None:
            await self._watch_session.close()
        self._watch_session = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- paths -----------------------------------------------------------------------------

    def path(self, resource: Resource, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path of a collection, an object or a subresource.

        A namespaced resource with ``namespace=None`` addresses all namespaces (list/watch only).
        """
        info = resource_info(resource)
        parts = [info.url_prefix]
        if info.namespaced and namespace:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(info.plural)
        if name is not None:
            if not name:
                raise ValueError(f"{info.plural}: empty name")
            parts.append(quote(name, safe=""))
        if subresource:
            parts.append(subresource)
        return "/".join(parts)

    def _object_namespace(self, info: ResourceInfo, namespace: str | None, obj: dict[str, Any] | None = None
                          ) -> str | None:
        if not info.namespaced:
            return None
        if namespace:
            return namespace
        if obj is not None:
            ns = (obj.get("metadata") or {}).get("namespace")
            if ns:
                return ns
        return self.namespace

    # -- raw requests ----------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: dict[str, str] | None = None,
                      body: Any = None, content_type: str | None = None, raw: bool = False,
                      headers: dict[str, str] | None = None, timeout: float | None = None) -> Any:
        """One HTTP call. ``body`` is JSON-encoded unless bytes/str. Returns decoded JSON (or the
        raw bytes with ``raw=True``, e.g. for ``pods/log``); non-2xx raises the typed error."""
        data: bytes | None = None
        if body is not None:
            if isinstance(body, bytes | bytearray):
                data = bytes(body)
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = orjson.dumps(body)
        hdrs = self._request_headers
        if headers or content_type or raw or data is not None:
            hdrs = dict(hdrs)
            lower = {k.lower(): k for k in hdrs}
            for name, value in (headers or {}).items():
                hdrs.pop(lower.pop(name.lower(), name), None)
                hdrs[name] = value
            given = {k.lower() for k in (headers or {})}
            if data is not None and "content-type" not in given:
                hdrs["Content-Type"] = content_type or "application/json"
            elif data is None and content_type:
                hdrs["Content-Type"] = content_type
            if raw and "accept" not in given:
                hdrs["Accept"] = "*/*"
        pool = self._pool_now()
        target = pool.prefix + path
        if params:
            target += "?" + urlencode(params, quote_via=quote, safe="/:,")
        head = [f"{method} {target} HTTP/1.1\r\nHost: {pool.host_header}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in hdrs.items())
        if data is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(data) if data is not None else 0}\r\n")
        head.append("\r\n")
        message = "".join(head).encode("latin-1")
        if data:
            message += data
        limit = timeout if timeout is not None else self.timeout
        attempt = 0
        while True:
            resp = await pool.request(method, message, limit)
            payload = resp.body
            if resp.status < 400:
                if raw:
                    return payload
                if not payload:
                    return None
                try:
                    return orjson.loads(payload)
                except orjson.JSONDecodeError:
                    return payload.decode("utf-8", "replace")
            err = _status_error(resp.status, payload, resp.reason)
            delay = _retry_delay(resp, err)
            if delay is None or attempt >= self.max_retries:
                raise err
            attempt += 1
            await asyncio.sleep(delay)

    # -- verbs -----------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None, *,
                  resource_version: str | None = None) -> dict[str, Any]:
        info = resource_info(resource)
        ns = self._object_namespace(info, namespace)
        return await self.request("GET", self.path(info, ns, name),
                                  params=_params(resource_version=resource_version))

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str | dict[str, str] | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None, resource_version_match: str | None = None,
                   timeout_seconds: int | None = None) -> dict[str, Any]:
        """One page of a list (``namespace=None``: all namespaces); see ``list_all``/``iter_list``."""
        info = resource_info(resource)
        params = _params(label_selector=label_selector, field_selector=field_selector, limit=limit,
                         continue_=continue_, resource_version=resource_version,
                         resource_version_match=resource_version_match, timeout_seconds=timeout_seconds)
        return await self.request("GET", self.path(info, namespace), params=params)

    async def iter_pages(self, resource: Resource, namespace: str | None = None, *, page_size: int = 500,
                         **opts: Any) -> AsyncIterator[dict[str, Any]]:
        """Every page of a list, following ``metadata.continue`` until the server says it is done."""
        token: str | None = None
        while True:
            page = await self.list(resource, namespace, limit=page_size, continue_=token, **opts)
            yield page
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return
            # The continue token pins the snapshot; resourceVersion must not be sent with it.
            opts.pop("resource_version", None)
            opts.pop("resource_version_match", None)

    async def iter_list(self, resource: Resource, namespace: str | None = None, *, page_size: int = 500,
                        **opts: Any) -> AsyncIterator[dict[str, Any]]:
        async for page in self.iter_pages(resource, namespace, page_size=page_size, **opts):
            for item in page.get("items") or []:
                yield item

    async def list_all(self, resource: Resource, namespace: str | None = None, *, page_size: int = 500,
                       **opts: Any) -> dict[str, Any]:
        """The whole list, fetched in pages, as one List object whose ``metadata.resourceVersion``
        is the snapshot's (the first page's)."""
        items: list[dict[str, Any]] = []
        first: dict[str, Any] | None = None
        async for page in self.iter_pages(resource, namespace, page_size=page_size, **opts):
            if first is None:
                first = page
            items.extend(page.get("items") or [])
        assert first is not None
        meta = dict(first.get("metadata") or {})
        meta.pop("continue", None)
        meta.pop("remainingItemCount", None)
        out = {k: v for k, v in first.items() if k not in ("items", "metadata")}
        out["metadata"] = meta
        out["items"] = items
        return out

    async def create(self, resource: Resource, obj: dict[str, Any], namespace: str | None = None, *,
                     dry_run: bool = False, field_manager: str | None = None,
                     field_validation: str | None = None) -> dict[str, Any]:
        info = resource_info(resource)
        ns = self._object_namespace(info, namespace, obj)
        params = _params(dry_run=dry_run, field_manager=field_manager, field_validation=field_validation)
        return await self.request("POST", self.path(info, ns), params=params, body=obj)

    async def update(self, resource: Resource, obj: dict[str, Any], namespace: str | None = None, *,
                     subresource: str | None = None, dry_run: bool = False, field_manager: str | None = None,
                     field_validation: str | None = None) -> dict[str, Any]:
        """PUT the whole object (compare-and-swap on its ``metadata.resourceVersion``)."""
        info = resource_info(resource)
        ns = self._object_namespace(info, namespace, obj)
        name = (obj.get("metadata") or {}).get("name") or ""
        params = _params(dry_run=dry_run, field_manager=field_manager, field_validation=field_validation)
        return await self.request("PUT", self.path(info, ns, name, subresource), params=params, body=obj)

    async def update_status(self, resource: Resource, obj: dict[str, Any], namespace: str | None = None,
                            **opts: Any) -> dict[str, Any]:
        return await self.update(resource, obj, namespace, subresource="status", **opts)

    async def patch(self, resource: Resource, name: str, patch: Any, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str | None = None, dry_run: bool = False,
                    field_manager: str | None = None, field_validation: str | None = None,
                    force: bool | None = None) -> dict[str, Any]:
        """PATCH with ``patch_type`` one of merge, json, strategic, apply (apply needs
        ``field_manager``; its body may be a dict or YAML/JSON text)."""
        info = resource_info(resource)
        ns = self._object_namespace(info, namespace, patch if isinstance(patch, dict) else None)
        try:
            ctype = PATCH_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"patch_type must be one of {sorted(PATCH_TYPES)}") from None
        params = _params(dry_run=dry_run, field_manager=field_manager, field_validation=field_validation,
                         force=force)
        return await self.request("PATCH", self.path(info, ns, name, subresource), params=params,
                                  body=patch, content_type=ctype)

    async def apply(self, resource: Resource, obj: dict[str, Any], namespace: str | None = None, *,
                    field_manager: str, force: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply of ``obj`` (a partial object naming only the fields this manager owns)."""
        name = (obj.get("metadata") or {}).get("name") or ""
        return await self.patch(resource, name, obj, namespace, patch_type="apply", field_manager=field_manager,
                                force=force or None, dry_run=dry_run)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
                     propagation_policy: str | None = None, grace_period_seconds: int | None = None,
                     preconditions: dict[str, str] | None = None, dry_run: bool = False) -> dict[str, Any]:
        """DELETE; returns what the server returns (the object, or a Success Status)."""
        info = resource_info(resource)
        ns = self._object_namespace(info, namespace)
        body = None
        if preconditions:
            body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": preconditions}
        params = _params(propagation_policy=propagation_policy, grace_period_seconds=grace_period_seconds,
                         dry_run=dry_run)
        return await self.request("DELETE", self.path(info, ns, name), params=params, body=body)

    async def delete_collection(self, resource: Resource, namespace: str | None = None, *,
                                label_selector: str | dict[str, str] | None = None,
                                field_selector: str | None = None, propagation_policy: str | None = None,
                                grace_period_seconds: int | None = None, dry_run: bool = False
                                ) -> dict[str, Any]:
        info = resource_info(resource)
        ns = self._object_namespace(info, namespace)
        params = _params(label_selector=label_selector, field_selector=field_selector,
                         propagation_policy=propagation_policy, grace_period_seconds=grace_period_seconds,
                         dry_run=dry_run)
        return await self.request("DELETE", self.path(info, ns), params=params)

    def watch(self, resource: Resource, namespace: str | None = None, *, resource_version: str | None = None,
              label_selector: str | dict[str, str] | None = None, field_selector: str | None = None,
              allow_bookmarks: bool = True, timeout_seconds: int | None = None,
              send_initial_events: bool | None = None, name: str | None = None,
              headers: dict[str, str] | None = None) -> Watch:
        """A watch stream (``namespace=None``: all namespaces; ``name``: one object, as a
        ``metadata.name`` field selector). Iterate it with ``async for type, obj in ...``.
        ``headers`` go with the request (an Accept asking for Tables, say)."""
        info = resource_info(resource)
        if name is not None:
            by_name = f"metadata.name={name}"
            field_selector = f"{field_selector},{by_name}" if field_selector else by_name
        params = _params(watch=True, resource_version=resource_version, label_selector=label_selector,
                         field_selector=field_selector, allow_watch_bookmarks=allow_bookmarks or None,
                         timeout_seconds=timeout_seconds, send_initial_events=send_initial_events)
        return Watch(self, self.path(info, namespace), params, timeout_seconds, headers)

    # -- common subresources ---------------------------------------------------------------

    async def bind(self, pod_namespace: str, pod_name: str, node_name: str) -> Any:
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod_name, "namespace": pod_namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        return await self.request("POST", self.path("pods", pod_namespace, pod_name, "binding"), body=body)

    async def get_scale(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        info = resource_info(resource)
        return await self.request("GET", self.path(info, self._object_namespace(info, namespace), name, "scale"))

    async def set_scale(self, resource: Resource, name: str, replicas: int, namespace: str | None = None
                        ) -> dict[str, Any]:
        return await self.patch(resource, name, {"spec": {"replicas": replicas}}, namespace,
                                subresource="scale")

    async def logs(self, name: str, namespace: str | None = None, *, container: str | None = None,
                   tail_lines: int | None = None, previous: bool = False, timestamps: bool = False) -> bytes:
        params = _params(container=container, tailLines=tail_lines, previous=previous or None,
                         timestamps=timestamps or None)
        ns = namespace or self.namespace
        return await self.request("GET", self.path("pods", ns, name, "log"), params=params, raw=True)


class Watch:
    """One watch request as an async iterator of ``(type, object)``; see the module docstring.

    ``resource_version`` is the last resourceVersion seen (from any event, bookmarks included),
    which is where a caller resumes after the stream ends.
    """

    def __init__(self, client: Client, path: str, params: dict[str, str], timeout_seconds: int | None,
                 headers: dict[str, str] | None = None):
        self._client = client
        self._path = path
        self._params = params
        self._headers = headers
        # Reads may legitimately stall between events; only bound them when the server was asked to
        # end the stream, with a margin so that its own close wins.
        self._read_timeout = None if timeout_seconds is None else timeout_seconds + 30.0
        self._resp: aiohttp.ClientResponse | None = None
        self._buf = bytearray()
        self._lines: deque[bytes] = deque()
        self._done = False
        self.resource_version: str | None = params.get("resourceVersion")

    def __aiter__(self) -> Watch:
        return self

    async def _open(self) -> aiohttp.ClientResponse:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._client.timeout,
                                        sock_read=self._read_timeout)
        resp = await self._client._watch_session_now().get(self._client.server + self._path, params=self._params,
                                                           timeout=timeout, headers=self._headers)
        if resp.status >= 400:
            body = await resp.read()
            resp.release()
            raise _status_error(resp.status, body, resp.reason)
        return resp

    async def __anext__(self) -> tuple[str, dict[str, Any]]:
        if self._done:
            raise StopAsyncIteration
        if self._resp is None:
            self._resp = await self._open()
        while not self._lines:
            try:
                chunk = await self._resp.content.readany()
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, TimeoutError):
                # A cut connection or a silent server past the requested timeout ends the stream
                # like a server-side close: the caller resumes from ``resource_version``.
                chunk = b""
            if not chunk:
                await self.close()
                raise StopAsyncIteration
            self._buf += chunk
            if b"\n" in chunk:
                *complete, rest = bytes(self._buf).split(b"\n")
                self._buf = bytearray(rest)
                self._lines.extend(line for line in complete if line.strip())
        line = self._lines.popleft()
        event = orjson.loads(line)
        etype = event.get("type")
        obj = event.get("object") or {}
        if etype == "ERROR":
            await self.close()
            raise errors.from_status(obj, obj.get("code"))
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self.resource_version = rv
        return etype, obj

    async def close(self) -> None:
        self._done = True
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
