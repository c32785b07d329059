"""Admission sees the server's own writes even when the watch caches lag the store."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from api import registry
from api.errors import Forbidden
from apiserver.admission import Admission

NAMESPACES = registry.lookup("", "v1", "namespaces")
CONFIGMAPS = registry.lookup("", "v1", "configmaps")


class LaggingCache:
    """A namespace cache that only learns of a write when asked to catch up to its revision."""

    def __init__(self) -> None:
        self.seen: dict[str, dict] = {"ns": {"metadata": {"name": "ns"}, "status": {"phase": "Active"}}}
        self.pending: dict[int, tuple[str, dict]] = {}
        self.caught_up: list[int] = []

    async def get(self, r, ns, name):
        return self.seen.get(name)

    def peek(self, r, ns, name):
        obj = self.seen.get(name)
        return orjson.dumps(obj) if obj is not None else None

    async def list_all(self, r, containing=None):
        return list(self.seen.values())

    async def catch_up(self, r, rev):
        self.caught_up.append(rev)
        for pending_rev in sorted(self.pending):
            if pending_rev <= rev:
                name, obj = self.pending.pop(pending_rev)
                self.seen[name] = obj


def test_create_waits_for_the_cache_to_see_a_namespace_this_server_terminated():
    cache = LaggingCache()
    admission = Admission(cache.get, cache.list_all, peek=cache.peek, catch_up=cache.catch_up)
    cm = {"metadata": {"name": "x", "namespace": "ns"}}
    asyncio.run(admission.admit_create(CONFIGMAPS, cm))          # active: admitted
    cache.pending[7] = ("ns", {"metadata": {"name": "ns", "deletionTimestamp": "2026-01-01T00:00:00Z"},
                               "status": {"phase": "Terminating"}})
    admission.wrote(NAMESPACES, 7)
    with pytest.raises(Forbidden, match="being terminated"):
        asyncio.run(admission.admit_create(CONFIGMAPS, {"metadata": {"name": "y", "namespace": "ns"}}))
    assert cache.caught_up[-1] == 7


def test_writes_to_resources_admission_does_not_read_are_not_waited_for():
    cache = LaggingCache()
    admission = Admission(cache.get, cache.list_all, peek=cache.peek, catch_up=cache.catch_up)
    admission.wrote(CONFIGMAPS, 9)
    asyncio.run(admission.admit_create(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "ns"}}))
    assert cache.caught_up == []
