"""Read-modify-write from the watch cache's copy: a stale copy never decides the outcome."""

from __future__ import annotations

import orjson
import pytest

from api import registry
from api.errors import Conflict
from apiserver.admission import Admission
from apiserver.objects import DeleteOptions, ObjectStore
from apiserver.storage import open_backend

CONFIGMAPS = registry.lookup("", "v1", "configmaps")
NAMESPACES = registry.lookup("", "v1", "namespaces")


class FrozenCache:
    """Hands out the copy it was given, however old."""

    def __init__(self) -> None:
        self.copies: dict[str, tuple[bytes, int]] = {}
        self.asked = 0

    def __call__(self, r, key):
        self.asked += 1
        return self.copies.get(key)


@pytest.fixture
async def store(tmp_path):
    backend = await open_backend(f"sqlite://{tmp_path}/db")

    async def get(r, ns, name):
        kv = await backend.get(r.storage_key(ns, name))
        return orjson.loads(kv.value) if kv else None

    async def list_all(r, containing=None):
        return []

    cache = FrozenCache()
    objects = ObjectStore(backend, Admission(get, list_all), cache)
    await objects.create(NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}})
    yield objects, backend, cache
    await backend.close()


async def _stale_configmap(objects, backend, cache) -> dict:
    """A ConfigMap whose cached copy is one write behind storage."""
    await objects.create(CONFIGMAPS, "ns", {"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "cm"}, "data": {"v": "1"}})
    key = CONFIGMAPS.storage_key("ns", "cm")
    kv = await backend.get(key)
    cache.copies[key] = (kv.value, kv.mod_revision)

    async def to_two(cur):
        cur["data"] = {"v": "2"}
        return cur
    return await objects.guaranteed_update(CONFIGMAPS, "ns", "cm", to_two)


async def test_a_pinned_version_newer_than_the_cached_copy_is_not_a_conflict(store):
    objects, backend, cache = store
    fresh = await _stale_configmap(objects, backend, cache)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"v": "3"},
            "metadata": {"name": "cm", "resourceVersion": fresh["metadata"]["resourceVersion"]}}
    asked = cache.asked
    out = await objects.update(CONFIGMAPS, "ns", "cm", body)
    assert cache.asked == asked + 1 and out["data"] == {"v": "3"}
    body["metadata"]["resourceVersion"] = "1"
    with pytest.raises(Conflict):
        await objects.update(CONFIGMAPS, "ns", "cm", body)


async def test_a_write_that_looks_like_a_no_op_against_a_stale_copy_is_written(store):
    objects, backend, cache = store
    await _stale_configmap(objects, backend, cache)

    async def back_to_one(cur):
        cur["data"] = {"v": "1"}                 # what the stale copy already says
        return cur
    out = await objects.guaranteed_update(CONFIGMAPS, "ns", "cm", back_to_one)
    kv = await backend.get(CONFIGMAPS.storage_key("ns", "cm"))
    assert out["data"] == {"v": "1"} and b'"v":"1"' in kv.value


async def test_delete_preconditions_are_checked_against_storage(store):
    objects, backend, cache = store
    fresh = await _stale_configmap(objects, backend, cache)
    gone = await objects.delete(CONFIGMAPS, "ns", "cm",
                                DeleteOptions(precondition_rv=fresh["metadata"]["resourceVersion"]))
    assert gone["metadata"]["name"] == "cm"
    assert await backend.get(CONFIGMAPS.storage_key("ns", "cm")) is None
