"""etcd storage driver: the storage protocol on an etcd v3 cluster, through ``aetcd``.

Revisions are etcd's own: a key's ``mod_revision`` is its resourceVersion. Conditional writes are
single etcd transactions (create: ``create_revision == 0``; update and conditional delete:
``mod_revision == expected``, else read the current value for the conflict). aetcd's connection
and watch stream are used as they are; requests its helpers cannot express (ranges with a limit
or at a revision, transactions with ``prev_kv``) are built from its generated ``rpc`` messages
and sent on its stubs.

Several endpoints given as IPv4 literals become one gRPC channel over all of them (gRPC fails
over between them); otherwise the first endpoint is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aetcd
import grpc
import structlog
from aetcd import rpc
from aetcd.exceptions import ClientError, RevisionCompactedError
from aetcd.utils import prefix_range_end

from apiserver.storage import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionConflict,
    StorageError,
)

log = structlog.get_logger(component="storage.etcd")

_CHANNEL_OPTIONS = {
    "grpc.max_receive_message_length": 512 * 1024 * 1024,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
    "grpc.keepalive_time_ms": 30_000,
}
_ALL_KEYS = b"\0"   # as range_end: every key >= the start key


def _encode(key: str) -> bytes:
    return key.encode()


def _kv(kv: Any) -> KeyValue:
    return KeyValue(kv.key.decode(), bytes(kv.value), kv.create_revision, kv.mod_revision)


def _is_compacted(e: grpc.aio.AioRpcError) -> bool:
    return e.code() == grpc.StatusCode.OUT_OF_RANGE and "compacted" in (e.details() or "")


def _is_future(e: grpc.aio.AioRpcError) -> bool:
    return e.code() == grpc.StatusCode.OUT_OF_RANGE and "future" in (e.details() or "")


def _target(endpoints: Sequence[str]) -> tuple[str, int]:
    """aetcd's (host, port) for the endpoints; several IPv4 ones become a gRPC ipv4: list."""
    cleaned = [e.removeprefix("http://").removeprefix("https://").rstrip("/") for e in endpoints if e]
    if not cleaned:
        raise ValueError("no etcd endpoint given")
    hosts = []
    for endpoint in cleaned:
        host, _, port = endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"etcd endpoint {endpoint!r} is not host:port")
        hosts.append((host, int(port)))
    if len(hosts) > 1:
        with contextlib.suppress(ValueError):
            for host, _ in hosts:
                ipaddress.IPv4Address(host)
            # aetcd appends ":<port>" to the host: hand it all but the last port.
            listed = ",".join(f"{h}:{p}" for h, p in hosts[:-1])
            return f"ipv4:{listed},{hosts[-1][0]}", hosts[-1][1]
    return hosts[0]


class EtcdBackend:
    """The storage protocol on etcd. Open with ``await EtcdBackend.open(["127.0.0.1:2379"])``."""

    def __init__(self, client: aetcd.Client, timeout: float):
        self._client = client
        self._timeout = timeout
        self._compact_rev = 0   # the highest compaction this driver asked for
        self._compactor: asyncio.Task | None = None
        self._closed = False

    @classmethod
    async def open(cls, endpoints: Sequence[str], *, timeout: float = 30.0) -> EtcdBackend:
        """Connect and check the cluster answers (raises ``StorageError`` otherwise)."""
        host, port = _target(endpoints)
        client = aetcd.Client(host=host, port=port, options=dict(_CHANNEL_OPTIONS))
        self = cls(client, timeout)
        try:
            await self.current_revision()
        except BaseException:
            await client.close()
            raise
        return self

    async def close(self) -> None:
        self._closed = True
        await self.stop_compactor()
        await self._client.close()

    def _check_open(self) -> None:
        # aetcd reconnects on use; a closed backend must stay closed.
        if self._closed:
            raise StorageError("storage is closed")

    # ----------------------------------------------------------------------------- plumbing

    async def _kv_call(self, name: str, request: Any, *, revision: int = 0) -> Any:
        self._check_open()
        await self._client.connect()
        method = getattr(self._client.kvstub, name)
        try:
            # wait_for_ready: while etcd is restarting or electing, wait (up to the timeout)
            # instead of failing at once.
            return await method(request, timeout=self._timeout, metadata=self._client.metadata,
                                wait_for_ready=True)
        except grpc.aio.AioRpcError as e:
            if _is_compacted(e):
                raise Compacted(revision, await self._compact_revision()) from e
            if _is_future(e):
                raise FutureRevision(f"revision {revision} is ahead of the store") from e
            raise StorageError(f"etcd {name}: {e.code().name}: {e.details()}") from e

    async def _compact_revision(self) -> int:
        """etcd's compact revision, learned from a watch on history (when that fails: the last
        compaction made through this driver)."""
        try:
            watch = await asyncio.wait_for(
                self._client.watch(b"\0navarch-compaction-probe", start_revision=1), self._timeout)
        except RevisionCompactedError as e:
            return e.compacted_revision
        except (ClientError, TimeoutError):
            return self._compact_rev
        try:
            async with asyncio.timeout(2):
                async for _ in watch:
                    break
        except RevisionCompactedError as e:
            return e.compacted_revision
        except (ClientError, TimeoutError):
            pass
        finally:
            with contextlib.suppress(ClientError):
                await watch.cancel()
        return self._compact_rev

    @staticmethod
    def _compare(key: bytes, target: str, value: int, result: int = rpc.Compare.EQUAL) -> Any:
        compare = rpc.Compare(key=key, result=result)
        if target == "create":
            compare.target = rpc.Compare.CREATE
            compare.create_revision = value
        else:
            compare.target = rpc.Compare.MOD
            compare.mod_revision = value
        return compare

    # ----------------------------------------------------------------------------- reads

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._kv_call("Range", rpc.RangeRequest(key=_encode(key)))
        return _kv(resp.kvs[0]) if resp.kvs else None

    async def current_revision(self) -> int:
        # A point read of a key nobody writes: every response carries the store revision.
        resp = await self._kv_call("Range", rpc.RangeRequest(key=b"\0navarch-revision-probe"))
        return resp.header.revision

    async def list(self, prefix: str, *, start_key: str = "", limit: int = 0,
                   revision: int = 0) -> ListResult:
        raw_prefix = _encode(prefix)
        start = max(raw_prefix, _encode(start_key)) or _ALL_KEYS
        end = prefix_range_end(raw_prefix) if raw_prefix else _ALL_KEYS
        request = rpc.RangeRequest(key=start, range_end=end, limit=max(limit, 0),
                                   revision=max(revision, 0))
        resp = await self._kv_call("Range", request, revision=revision)
        return ListResult([_kv(kv) for kv in resp.kvs], revision or resp.header.revision, resp.more)

    # ----------------------------------------------------------------------------- writes

    async def create(self, key: str, value: bytes) -> KeyValue:
        k = _encode(key)
        txn = rpc.TxnRequest(
            compare=[self._compare(k, "create", 0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value))],
        )
        resp = await self._kv_call("Txn", txn)
        if not resp.succeeded:
            raise KeyExists(key)
        rev = resp.header.revision
        return KeyValue(key, bytes(value), rev, rev)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        if expected_revision <= 0:
            raise ValueError("update needs the expected revision of the key")
        k = _encode(key)
        txn = rpc.TxnRequest(
            compare=[self._compare(k, "mod", expected_revision)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )
        resp = await self._kv_call("Txn", txn)
        if resp.succeeded:
            prev = resp.responses[0].response_put.prev_kv
            return KeyValue(key, bytes(value), prev.create_revision, resp.header.revision)
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            raise KeyNotFound(key)
        raise RevisionConflict(key, _kv(kvs[0]))

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        k = _encode(key)
        if expected_revision:
            compare = self._compare(k, "mod", expected_revision)
        else:
            compare = self._compare(k, "create", 0, rpc.Compare.GREATER)
        txn = rpc.TxnRequest(
            compare=[compare],
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))],
        )
        resp = await self._kv_call("Txn", txn)
        if resp.succeeded:
            prev = resp.responses[0].response_delete_range.prev_kvs[0]
            return KeyValue(key, bytes(prev.value), prev.create_revision, resp.header.revision)
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            raise KeyNotFound(key)
        raise RevisionConflict(key, _kv(kvs[0]))

    async def compact(self, revision: int) -> None:
        """Compact etcd's history at ``revision``; compacting an already compacted point is a no-op."""
        try:
            await self._kv_call("Compact", rpc.CompactionRequest(revision=revision, physical=True),
                                revision=revision)
        except Compacted:
            pass
        self._compact_rev = max(self._compact_rev, revision)

    # ----------------------------------------------------------------------------- watch

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[Event]:
        return self._watch(prefix, after_revision)

    async def _watch(self, prefix: str, after: int) -> AsyncIterator[Event]:
        raw = _encode(prefix)
        start = raw or _ALL_KEYS
        end = prefix_range_end(raw) if raw else _ALL_KEYS
        if after > 0:
            # etcd accepts a watch from the compaction point itself; the protocol does not
            # (that revision's history is gone). A read at ``after`` fails exactly when the
            # protocol says the watch must.
            with contextlib.suppress(FutureRevision):
                await self._kv_call("Range", rpc.RangeRequest(key=start, range_end=end, limit=1,
                                                              count_only=True, revision=after),
                                    revision=after)
        self._check_open()
        await self._client.connect()
        try:
            watch = await self._client.watch(start, range_end=end, start_revision=after + 1,
                                             prev_kv=True)
        except RevisionCompactedError as e:
            raise Compacted(after, e.compacted_revision) from e
        except ClientError as e:
            raise StorageError(f"etcd watch: {e}") from e
        try:
            async for ev in watch:
                yield self._event(ev)
            # The stream only ends by itself when the client shuts down.
            raise StorageError("etcd watch ended: client closed")
        except RevisionCompactedError as e:
            raise Compacted(after, e.compacted_revision) from e
        except ClientError as e:
            raise StorageError(f"etcd watch ended: {e}") from e
        finally:
            with contextlib.suppress(ClientError, grpc.aio.AioRpcError):
                await watch.cancel()

    @staticmethod
    def _event(ev: Any) -> Event:
        prev = _kv(ev.prev_kv) if ev.prev_kv is not None and ev.prev_kv.key else None
        kv = ev.kv
        key = kv.key.decode()
        if ev.kind == "DELETE":
            deleted = KeyValue(key, prev.value if prev else b"",
                               prev.create_revision if prev else 0, kv.mod_revision)
            return Event("DELETE", deleted, prev, kv.mod_revision)
        return Event("PUT", _kv(kv), prev, kv.mod_revision)

    # ----------------------------------------------------------------------------- compactor

    def start_compactor(self, interval: float = 300.0, keep_revisions: int = 10_000) -> asyncio.Task:
        """Compact etcd every ``interval`` seconds, keeping at least the last ``keep_revisions``
        revisions and at least one interval of history (as the SQLite driver's compactor does).
        Idempotent; stops on ``close()`` or ``stop_compactor()``.
        """
        if self._compactor is None or self._compactor.done():
            self._compactor = asyncio.create_task(
                self._compact_loop(interval, keep_revisions), name="storage-etcd-compactor")
        return self._compactor

    async def stop_compactor(self) -> None:
        task, self._compactor = self._compactor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _compact_loop(self, interval: float, keep_revisions: int) -> None:
        previous = 0
        while True:
            await asyncio.sleep(interval)
            try:
                now = await self.current_revision()
                target = min(previous, now - keep_revisions)
                previous = now
                if target > self._compact_rev:
                    await self.compact(target)
                    log.info("compacted", revision=target)
            except StorageError as e:
                log.warning("compaction failed", error=str(e))
