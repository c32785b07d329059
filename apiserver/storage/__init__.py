"""Storage: one narrow key-value protocol with etcd semantics, and its drivers.

Keys are strings (``/registry/<group>/<plural>/<namespace>/<name>``), values are opaque bytes.
Every successful write gets the next global revision; revisions only increase. A watch from a
revision replays exactly the changes after it, in order, or fails with ``Compacted`` if that
history was discarded. Drivers: ``sqlite`` (default, embedded) and ``etcd``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int   # revision of the write that created this incarnation of the key
    mod_revision: int      # revision of the last write to it (its resourceVersion)


@dataclass(frozen=True, slots=True)
class Event:
    """One change. For DELETE, ``kv.value`` is the last value and ``kv.mod_revision`` the deletion's."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev_kv: KeyValue | None   # the value before this change; None for a create
    revision: int              # == kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type == "PUT" and self.prev_kv is None


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]      # sorted by key
    revision: int              # the store revision the list reflects
    more: bool                 # True when ``limit`` cut the list short


class StorageError(Exception):
    """Base of every storage failure."""


class KeyExists(StorageError):
    def __init__(self, key: str):
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFound(StorageError):
    def __init__(self, key: str):
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionConflict(StorageError):
    """A compare-and-swap lost: the key's mod_revision is not the one expected."""

    def __init__(self, key: str, current: KeyValue | None):
        super().__init__(f"revision conflict on {key}")
        self.key = key
        self.current = current


class Compacted(StorageError):
    """The requested revision is older than the oldest one kept."""

    def __init__(self, requested: int, compact_revision: int):
        super().__init__(f"revision {requested} is compacted (oldest kept: {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevision(StorageError):
    """A read at a revision the store has not reached yet."""


class Backend(Protocol):
    """What the API server needs from storage. Every method is safe to call concurrently."""

    async def get(self, key: str) -> KeyValue | None: ...

    async def list(self, prefix: str, *, start_key: str = "", limit: int = 0,
                   revision: int = 0) -> ListResult:
        """Keys with ``prefix`` that are >= ``start_key``, at ``revision`` (0: now), at most ``limit`` (0: all).

        Raises ``Compacted`` if ``revision`` is older than the compaction point.
        """
        ...

    async def create(self, key: str, value: bytes) -> KeyValue:
        """Store a new key; raises ``KeyExists`` if present."""
        ...

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        """Replace a key iff its mod_revision is ``expected_revision``.

        Raises ``KeyNotFound`` if absent, ``RevisionConflict`` (carrying the current value) otherwise.
        """
        ...

    async def delete(self, key: str, *, expected_revision: int = 0) -> KeyValue:
        """Delete a key (iff at ``expected_revision`` when non-zero); returns the deleted value
        with ``mod_revision`` set to the deletion's revision.

        Raises ``KeyNotFound`` or ``RevisionConflict``.
        """
        ...

    def watch(self, prefix: str, *, after_revision: int) -> AsyncIterator[Event]:
        """Every change under ``prefix`` with revision > ``after_revision``, in revision order,
        then live changes, until the iterator is closed (``aclose``).

        Raises ``Compacted`` (when iterated) if ``after_revision`` + 1 was compacted.
        """
        ...

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None:
        """Discard history at or before ``revision`` except each live key's latest value."""
        ...

    def start_compactor(self, interval: float = 300.0, keep_revisions: int = 10_000) -> asyncio.Task:
        """Start compacting in the background every ``interval`` seconds, keeping at least the
        last ``keep_revisions`` revisions and one interval of history; stopped by ``close()``."""
        ...

    async def stop_compactor(self) -> None: ...

    async def close(self) -> None: ...


async def open_backend(url: str) -> Backend:
    """Open a driver by URL: ``sqlite:///path/to/db`` or ``etcd://host:port[,host:port]``."""
    if url.startswith("sqlite://"):
        from apiserver.storage.sqlite import SQLiteBackend

        return await SQLiteBackend.open(url.removeprefix("sqlite://"))
    if url.startswith(("etcd://", "http://", "https://")):
        from apiserver.storage.etcd import EtcdBackend

        return await EtcdBackend.open(url.removeprefix("etcd://").split(","))
    raise ValueError(f"unknown storage URL {url!r}: want sqlite:///path or etcd://host:port")
