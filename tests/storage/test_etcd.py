"""What only the etcd driver needs checking: data survives an etcd crash and restart, and an open
backend keeps working across it."""

from __future__ import annotations

import asyncio

import pytest

from apiserver.storage import StorageError, open_backend
from apiserver.storage.etcd import EtcdBackend, _target
from tests.fixtures.etcd import EtcdServer, _free_port


async def test_etcd_restart_keeps_data(tmp_path):
    server = EtcdServer(str(tmp_path / "etcd")).start()
    try:
        backend = await EtcdBackend.open([server.endpoint])
        written = {}
        for i in range(50):
            kv = await backend.create(f"/registry/restart/o{i:02d}", f"value-{i}".encode())
            written[kv.key] = kv
        counter = await backend.create("/registry/restart/counter", b"0")
        counter = await backend.update(counter.key, b"1", expected_revision=counter.mod_revision)
        watch = backend.watch("/registry/restart/", after_revision=counter.mod_revision)
        probe = await backend.create("/registry/restart/probe", b"x")
        first = await asyncio.wait_for(anext(watch), 20)   # the watch stream is live
        assert first.revision == probe.mod_revision
        pending = asyncio.create_task(anext(watch))

        server.kill()
        # A watch cut by the crash ends with an error (its owner re-watches); it never hangs.
        with pytest.raises(StorageError):
            await asyncio.wait_for(pending, 20)
        await watch.aclose()
        server.start()

        # The open backend reconnects by itself; a fresh one sees the same data.
        assert await backend.get(counter.key) == counter
        fresh = await open_backend(f"etcd://{server.endpoint}")
        try:
            listed = await fresh.list("/registry/restart/o")
            assert await fresh.get(probe.key) == probe
            assert {kv.key: kv for kv in listed.items} == written
            assert await fresh.current_revision() >= counter.mod_revision
            nxt = await fresh.update(counter.key, b"2", expected_revision=counter.mod_revision)
            assert nxt.mod_revision > counter.mod_revision
        finally:
            await fresh.close()
            await backend.close()
    finally:
        server.stop()


async def test_several_endpoints_fail_over_to_a_live_one(etcd_server: EtcdServer):
    dead = _free_port()   # nothing listens here
    backend = await open_backend(f"etcd://127.0.0.1:{dead},{etcd_server.endpoint}")
    try:
        kv = await backend.create(f"/registry/failover/{dead}", b"x")
        assert await backend.get(kv.key) == kv
    finally:
        await backend.close()


def test_endpoint_parsing():
    assert _target(["127.0.0.1:2379"]) == ("127.0.0.1", 2379)
    assert _target(["http://10.0.0.1:2379/"]) == ("10.0.0.1", 2379)
    assert _target(["10.0.0.1:1", "10.0.0.2:2"]) == ("ipv4:10.0.0.1:1,10.0.0.2", 2)
    assert _target(["etcd-a:2379", "etcd-b:2379"]) == ("etcd-a", 2379)
    for bad in ([], ["nohost"], ["host:port"]):
        with pytest.raises(ValueError):
            _target(bad)
